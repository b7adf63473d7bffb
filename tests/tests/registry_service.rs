//! The registry as a service: socket activation, sd-notify, shutdown, sockets it must not steal,
//! and user scope.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Command, Stdio};

use berth_tests::clients::{varlinkctl, varlinkctl_call, varlinkctl_call_as};
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::Proc;
use berth_tests::users::{NOBODY, as_user};

use berth_tests::{require, wait, workspace_binary};
use serde_json::json;

fn activated(dir: &std::path::Path, listen: &[&str], fdnames: Option<&str>) -> Proc {
    let mut command = Command::new("systemd-socket-activate");
    for socket in listen {
        command.args(["-l", &dir.join(socket).display().to_string()]);
    }
    if let Some(names) = fdnames {
        command.arg(format!("--fdname={names}"));
    }
    command
        .arg(workspace_binary("berth-machine-registry"))
        .args(["--runtime-dir", &dir.display().to_string()])
        .stderr(std::fs::File::create(dir.join("log")).unwrap());
    let proc = Proc::spawn(&mut command);
    wait::until("the activation socket", || dir.join(listen[0]).exists());
    proc
}

#[test]
fn socket_activation_with_and_without_a_socket_name() {
    if !(require::program("systemd-socket-activate") && require::varlinkctl()) {
        return;
    }
    for fdname in [Some("varlink"), None] {
        let dir = tempfile::tempdir().unwrap();
        let _activator = activated(dir.path(), &["machine.sock"], fdname);
        let socket = dir.path().join("machine.sock");
        let info = varlinkctl(&["info", socket.to_str().unwrap()]);
        assert!(
            info.success && info.stdout.contains("Berth"),
            "{fdname:?}: {info:?}"
        );
        let list = varlinkctl_call(
            &socket,
            "io.systemd.Machine.List",
            r#"{"name":".host"}"#,
            false,
        );
        assert!(list.success, "{list:?}");
        // The registry used the socket it was given and bound none of its own.
        assert!(
            !dir.path()
                .join("systemd/machine/io.systemd.Machine")
                .exists()
        );
        assert!(dir.path().join("systemd/machines").is_dir());
    }
}

#[test]
fn socket_activation_refuses_sockets_it_does_not_know() {
    if !require::program("systemd-socket-activate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut activator = activated(dir.path(), &["a.sock", "b.sock"], Some("varlink:bogus"));
    // The first connection starts the registry, which refuses the unknown socket and exits.
    // (The socket file appears at bind(), a moment before listen().)
    wait::until("a connection to the activation socket", || {
        UnixStream::connect(dir.path().join("a.sock")).is_ok()
    });

    wait::until("the registry to refuse its sockets", || {
        activator.has_exited()
    });
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(
        log.contains("Unexpected sockets") && log.contains("bogus"),
        "{log}"
    );
}

#[test]
fn ready_status_watchdog_and_stopping_reach_the_service_manager() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(wait::DEADLINE)).unwrap();
    let mut registry = Registry::with(Options {
        env: vec![
            ("NOTIFY_SOCKET".into(), notify_path.display().to_string()),
            ("WATCHDOG_USEC".into(), "100000".into()),
        ],
        ..Options::default()
    });
    let mut messages = Vec::new();
    let receive = || {
        let mut buf = [0u8; 4096];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()
    };
    messages.push(receive());
    assert!(
        messages[0].contains("READY=1") && messages[0].contains("STATUS=Serving 0 machines"),
        "{messages:?}"
    );
    assert_eq!(receive(), "WATCHDOG=1");
    let status = registry.stop();
    assert!(status.success(), "{status:?}");
    let mut last = receive();
    while last == "WATCHDOG=1" {
        last = receive();
    }
    assert!(last.contains("STOPPING=1"), "{last}");
    assert!(
        !registry.socket().exists(),
        "the socket it bound is removed on exit"
    );
}

#[test]
fn a_second_registry_does_not_take_over_a_live_socket() {
    let registry = Registry::start();
    let second = registry
        .command()
        .stdin(Stdio::null())
        .output()
        .expect("second registry");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("served by another running process"),
        "{stderr}"
    );
    UnixStream::connect(registry.socket()).expect("the first one still serves");
}

#[test]
fn sigterm_finishes_calls_in_flight_and_exits_cleanly() {
    let mut registry = Registry::start();
    let mut client = berth_tests::clients::RawClient::connect(&registry.socket());
    let reply = client.method("io.systemd.Machine.List", json!({"name": ".host"}));
    assert_eq!(reply["parameters"]["name"], ".host");
    let status = registry.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(client.recv(), None, "the connection is closed at exit");
}

#[test]
fn an_unprivileged_user_runs_a_user_scope_registry() {
    if !(require::root() && require::varlinkctl() && require::program("setpriv")) {
        return;
    }
    let registry = Registry::with(Options {
        user: true,
        cgroup: false,
        run_as: Some(NOBODY),
        ..Options::default()
    });
    let mode = std::fs::metadata(registry.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let leader = Proc::spawn(as_user(NOBODY, "sleep").arg("100000"));
    let params = json!({"name": "users-own", "class": "vm", "leader": leader.pid()}).to_string();
    let run = varlinkctl_call_as(
        NOBODY,
        &registry.socket(),
        "io.systemd.Machine.Register",
        &params,
    );
    assert!(run.success, "{run:?}");
    let list = berth_tests::clients::run(
        as_user(NOBODY, require::VARLINKCTL)
            .args(["call", "-j", "--more"])
            .arg(registry.socket())
            .args(["io.systemd.Machine.List", "{}"]),
    );
    let names: Vec<_> = list
        .json_lines()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["users-own"], "no .host in user scope");
    // Another user cannot even connect.
    let other = varlinkctl_call_as(
        65533,
        &registry.socket(),
        "io.systemd.Machine.List",
        r#"{"name":"users-own"}"#,
    );
    assert!(!other.success);
}

#[test]
fn state_files_and_host_entries_are_readable_by_everyone_whatever_the_umask() {
    let registry = Registry::with(Options {
        umask: Some(0o077),
        ..Options::default()
    });
    let leader = Proc::sleeper();
    registry.register("modes", "container", leader.pid(), &[]);
    let table = registry.host_table();
    for path in [
        registry.state_dir().join("modes"),
        table.join("modes"),
        table.join(".lock"),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", path.display());
    }
}
