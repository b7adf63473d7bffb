//! `OpenRootDirectory`: the machine's root directory passed as a descriptor (`SCM_RIGHTS`),
//! through the typed proxy and through an independent client (python's `recvmsg`).

use std::os::fd::AsFd;
use std::process::Command;

use berth_interfaces::client::EnterProxy;
use berth_interfaces::machine::{MachineError, MachineLookup};
use berth_tests::clients::{varlinkctl_call, varlinkctl_call_as};
use berth_tests::container::Container;
use berth_tests::daemon::Registry;
use berth_tests::machines::register_raw;
use berth_tests::process::Proc;
use berth_tests::require;
use berth_tests::users::NOBODY;

/// The text of `path` below the directory `dir`.
fn read_below(dir: &impl AsFd, path: &str) -> String {
    let fd = rustix::fs::openat(
        dir,
        path,
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    std::io::read_to_string(std::fs::File::from(fd)).unwrap()
}

#[tokio::test]
async fn the_root_directory_of_a_container_and_of_the_host_is_passed() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let _container = Container::boxed(&registry, 300_000);
    let mut conn = registry.connect().await;

    let root = conn
        .open_root_directory(&MachineLookup::by_name("boxed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read_below(&root, "etc/os-release"), "ID=berthbox\n");
    // The root is the container's, its mounts included (its own /tmp, not the host's).
    assert!(rustix::fs::statat(&root, "dev/pts/ptmx", rustix::fs::AtFlags::empty()).is_ok());

    let host = conn
        .open_root_directory(&MachineLookup::by_name(".host"))
        .await
        .unwrap()
        .unwrap();
    let (ours, theirs) = (
        rustix::fs::stat("/").unwrap(),
        rustix::fs::fstat(&host).unwrap(),
    );
    assert_eq!((ours.st_dev, ours.st_ino), (theirs.st_dev, theirs.st_ino));
}

#[tokio::test]
async fn errors_are_machineds() {
    if !(require::root() && require::varlinkctl() && require::program("setpriv")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let vm = Proc::sleeper();
    register_raw(&registry, "vm", "vm", vm.pid());
    let roots = Proc::sleeper();
    register_raw(&registry, "roots", "container", roots.pid());
    let mut conn = registry.connect().await;
    for (name, expected) in [
        ("vm", MachineError::NotSupported),
        ("nope", MachineError::NoSuchMachine),
    ] {
        let reply = conn
            .open_root_directory(&MachineLookup::by_name(name))
            .await
            .unwrap();
        assert_eq!(reply.err(), Some(expected), "{name}");
    }
    let method = "io.systemd.Machine.OpenRootDirectory";
    let denied = varlinkctl_call_as(NOBODY, &registry.socket(), method, r#"{"name":"roots"}"#);
    assert!(
        denied
            .stderr
            .contains("org.varlink.service.PermissionDenied"),
        "{denied:?}"
    );
    let unknown = varlinkctl_call(&registry.socket(), method, r#"{"name":"nope"}"#, false);
    assert!(unknown.stderr.contains("NoSuchMachine"), "{unknown:?}");
}

/// An independent client: python's `socket.recvmsg` takes the descriptor.
const PYTHON_CLIENT: &str = r#"
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"method": "io.systemd.Machine.OpenRootDirectory",
                      "parameters": {"name": sys.argv[2]}}).encode() + b"\0")
fds = array.array("i")
data, ancillary, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
for level, kind, payload in ancillary:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
reply = json.loads(data.rstrip(b"\0"))
fd = fds[reply["parameters"]["fileDescriptor"]]
print(open(os.open("etc/os-release", os.O_RDONLY, dir_fd=fd)).read(), end="")
"#;

#[test]
fn an_independent_client_receives_the_descriptor() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let _container = Container::boxed(&registry, 310_000);
    let output = Command::new("/usr/bin/python3")
        .args(["-c", PYTHON_CLIENT])
        .arg(registry.socket())
        .arg("boxed")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ID=berthbox\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
