//! The userdb bridge as a service: socket activation, sd-notify, shutdown, a live socket it
//! must not take over, and the interface it serves.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Command, Stdio};

use berth_tests::bridge::{Bridge, SERVICE, outcome};
use berth_tests::clients::{varlinkctl, varlinkctl_call};
use berth_tests::daemon::Registry;
use berth_tests::process::Proc;
use berth_tests::{require, wait, workspace_binary};

#[test]
fn socket_activation_with_the_name_userdb() {
    if !(require::program("systemd-socket-activate") && require::varlinkctl()) {
        return;
    }
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join(SERVICE);
    let _activator = Proc::spawn(
        Command::new("systemd-socket-activate")
            .arg("-l")
            .arg(&socket)
            .arg("--fdname=userdb")
            .arg(workspace_binary("berth-userdb-bridge"))
            .arg("--runtime-dir")
            .arg(dir.path())
            .arg("--registry")
            .arg(registry.socket())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap()),
    );
    wait::until("the activation socket", || socket.exists());
    let info = varlinkctl(&["info", socket.to_str().unwrap()]);
    assert!(info.success && info.stdout.contains("Berth"), "{info:?}");
    let params = r#"{"userName":"root","service":"io.systemd.Machine"}"#;
    let run = varlinkctl_call(
        &socket,
        "io.systemd.UserDatabase.GetUserRecord",
        params,
        false,
    );
    assert!(
        run.stderr.contains("io.systemd.UserDatabase.NoRecordFound"),
        "{run:?}"
    );
    assert!(
        !dir.path().join("systemd/userdb").exists(),
        "the bridge used the socket it was given"
    );
}

#[test]
fn it_notifies_readiness_and_stopping_and_removes_its_socket() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(wait::DEADLINE)).unwrap();
    let env = vec![("NOTIFY_SOCKET".into(), notify_path.display().to_string())];
    let mut bridge = Bridge::with_env(&registry.socket(), env);
    let receive = || {
        let mut buf = [0u8; 4096];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()
    };
    assert!(receive().contains("READY=1"));
    // The registry is followed from the first lookup that could name a container user on.
    let not_found = "io.systemd.UserDatabase.NoRecordFound";
    let root = serde_json::json!({"userName": "root"});
    assert_eq!(outcome(&bridge.user(root)), not_found);
    let container_user = serde_json::json!({"userName": "vu-none-0"});
    assert_eq!(outcome(&bridge.user(container_user)), not_found);
    assert_eq!(receive(), "STATUS=Following the machine registry");
    let mode = std::fs::metadata(bridge.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o666, "every user may look users up");
    let status = bridge.stop();
    assert!(status.success(), "{status:?}");
    assert!(receive().contains("STOPPING=1"));
    assert!(
        !bridge.socket().exists(),
        "the socket it bound is removed on exit"
    );
}

#[test]
fn a_second_bridge_does_not_take_over_a_live_socket() {
    let registry = Registry::start();
    let bridge = Bridge::start(&registry.socket());
    let second = bridge
        .command()
        .stdin(Stdio::null())
        .output()
        .expect("second bridge");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("served by another running process"),
        "{stderr}"
    );
    UnixStream::connect(bridge.socket()).expect("the first one still serves");
    bridge.wait_synchronized();
    assert_eq!(
        outcome(&bridge.user(serde_json::json!({"userName": "vu-a-0"}))),
        "io.systemd.UserDatabase.NoRecordFound"
    );
}

#[tokio::test]
async fn it_serves_the_userdb_interface_with_the_text_of_its_idl_file() {
    let registry = Registry::start();
    let bridge = Bridge::start(&registry.socket());
    // As machined 257's userdb socket.
    let interfaces = [
        "io.systemd",
        "io.systemd.UserDatabase",
        "org.varlink.service",
    ];
    berth_tests::clients::assert_serves_idl_files(&bridge.socket(), &interfaces).await;
}
