//! The registry driven by clients nobody here wrote: varlinkctl 257 and python varlink.

use berth_tests::clients::{python_varlink, varlinkctl, varlinkctl_call};
use berth_tests::daemon::Registry;
use berth_tests::process::Proc;
use berth_tests::{require, wait};
use serde_json::json;

#[test]
fn varlinkctl_info_and_introspect_name_berth_and_its_interfaces() {
    if !require::varlinkctl() {
        return;
    }
    let registry = Registry::start();
    let socket = registry.socket();
    let info = varlinkctl(&["info", socket.to_str().unwrap()]);
    assert!(info.success, "{info:?}");
    assert!(info.stdout.contains("Vendor: Berth"), "{}", info.stdout);
    for interface in [
        "io.systemd",
        "io.systemd.Machine",
        "io.systemd.service",
        "org.varlink.service",
    ] {
        assert!(
            info.stdout.contains(interface),
            "{interface} missing: {}",
            info.stdout
        );
    }
    let idl = varlinkctl(&["introspect", socket.to_str().unwrap(), "io.systemd.Machine"]);
    assert!(idl.success, "{idl:?}");
    assert!(idl.stdout.contains("method Register("), "{}", idl.stdout);
    assert!(
        idl.stdout.contains("controlAddress: ?string"),
        "{}",
        idl.stdout
    );
}

/// The README's "done when": register, see it in List, kill the leader, see it gone.
#[test]
fn register_list_and_leader_death_with_varlinkctl() {
    if !require::varlinkctl() {
        return;
    }
    let registry = Registry::start();
    let socket = registry.socket();
    let mut leader = Proc::sleeper();
    let params =
        json!({"name": "demo", "class": "container", "leaderProcessId": {"pid": leader.pid()}});
    let register = varlinkctl_call(
        &socket,
        "io.systemd.Machine.Register",
        &params.to_string(),
        false,
    );
    assert!(register.success, "{register:?}");
    assert_eq!(register.json(), json!({}));

    let list = varlinkctl_call(&socket, "io.systemd.Machine.List", "{}", true);
    assert!(list.success, "{list:?}");
    let demo = list
        .json_lines()
        .into_iter()
        .find(|m| m["name"] == "demo")
        .expect("demo listed");
    assert_eq!(demo["class"], "container");
    assert_eq!(demo["leader"]["pid"], leader.pid());
    assert!(demo["leader"]["pidfdId"].is_u64(), "{demo}");
    assert_eq!(demo["leader"]["bootId"].as_str().map(str::len), Some(32));
    assert!(demo["timestamp"]["realtime"].is_u64() && demo["timestamp"]["monotonic"].is_u64());
    assert_eq!(demo["UID"], 0);

    leader.kill();
    wait::until("demo to leave the registry", || {
        let one = varlinkctl_call(
            &socket,
            "io.systemd.Machine.List",
            r#"{"name":"demo"}"#,
            false,
        );
        !one.success && one.stderr.contains("io.systemd.Machine.NoSuchMachine")
    });
    assert!(!registry.state_dir().join("demo").exists());
}

#[test]
fn varlinkctl_sees_the_documented_errors() {
    if !require::varlinkctl() {
        return;
    }
    let registry = Registry::start();
    let socket = registry.socket();
    let leader = Proc::sleeper();
    let register =
        json!({"name": "dup", "class": "vm", "leaderProcessId": {"pid": leader.pid()}}).to_string();
    assert!(varlinkctl_call(&socket, "io.systemd.Machine.Register", &register, false).success);
    let cases = [
        (
            "io.systemd.Machine.Register",
            register.clone(),
            "io.systemd.Machine.MachineExists",
        ),
        (
            "io.systemd.Machine.List",
            r#"{"name":"nope"}"#.to_owned(),
            "io.systemd.Machine.NoSuchMachine",
        ),
        (
            "io.systemd.Machine.List",
            "{}".to_owned(),
            "org.varlink.service.ExpectedMore",
        ),
        (
            "io.systemd.Machine.Register",
            r#"{"name":"bad name!","class":"container"}"#.to_owned(),
            "org.varlink.service.InvalidParameter",
        ),
        (
            "io.systemd.Machine.Nope",
            "{}".to_owned(),
            "org.varlink.service.MethodNotFound",
        ),
    ];
    for (method, params, error) in cases {
        let run = varlinkctl_call(&socket, method, &params, false);
        assert!(!run.success, "{method} {params} succeeded");
        assert!(
            run.stderr.contains(error),
            "{method} {params}: {}",
            run.stderr
        );
    }
    let bad_name = varlinkctl_call(
        &socket,
        "io.systemd.Machine.Register",
        r#"{"name":"bad name!","class":"container"}"#,
        false,
    );
    assert_eq!(bad_name.json(), json!({"parameter": "name"}));
}

#[test]
fn python_varlink_lists_and_parses_the_interface() {
    if !require::python_varlink() {
        return;
    }
    let registry = Registry::start();
    let leader = Proc::sleeper();
    let address = format!("unix:{}", registry.socket().display());
    let params = json!({"name": "py", "class": "container", "leader": leader.pid()}).to_string();
    let register = python_varlink(&[
        "call",
        &format!("{address}/io.systemd.Machine.Register"),
        &params,
    ]);
    assert!(register.stderr.is_empty(), "{register:?}");
    let list = python_varlink(&[
        "call",
        "-m",
        &format!("{address}/io.systemd.Machine.List"),
        "{}",
    ]);
    assert!(list.stdout.contains("\"py\""), "{list:?}");
    let help = python_varlink(&["help", &format!("{address}/io.systemd.Machine")]);
    assert!(help.stdout.contains("method Kill("), "{help:?}");
    let info = python_varlink(&["info", &address]);
    assert!(info.stdout.contains("Berth"), "{info:?}");
}
