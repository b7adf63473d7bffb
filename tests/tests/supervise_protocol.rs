//! `supervise`'s control socket answers like sd-varlink: introspection, bad calls with the
//! errors sd-varlink sends (the connection stays open), invalid messages close only their
//! connection, and a client that stops reading cannot stall the supervisor.

use std::io::Write;
use std::os::unix::net::UnixStream;

use berth_interfaces::idl;
use berth_tests::clients::{RawClient, varlinkctl, varlinkctl_call};
use berth_tests::daemon::Registry;
use berth_tests::require;
use berth_tests::supervise::Supervise;
use serde_json::{Value, json};

fn ready() -> bool {
    require::root() && require::varlinkctl()
}

fn error_of(reply: &Value) -> (&str, &Value) {
    (reply["error"].as_str().unwrap_or(""), &reply["parameters"])
}

#[test]
fn varlinkctl_introspects_the_served_interfaces_verbatim() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let supervise = Supervise::start(&registry, "intro", "exec sleep 1000");
    let socket = supervise.socket.to_str().unwrap();
    let info = varlinkctl(&["info", socket]);
    assert!(info.success, "{info:?}");
    assert!(info.stdout.contains("Vendor: Berth"), "{}", info.stdout);
    for name in [
        "io.berth.Supervisor",
        "io.systemd.MachineInstance",
        "org.varlink.service",
    ] {
        assert!(
            info.stdout.contains(name),
            "{name} missing: {}",
            info.stdout
        );
        let mut client = RawClient::connect(&supervise.socket);
        let reply = client.method(
            "org.varlink.service.GetInterfaceDescription",
            json!({"interface": name}),
        );
        assert_eq!(
            reply["parameters"]["description"],
            idl::by_name(name).unwrap()
        );
        let shown = varlinkctl(&["introspect", socket, name]);
        assert!(shown.success, "{shown:?}");
    }
    let mut client = RawClient::connect(&supervise.socket);
    let reply = client.method(
        "org.varlink.service.GetInterfaceDescription",
        json!({"interface": "io.systemd.Machine"}),
    );
    assert_eq!(
        error_of(&reply),
        (
            "org.varlink.service.InterfaceNotFound",
            &json!({"interface": "io.systemd.Machine"})
        )
    );
}

#[test]
fn bad_calls_get_sd_varlinks_errors_and_the_connection_stays() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let supervise = Supervise::start(&registry, "strict", "exec sleep 1000");
    let mut client = RawClient::connect(&supervise.socket);
    let cases = [
        (
            json!({"method": "io.systemd.MachineInstance.Explode"}),
            "org.varlink.service.MethodNotFound",
            json!({"method": "io.systemd.MachineInstance.Explode"}),
        ),
        (
            json!({"method": "io.systemd.MachineInstance.Pause", "parameters": {"now": true}}),
            "org.varlink.service.InvalidParameter",
            json!({"parameter": "now"}),
        ),
        (
            json!({"method": "io.berth.Supervisor.Kill", "parameters": {"whom": "all"}}),
            "org.varlink.service.InvalidParameter",
            json!({"parameter": "signal"}),
        ),
        (
            json!({"method": "io.berth.Supervisor.Kill", "parameters": {"whom": "them", "signal": 1}}),
            "org.varlink.service.InvalidParameter",
            json!({"parameter": "whom"}),
        ),
        (
            json!({"method": "io.systemd.MachineInstance.SubscribeEvents", "parameters": {"filter": "x"}, "more": true}),
            "org.varlink.service.InvalidParameter",
            json!({"parameter": "filter"}),
        ),
        (
            json!({"method": "io.systemd.MachineInstance.SubscribeEvents", "parameters": {}}),
            "org.varlink.service.ExpectedMore",
            json!({}),
        ),
        (
            json!({"method": "io.systemd.MachineInstance.AddStorage",
                "parameters": {"fileDescriptorIndex": 0, "name": "disk"}}),
            "io.systemd.MachineInstance.NotSupported",
            json!({}),
        ),
        (
            json!({"method": "io.systemd.MachineInstance.RemoveStorage", "parameters": {}}),
            "org.varlink.service.InvalidParameter",
            json!({"parameter": "name"}),
        ),
    ];
    for (call, error, parameters) in cases {
        let reply = client.call(&call);
        assert_eq!(error_of(&reply), (error, &parameters), "{call}");
    }
    let describe = client.method("io.systemd.MachineInstance.Describe", json!({}));
    assert_eq!(
        describe["parameters"],
        json!({"running": true, "status": "running"})
    );
}

#[test]
fn varlinkctl_reports_the_errors_by_name() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let supervise = Supervise::start(&registry, "named", "exec sleep 1000");
    let run = varlinkctl_call(
        &supervise.socket,
        "io.systemd.MachineInstance.ReplaceStorage",
        r#"{"fileDescriptorIndex": 0, "name": "disk"}"#,
        false,
    );
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("io.systemd.MachineInstance.NotSupported"),
        "{run:?}"
    );
    let run = varlinkctl_call(
        &supervise.socket,
        "io.systemd.MachineInstance.Describe",
        "{}",
        false,
    );
    assert!(run.success, "{run:?}");
    assert_eq!(run.json(), json!({"running": true, "status": "running"}));
}

#[test]
fn invalid_messages_close_only_their_connection() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let mut supervise = Supervise::start(&registry, "robust", "exec sleep 1000");
    let mut watcher = RawClient::connect(&supervise.socket);
    for garbage in [
        &b"{not json"[..],
        b"[1,2]",
        br#"{"method":"a.b.C","bogus":1}"#,
    ] {
        let mut client = RawClient::connect(&supervise.socket);
        client.send_raw(garbage);
        assert_eq!(client.recv(), None, "{}", String::from_utf8_lossy(garbage));
    }
    // A client that never ends its message is dropped past 16 MiB.
    let mut flood = UnixStream::connect(&supervise.socket).unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    let dropped = (0..20).any(|_| flood.write_all(&chunk).is_err());
    assert!(dropped, "a 20 MiB message was accepted");
    let reply = watcher.method("io.systemd.MachineInstance.Describe", json!({}));
    assert_eq!(reply["parameters"]["status"], "running");
    assert!(supervise.status().is_none());
}

#[test]
fn a_client_that_stops_reading_does_not_stall_supervision() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let supervise = Supervise::start(&registry, "busy", "exec sleep 1000");
    // Pipelined calls whose replies it never reads.
    let mut lazy = UnixStream::connect(&supervise.socket).unwrap();
    let call = b"{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.systemd.MachineInstance\"}}\0";
    let mut stalled = false;
    lazy.set_nonblocking(true).unwrap();
    for _ in 0..20_000 {
        if lazy.write_all(call).is_err() {
            stalled = true;
            break;
        }
    }
    assert!(stalled, "the supervisor took 50 MB of unread replies");
    let mut client = RawClient::connect(&supervise.socket);
    let reply = client.method("io.systemd.MachineInstance.Describe", json!({}));
    assert_eq!(reply["parameters"]["status"], "running");
}

#[test]
fn only_root_and_the_supervisors_user_may_control_the_machine() {
    if !(ready() && require::program("setpriv")) {
        return;
    }
    let registry = Registry::start();
    let supervise = Supervise::start(&registry, "guarded", "exec sleep 1000");
    std::fs::set_permissions(
        &supervise.socket,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let run = berth_tests::clients::varlinkctl_call_as(
        65534,
        &supervise.socket,
        "io.systemd.MachineInstance.Terminate",
        "{}",
    );
    assert!(!run.success);
    assert!(
        run.stderr.contains("org.varlink.service.PermissionDenied"),
        "{run:?}"
    );
    let info = berth_tests::clients::varlinkctl_call_as(
        65534,
        &supervise.socket,
        "org.varlink.service.GetInfo",
        "{}",
    );
    assert!(info.success, "{info:?}");
}
