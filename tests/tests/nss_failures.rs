//! The module when the registry cannot answer (a lookup costs at most the 100 ms timeout, then
//! `UNAVAIL`), and when the process says it must not ask (deadlock guard, setuid programs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::daemon::Registry;
use berth_tests::netns::NetnsLeader;
use berth_tests::nss::{Driver, Outcome};
use berth_tests::require;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

const SUCCESS: i64 = 1;
const UNAVAIL: i64 = -1;
const NO_RECOVERY: i64 = 3;

/// Generous: the module waits 100 ms; the rest is a busy machine's scheduling.
const NO_HANG: Duration = Duration::from_millis(500);

fn can_run() -> bool {
    require::root()
        && require::program("unshare")
        && require::program("nsenter")
        && require::program("cc")
        && require::program("setpriv")
}

/// A registry with container `demo` at 198.51.100.7.
fn registry_with_demo() -> (Registry, NetnsLeader) {
    let registry = Registry::start();
    let leader = NetnsLeader::ipv4_only(&["198.51.100.7/24"]);
    registry.register("demo", "container", leader.pid(), &[]);
    (registry, leader)
}

fn lookup(driver: &Driver, socket: &Path) -> Outcome {
    driver.call(socket, "gethostbyname4_r", "demo", 0, 4096)
}

fn assert_resolved(out: &Outcome) {
    assert_eq!(out.int("status"), SUCCESS, "{out:?}");
    assert_eq!(out.addresses(), ["2 198.51.100.7 scopeid=0 name=demo"]);
}

fn assert_unavailable(out: &Outcome, errnos: &[i32]) {
    let (status, errno, h_errno) = out.status();
    assert_eq!((status, h_errno), (UNAVAIL, NO_RECOVERY), "{out:?}");
    assert!(
        errnos.iter().any(|e| i64::from(*e) == errno),
        "{errnos:?}: {out:?}"
    );
}

#[test]
fn a_hung_or_stopped_registry_costs_a_lookup_at_most_the_timeout() {
    if !can_run() {
        return;
    }
    let (mut registry, _leader) = registry_with_demo();
    let fresh = NetnsLeader::ipv4_only(&["198.51.100.8/24"]);
    registry.register("fresh", "container", fresh.pid(), &[]);
    let (socket, driver) = (registry.socket(), Driver::new());
    assert_resolved(&lookup(&driver, &socket));
    registry.wait_for_host_entry("demo");

    // Frozen: the kernel still accepts the connection, nobody answers. The host table still
    // answers what the registry knew (it still vouches for it); a container nobody looked up
    // yet has to be asked about.
    registry.suspend();
    let known = lookup(&driver, &socket);
    let out = driver.call(&socket, "gethostbyname4_r", "fresh", 0, 4096);
    registry.resume();
    assert_resolved(&known);
    assert_unavailable(&out, &[libc::ETIMEDOUT]);
    assert!(
        out.elapsed() >= Duration::from_millis(50),
        "it waited: {out:?}"
    );
    assert!(out.elapsed() < NO_HANG, "{out:?}");
    assert_resolved(&lookup(&driver, &socket));

    registry.stop();
    let out = lookup(&driver, &socket);
    assert_unavailable(&out, &[libc::ECONNREFUSED, libc::ENOENT]);
    assert!(out.elapsed() < NO_HANG, "{out:?}");
}

#[test]
fn a_full_listen_backlog_costs_a_lookup_at_most_the_timeout() {
    if !require::program("cc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let listener = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&listener, &SocketAddrUnix::new(&path).unwrap()).unwrap();
    rustix::net::listen(&listener, 0).unwrap();
    // Queue connections that are never accepted until the kernel turns more away.
    let mut queued = Vec::new();
    let full = (0..16).any(|_| {
        let client = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        let refused = rustix::net::connect(&client, &SocketAddrUnix::new(&path).unwrap()).is_err();
        queued.push(client);
        refused
    });
    assert!(full, "the backlog never filled");

    let out = lookup(&Driver::new(), &path);
    assert_unavailable(&out, &[libc::ETIMEDOUT]);
    assert!(
        out.elapsed() >= Duration::from_millis(50),
        "it waited: {out:?}"
    );
    assert!(out.elapsed() < NO_HANG, "{out:?}");
}

#[test]
fn the_registrys_own_activation_does_not_ask_it() {
    if !can_run() {
        return;
    }
    let (registry, _leader) = registry_with_demo();
    let (socket, driver) = (registry.socket(), Driver::new());
    let activating = |unit: &str, scope: &str| {
        let mut command = driver.command(&socket, "gethostbyname4_r", "demo", 0, 4096);
        command
            .env("SYSTEMD_ACTIVATION_UNIT", unit)
            .env("SYSTEMD_ACTIVATION_SCOPE", scope);
        command
    };
    let out = Outcome::of(&mut activating("berth-machine-registry.service", "system"));
    assert_unavailable(&out, &[libc::EDEADLK]);
    assert_resolved(&Outcome::of(&mut activating(
        "berth-machine-registry.service",
        "user",
    )));
    assert_resolved(&Outcome::of(&mut activating(
        "systemd-machined.service",
        "system",
    )));
    // Only root's lookups are guarded.
    let command = activating("berth-machine-registry.service", "system");
    assert_resolved(&Outcome::of(&mut as_nobody(&command, None)));
}

#[test]
fn setuid_programs_ignore_the_socket_override() {
    if !can_run() {
        return;
    }
    let (registry, _leader) = registry_with_demo();
    let driver = Driver::new();
    let command = driver.command(&registry.socket(), "gethostbyname4_r", "demo", 0, 4096);
    let mut plain = wrap(empty_run(), &as_nobody(&command, None), None);
    assert_resolved(&Outcome::of(&mut plain));

    // The same program, setuid root: AT_SECURE, so the module asks the system socket, which
    // does not exist under an empty /run.
    let dir = tempfile::Builder::new()
        .prefix("berth-nss-suid-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let setuid = dir.path().join("nss_call");
    std::fs::copy(driver.binary(), &setuid).unwrap();
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let mut secure = wrap(empty_run(), &as_nobody(&command, Some(&setuid)), None);
    assert_unavailable(&Outcome::of(&mut secure), &[libc::ENOENT]);
}

/// `command` run as user nobody (UID and GID 65534, no groups), with `program` instead of
/// its own if given.
fn as_nobody(command: &Command, program: Option<&Path>) -> Command {
    let mut setpriv = Command::new("setpriv");
    setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    wrap(setpriv, command, program)
}

/// A private mount namespace with an empty `/run`, to run a command in.
fn empty_run() -> Command {
    let mut unshare = Command::new("unshare");
    unshare.args([
        "-m",
        "--",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /run && exec \"$@\"",
        "sh",
    ]);
    unshare
}

/// `prefix` followed by the program (or `program`) and arguments of `command`, with its
/// environment.
fn wrap(mut prefix: Command, command: &Command, program: Option<&Path>) -> Command {
    prefix
        .arg(program.map_or(command.get_program(), Path::as_os_str))
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            prefix.env(key, value);
        }
    }
    prefix
}
