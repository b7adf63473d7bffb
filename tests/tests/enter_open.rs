//! `Open`: a pty of a real container (its own devpts) passed with `SCM_RIGHTS`, with a shell
//! as root or as another user of the container, a login prompt, or nothing (`tty`); the same
//! on `.host`; machined's errors.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use berth_interfaces::client::EnterProxy;
use berth_interfaces::machine::{
    BindMountRequest, MachineError, MachineLookup, OpenMode, OpenReply, OpenRequest,
};
use berth_tests::clients::{RawClient, varlinkctl_call, varlinkctl_call_as};
use berth_tests::container::Container;
use berth_tests::daemon::{Options, Registry};
use berth_tests::machines::register_raw;
use berth_tests::process::Proc;
use berth_tests::require;
use berth_tests::users::NOBODY;
use serde_json::json;

fn registry() -> Registry {
    Registry::with(Options {
        cgroup: false,
        env: vec![("RUST_LOG".into(), "debug".into())],
        ..Options::default()
    })
}

/// `Open` in `mode` with nothing else asked.
fn plain(name: &str, mode: OpenMode) -> OpenRequest {
    OpenRequest {
        lookup: MachineLookup::by_name(name),
        mode,
        user: None,
        path: None,
        args: None,
        environment: None,
    }
}

fn shell(name: &str, user: Option<&str>, script: Option<&str>) -> OpenRequest {
    OpenRequest {
        lookup: MachineLookup::by_name(name),
        mode: OpenMode::Shell,
        user: user.map(str::to_owned),
        path: script.map(|_| "/bin/sh".to_owned()),
        args: script.map(|s| vec!["sh".to_owned(), "-c".to_owned(), s.to_owned()]),
        environment: Some(vec!["GREETING=hi".to_owned()]),
    }
}

/// Reads the terminal until `needle` shows (or the peer closes, or 10 s pass); returns all.
fn read_until(master: &OwnedFd, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(needle) && Instant::now() < deadline {
        let timeout = rustix::event::Timespec::try_from(Duration::from_millis(200)).unwrap();
        let mut fds = [rustix::event::PollFd::new(
            master,
            rustix::event::PollFlags::IN,
        )];
        if rustix::event::poll(&mut fds, Some(&timeout)).unwrap() == 0 {
            continue;
        }
        let mut buffer = [0u8; 4096];
        match rustix::io::read(master, &mut buffer) {
            Ok(0) | Err(_) => break, // EIO: every peer closed
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

async fn open(registry: &Registry, request: &OpenRequest) -> (OpenReply, OwnedFd) {
    let mut conn = registry.connect().await;
    let reply = conn.open(request).await;
    if reply.is_err() {
        eprintln!("{}", registry.log());
    }
    reply
        .unwrap()
        .unwrap_or_else(|e| panic!("{request:?}: {e:?}"))
}

#[tokio::test]
async fn a_shell_runs_in_the_container_as_its_users() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = registry();
    let _container = Container::boxed(&registry, 360_000);
    let script = "id; tty; hostname; echo $GREETING $HOME; echo done";

    let (reply, master) = open(&registry, &shell("boxed", None, Some(script))).await;
    assert!(reply.pty_path.starts_with("/dev/pts/"), "{reply:?}");
    let output = read_until(&master, "done");
    assert!(output.contains("uid=0(root) gid=0(root)"), "{output}");
    assert!(output.contains(&reply.pty_path), "{output}");
    assert!(
        output.contains("container"),
        "not in its UTS namespace: {output}"
    );
    assert!(output.contains("hi /root"), "{output}");

    let (_, master) = open(&registry, &shell("boxed", Some("alice"), Some(script))).await;
    let output = read_until(&master, "done");
    assert!(
        output.contains("uid=1000(alice) gid=1000(alice) groups=1000(alice),10(wheel)"),
        "{output}"
    );
    assert!(output.contains("hi /home/alice"), "{output}");
}

#[tokio::test]
async fn the_login_shell_is_interactive_and_in_the_machines_pid_namespace() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = registry();
    let _container = Container::boxed(&registry, 370_000);
    let (_, master) = open(&registry, &shell("boxed", None, None)).await;
    let typed = b"echo answer=$((6*7)); echo leader=$(cat /proc/1/comm); exit\n";
    rustix::io::write(&master, typed).unwrap();
    let output = read_until(&master, "leader=sleep");
    assert!(output.contains("answer=42"), "{output}");
    assert!(output.contains("leader=sleep"), "{output}");
}

#[tokio::test]
async fn tty_mode_gives_a_terminal_of_the_containers_devpts() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = registry();
    let container = Container::boxed(&registry, 380_000);
    let request = plain("boxed", OpenMode::Tty);
    let (reply, master) = open(&registry, &request).await;
    // The peer exists in the container's devpts, and what is written there comes out.
    let peer = std::fs::OpenOptions::new()
        .write(true)
        .open(container.inside(&reply.pty_path))
        .unwrap();
    rustix::io::write(peer.as_fd(), b"through the tty\n").unwrap();
    assert!(read_until(&master, "through the tty").contains("through the tty"));
    let device = |path: std::path::PathBuf| std::fs::metadata(path).unwrap().dev();
    let theirs = device(container.inside("dev/pts/ptmx"));
    assert_eq!(device(container.inside(&reply.pty_path)), theirs);
    assert_ne!(
        device("/dev/pts/ptmx".into()),
        theirs,
        "the pty is the host's"
    );
}

#[tokio::test]
async fn login_shows_the_containers_prompt() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = registry();
    let _container = Container::boxed(&registry, 390_000);
    let request = plain("boxed", OpenMode::Login);
    let (_, master) = open(&registry, &request).await;
    let output = read_until(&master, "login:");
    assert!(output.contains("container login:"), "{output}");
}

#[tokio::test]
async fn login_without_a_getty_or_login_in_the_container_is_no_ipc() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = registry();
    let _container = Container::boxed(&registry, 395_000);
    // Hide the container's programs (its /usr is the host's) under empty directories.
    let empty = tempfile::tempdir().unwrap();
    let mut conn = registry.connect().await;
    for hidden in ["/usr/bin", "/usr/sbin"] {
        let request = BindMountRequest {
            lookup: MachineLookup::by_name("boxed"),
            source: empty.path().to_str().unwrap().to_owned(),
            destination: Some(hidden.to_owned()),
            read_only: Some(true),
            mkdir: None,
        };
        conn.bind_mount(&request).await.unwrap().unwrap();
    }
    let request = plain("boxed", OpenMode::Login);
    let reply = conn.open(&request).await.unwrap();
    assert_eq!(reply.err(), Some(MachineError::NoIPC));
}

#[tokio::test]
async fn the_host_has_a_shell_too() {
    if !require::root() {
        return;
    }
    let registry = registry();
    let (reply, master) = open(&registry, &shell(".host", None, Some("echo host-$((1+1))"))).await;
    assert!(reply.pty_path.starts_with("/dev/pts/"));
    assert!(read_until(&master, "host-2").contains("host-2"));
}

#[tokio::test]
async fn the_host_has_a_login_prompt_too() {
    if !(require::root() && require::program("agetty")) {
        return;
    }
    let registry = registry();
    let request = plain(".host", OpenMode::Login);
    let (_, master) = open(&registry, &request).await;
    let output = read_until(&master, "login:");
    assert!(output.contains("login:"), "{output}");
}

#[tokio::test]
async fn errors_are_machineds() {
    if !(require::root() && require::varlinkctl() && require::program("setpriv")) {
        return;
    }
    let registry = registry();
    let vm = Proc::sleeper();
    register_raw(&registry, "vm", "vm", vm.pid());
    let roots = Proc::sleeper();
    register_raw(&registry, "roots", "container", roots.pid());
    let mut conn = registry.connect().await;
    for (request, expected) in [
        (shell("vm", None, Some("true")), MachineError::NotSupported),
        (
            shell("nope", None, Some("true")),
            MachineError::NoSuchMachine,
        ),
        (
            shell("roots", Some("nobody-berth"), Some("true")),
            MachineError::NoSuchUser,
        ),
    ] {
        let reply = conn.open(&request).await.unwrap();
        assert_eq!(reply.err(), Some(expected), "{request:?}");
    }
    let socket = registry.socket();
    let method = "io.systemd.Machine.Open";
    for (params, field) in [
        (
            json!({"name": "roots", "mode": "shell", "path": "bin/sh"}),
            "path",
        ),
        (
            json!({"name": "roots", "mode": "shell", "user": "a:b"}),
            "user",
        ),
        (
            json!({"name": "roots", "mode": "shell", "environment": ["1A=b"]}),
            "environment",
        ),
        (
            json!({"name": "roots", "mode": "shell", "environment": ["novalue"]}),
            "environment",
        ),
        (json!({"name": "roots", "mode": "window"}), "mode"),
    ] {
        let run = varlinkctl_call(&socket, method, &params.to_string(), false);
        assert!(
            run.stderr.contains("InvalidParameter") && run.stdout.contains(field),
            "{params}: {run:?}"
        );
    }
    // A job too large for the helper's datagram (machined's command lines are bounded too).
    let huge =
        json!({"name": "roots", "mode": "shell", "path": "/bin/sh", "args": ["x".repeat(200_000)]});
    let reply = RawClient::connect(&socket).method(method, huge);
    assert_eq!(reply["error"], "org.varlink.service.InvalidParameter");
    assert_eq!(reply["parameters"]["parameter"], "args");
    let denied = varlinkctl_call_as(NOBODY, &socket, method, r#"{"name":"roots","mode":"tty"}"#);
    assert!(
        denied
            .stderr
            .contains("org.varlink.service.PermissionDenied"),
        "{denied:?}"
    );
}
