//! Every malformed call gets the error sd-varlink would send, and the connection stays usable.

use berth_tests::clients::RawClient;
use berth_tests::daemon::Registry;
use berth_tests::process::Proc;
use serde_json::{Value, json};

fn invalid(parameter: &str) -> Value {
    json!({"error": "org.varlink.service.InvalidParameter", "parameters": {"parameter": parameter}})
}

fn machine_error(name: &str) -> Value {
    json!({"error": format!("io.systemd.Machine.{name}"), "parameters": {}})
}

#[test]
fn register_rejects_each_bad_field_by_name_on_one_connection() {
    let registry = Registry::start();
    let leader = Proc::sleeper();
    let pid = leader.pid();
    let mut client = RawClient::connect(&registry.socket());
    let ok = |extra: Value| {
        let mut p = json!({"name": "m", "class": "container", "leader": pid});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    let cases = [
        (json!({"class": "container"}), invalid("name")),
        (json!({"name": "m"}), invalid("class")),
        (json!({"name": 5, "class": "container"}), invalid("name")),
        (
            json!({"name": "a b", "class": "container"}),
            invalid("name"),
        ),
        (
            json!({"name": ".host", "class": "container"}),
            invalid("name"),
        ),
        (json!({"name": "m", "class": "host"}), invalid("class")),
        (json!({"name": "m", "class": "toaster"}), invalid("class")),
        (ok(json!({"bogus": 1})), invalid("bogus")),
        (ok(json!({"id": "xyz"})), invalid("id")),
        (ok(json!({"leader": 1})), invalid("leader")),
        (ok(json!({"leader": -4})), invalid("leader")),
        (ok(json!({"leader": {"pid": pid}})), invalid("leader")),
        (ok(json!({"leader": 4_000_000})), invalid("leader")),
        (
            ok(json!({"leaderProcessId": pid})),
            invalid("leaderProcessId"),
        ),
        (
            ok(json!({"leaderProcessId": {"pid": pid, "pidfdId": 1}})),
            invalid("leaderProcessId"),
        ),
        (
            ok(
                json!({"leaderProcessId": {"pid": pid, "bootId": "00000000000000000000000000000000"}}),
            ),
            invalid("leaderProcessId"),
        ),
        (
            ok(json!({"leaderProcessId": {"pid": std::process::id()}})),
            invalid("leaderProcessId"),
        ),
        (
            ok(json!({"rootDirectory": "relative"})),
            invalid("rootDirectory"),
        ),
        (
            ok(json!({"rootDirectory": "/a/../b"})),
            invalid("rootDirectory"),
        ),
        (ok(json!({"ifIndices": [0]})), invalid("ifIndices")),
        (ok(json!({"ifIndices": "1"})), invalid("ifIndices")),
        (ok(json!({"vSockCid": 2})), invalid("vSockCid")),
        (
            ok(json!({"vSockCid": 4_294_967_295_u64})),
            invalid("vSockCid"),
        ),
        (ok(json!({"sshAddress": "a\"b"})), invalid("sshAddress")),
        (
            ok(json!({"sshPrivateKeyPath": "key"})),
            invalid("sshPrivateKeyPath"),
        ),
        (
            ok(json!({"controlAddress": "unix:/x"})),
            invalid("controlAddress"),
        ),
        (ok(json!({"allocateUnit": "yes"})), invalid("allocateUnit")),
    ];
    for (params, expected) in cases {
        let reply = client.method("io.systemd.Machine.Register", params.clone());
        assert_eq!(reply, expected, "for {params}");
    }
    // The same connection still works, and nothing was registered by the failures.
    let listed =
        client.call(&json!({"method": "io.systemd.Machine.List", "parameters": {}, "more": true}));
    assert_eq!(listed["parameters"]["name"], ".host");
    assert_eq!(
        client.method("io.systemd.Machine.Register", ok(json!({}))),
        json!({"parameters": {}})
    );
}

#[test]
fn the_first_bad_field_in_message_order_is_reported() {
    let registry = Registry::start();
    let mut client = RawClient::connect(&registry.socket());
    let reply = client.method(
        "io.systemd.Machine.Register",
        json!({"name": "m", "class": "container", "rootDirectory": "x", "sshPrivateKeyPath": "y"}),
    );
    assert_eq!(reply, invalid("rootDirectory"));
    let reply = client.method(
        "io.systemd.Machine.Register",
        json!({"name": "m", "class": "container", "sshPrivateKeyPath": "y", "rootDirectory": "x"}),
    );
    assert_eq!(reply, invalid("sshPrivateKeyPath"));
}

#[test]
fn lookups_kill_and_list_validate_their_parameters() {
    let registry = Registry::start();
    let mut client = RawClient::connect(&registry.socket());
    let cases = [
        ("List", json!({"name": ""}), invalid("name")),
        ("List", json!({"name": "a b"}), invalid("name")),
        ("List", json!({"pid": 1}), invalid("pid")),
        ("List", json!({"pid": {"pid": -1}}), invalid("pid")),
        (
            "List",
            json!({"name": "x", "acquireMetadata": true}),
            invalid("acquireMetadata"),
        ),
        (
            "List",
            json!({"name": "x", "acquireMetadata": "maybe"}),
            invalid("acquireMetadata"),
        ),
        (
            "List",
            json!({"name": "nope"}),
            machine_error("NoSuchMachine"),
        ),
        ("Unregister", json!({}), machine_error("NoSuchMachine")),
        (
            "Terminate",
            json!({"name": "nope"}),
            machine_error("NoSuchMachine"),
        ),
        ("Kill", json!({"name": "nope"}), invalid("signal")),
        (
            "Kill",
            json!({"name": "nope", "signal": 0}),
            invalid("signal"),
        ),
        (
            "Kill",
            json!({"name": "nope", "signal": "SIGNOPE"}),
            invalid("signal"),
        ),
        (
            "Kill",
            json!({"name": "nope", "signal": 15, "whom": "everyone"}),
            invalid("whom"),
        ),
        (
            "Kill",
            json!({"name": "nope", "signal": "SIGTERM"}),
            machine_error("NoSuchMachine"),
        ),
        (
            "Kill",
            json!({"name": ".host", "signal": 15}),
            json!({"error": "io.systemd.System", "parameters": {"errno": 95}}),
        ),
        (
            "Terminate",
            json!({"name": ".host"}),
            json!({"error": "io.systemd.System", "parameters": {"errno": 95}}),
        ),
        ("MapTo", json!({"uid": 70000}), machine_error("NoSuchUser")),
        ("MapTo", json!({"gid": 70000}), machine_error("NoSuchGroup")),
        (
            "MapTo",
            json!({"uid": 1000}),
            machine_error("UserInHostRange"),
        ),
        (
            "MapTo",
            json!({"gid": 0}),
            machine_error("GroupInHostRange"),
        ),
        ("MapTo", json!({"uid": 65535}), invalid("uid")),
        ("MapTo", json!({"uid": -1}), invalid("uid")),
        (
            "MapFrom",
            json!({"name": ".host", "uid": 0}),
            machine_error("NotSupported"),
        ),
        (
            "MapFrom",
            json!({"name": "nope", "uid": 0}),
            machine_error("NoSuchMachine"),
        ),
        (
            "MapFrom",
            json!({"name": ".host", "uid": 4294967295_u32}),
            invalid("uid"),
        ),
        (
            "Open",
            json!({"name": ".host", "mode": "shell", "path": "bin/sh"}),
            invalid("path"),
        ),
        (
            "BindMount",
            json!({"name": ".host", "source": "/tmp"}),
            machine_error("NotSupported"),
        ),
        (
            "CopyFrom",
            json!({"name": ".host", "source": "/tmp"}),
            machine_error("NotSupported"),
        ),
        (
            "CopyTo",
            json!({"name": ".host", "source": "/tmp"}),
            machine_error("NotSupported"),
        ),
        (
            "OpenRootDirectory",
            json!({"name": ".host"}),
            json!({"parameters": {"fileDescriptor": 0}}),
        ),
        ("BindMount", json!({"name": ".host"}), invalid("source")),
    ];

    for (method, params, expected) in cases {
        let reply = client.method(&format!("io.systemd.Machine.{method}"), params.clone());
        assert_eq!(reply, expected, "{method} {params}");
    }
}

#[test]
fn method_and_flag_errors_match_sd_varlink() {
    let registry = Registry::start();
    let mut client = RawClient::connect(&registry.socket());
    let reply = client.method("io.systemd.Machine.Frobnicate", json!({}));
    assert_eq!(
        reply,
        json!({"error": "org.varlink.service.MethodNotFound", "parameters": {"method": "io.systemd.Machine.Frobnicate"}})
    );
    let reply = client.method("org.example.Nope", json!({"x": 1}));
    assert_eq!(reply["error"], "org.varlink.service.MethodNotFound");
    let reply = client.method("io.systemd.Machine.List", json!({}));
    assert_eq!(
        reply,
        json!({"error": "org.varlink.service.ExpectedMore", "parameters": {}})
    );
    let reply = client.method("org.varlink.service.GetInfo", json!({"x": 1}));
    assert_eq!(reply, invalid("x"));
    let reply = client.method(
        "org.varlink.service.GetInterfaceDescription",
        json!({"interface": "io.nope"}),
    );
    assert_eq!(
        reply,
        json!({"error": "org.varlink.service.InterfaceNotFound", "parameters": {"interface": "io.nope"}})
    );
    // A single-reply call with `more` gets one final reply.
    let reply = client.call(&json!({"method": "io.systemd.Machine.List", "parameters": {"name": ".host"}, "more": true}));
    assert_eq!(reply["parameters"]["name"], ".host");
    assert!(reply.get("continues").is_none());
}

#[test]
fn broken_messages_close_only_their_own_connection() {
    let registry = Registry::start();
    let mut bystander = RawClient::connect(&registry.socket());
    for bad in [
        &b"{nope"[..],
        b"\"string\"",
        br#"{"method":"io.systemd.Machine.List","extra":1}"#,
    ] {
        let mut client = RawClient::connect(&registry.socket());
        client.send_raw(bad);
        assert_eq!(client.recv(), None, "{}", String::from_utf8_lossy(bad));
    }
    // Over 16 MiB without a terminator.
    let mut big = RawClient::connect(&registry.socket());
    let huge = vec![b' '; 17 * 1024 * 1024];
    big.send_raw(&huge);
    assert_eq!(big.recv(), None);
    // A client that hangs up in the middle of a message.
    {
        use std::io::Write;
        let mut half = std::os::unix::net::UnixStream::connect(registry.socket()).unwrap();
        half.write_all(br#"{"method":"io.systemd.Mach"#).unwrap();
    }
    let reply = bystander.method("io.systemd.Machine.List", json!({"name": ".host"}));
    assert_eq!(reply["parameters"]["class"], "host");
}

#[test]
fn oneway_calls_are_carried_out_without_a_reply() {
    let registry = Registry::start();
    let leader = Proc::sleeper();
    let mut client = RawClient::connect(&registry.socket());
    client.send(
        &json!({"method": "io.systemd.Machine.Register", "oneway": true,
                        "parameters": {"name": "quiet", "class": "vm", "leader": leader.pid()}}),
    );
    let reply = client.method("io.systemd.Machine.List", json!({"name": "quiet"}));
    assert_eq!(reply["parameters"]["class"], "vm");
}

#[test]
fn duplicate_keys_and_numbers_out_of_range_are_invalid_parameters_not_broken_connections() {
    let registry = Registry::start();
    let mut client = RawClient::connect(&registry.socket());
    let cases: [(&[u8], &str); 5] = [
        (
            br#"{"method":"io.systemd.Machine.List","parameters":{"name":".host","name":"x"}}"#,
            "name",
        ),
        (
            br#"{"method":"io.systemd.Machine.List","method":"io.systemd.Machine.Kill"}"#,
            "method",
        ),
        (
            br#"{"method":"io.systemd.Machine.List","parameters":{"pid":{"pid":1e999999}}}"#,
            "pid",
        ),
        (
            br#"{"method":"io.systemd.Machine.Kill","parameters":{"name":".host","signal":-1e400}}"#,
            "signal",
        ),
        (
            br#"{"method":"io.systemd.Machine.List","parameters":{"pid":{"pid":1,"pid":2}}}"#,
            "pid",
        ),
    ];
    for (message, field) in cases {
        client.send_raw(message);
        assert_eq!(
            client.recv(),
            Some(invalid(field)),
            "{}",
            String::from_utf8_lossy(message)
        );
    }
    let reply = client.method("io.systemd.Machine.List", json!({"name": ".host"}));
    assert_eq!(reply["parameters"]["class"], "host");
}
