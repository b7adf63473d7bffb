//! `CopyFrom` and `CopyTo` with a real container shifted by a user namespace: owners
//! translated, modes, symlinks and holes kept, `replace`, hostile symlinks on either side,
//! cancellation by hanging up, and machined's errors.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use berth_interfaces::client::EnterProxy;
use berth_interfaces::machine::{CopyRequest, MachineError, MachineLookup};
use berth_tests::clients::{RawClient, varlinkctl_call, varlinkctl_call_as};
use berth_tests::container::{ALICE, Container};
use berth_tests::daemon::Registry;
use berth_tests::machines::register_raw;
use berth_tests::process::Proc;
use berth_tests::users::NOBODY;
use berth_tests::{require, wait};
use serde_json::json;

fn request(source: &str, destination: &Path, replace: bool) -> CopyRequest {
    CopyRequest {
        lookup: MachineLookup::by_name("boxed"),
        source: source.to_owned(),
        destination: Some(destination.to_str().unwrap().to_owned()),
        replace: Some(replace),
    }
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    (meta.uid(), meta.gid())
}

fn chown(path: &Path, id: u32) {
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
}

/// Nothing named like a copy under way is left in `dir`.
fn no_leftovers(dir: &Path) -> bool {
    fs::read_dir(dir)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".#"))
}

#[tokio::test]
async fn a_tree_comes_out_and_goes_in_with_owners_translated() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 320_000);
    let shift = container.shift();
    let data = container.inside("srv/data");
    fs::create_dir_all(data.join("alice")).unwrap();
    fs::write(data.join("hello"), "hello\n").unwrap();
    fs::set_permissions(data.join("hello"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::write(data.join("alice/notes"), "alice's\n").unwrap();
    symlink("/etc/shadow", data.join("shadow")).unwrap();
    let sparse = fs::File::create(data.join("sparse")).unwrap();
    sparse.set_len(256 << 20).unwrap();
    sparse.write_all_at(b"tail", (256 << 20) - 4).unwrap();
    for path in ["", "hello", "shadow", "sparse"] {
        chown(&data.join(path), shift);
    }
    chown(&data.join("alice"), shift + ALICE);
    chown(&data.join("alice/notes"), shift + ALICE);

    let host = tempfile::tempdir().unwrap();
    let out = host.path().join("out");
    let mut conn = registry.connect().await;
    conn.copy_from(&request("/srv/data", &out, false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fs::read_to_string(out.join("hello")).unwrap(), "hello\n");
    assert_eq!(
        fs::metadata(out.join("hello")).unwrap().mode() & 0o7777,
        0o751
    );
    assert_eq!(owner(&out.join("hello")), (shift, shift));
    assert_eq!(
        owner(&out.join("alice/notes")),
        (shift + ALICE, shift + ALICE)
    );
    assert_eq!(
        fs::read_link(out.join("shadow")).unwrap(),
        Path::new("/etc/shadow")
    );
    let sparse = fs::metadata(out.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 256 << 20);
    assert!(sparse.blocks() * 512 < (1 << 20), "holes were written");
    assert!(no_leftovers(host.path()));

    // Into the machine: host root's file becomes the container root's; alice's stays hers.
    fs::write(host.path().join("from-host"), "host\n").unwrap();
    conn.copy_to(&request(
        host.path().join("from-host").to_str().unwrap(),
        Path::new("/srv/from-host"),
        false,
    ))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(owner(&container.inside("srv/from-host")), (shift, shift));
    conn.copy_to(&request(
        out.to_str().unwrap(),
        Path::new("/srv/back"),
        false,
    ))
    .await
    .unwrap()
    .unwrap();
    let back = container.inside("srv/back");
    assert_eq!(
        owner(&back.join("alice/notes")),
        (shift + ALICE, shift + ALICE)
    );
    assert_eq!(
        fs::read_to_string(back.join("sparse")).unwrap().len(),
        256 << 20
    );
}

#[tokio::test]
async fn replace_is_needed_to_overwrite() {
    if !(require::root() && require::program("unshare") && require::varlinkctl()) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 330_000);
    fs::write(container.inside("srv-file"), "inside\n").unwrap();
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("file");
    fs::write(&file, "outside\n").unwrap();
    let params = |replace: bool| {
        json!({"name": "boxed", "source": "/srv-file", "destination": file, "replace": replace})
            .to_string()
    };
    let method = "io.systemd.Machine.CopyFrom";
    let refused = varlinkctl_call(&registry.socket(), method, &params(false), false);
    assert!(refused.stderr.contains("io.systemd.System"), "{refused:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "outside\n");
    let replaced = varlinkctl_call(&registry.socket(), method, &params(true), false);
    assert!(replaced.success, "{replaced:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "inside\n");
    assert!(no_leftovers(host.path()));
}

#[tokio::test]
async fn symlinks_never_lead_out_of_the_container() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 340_000);
    symlink("/etc", container.inside("etc-link")).unwrap();
    symlink("../../../../../../etc", container.inside("up-link")).unwrap();
    let host = tempfile::tempdir().unwrap();
    let mut conn = registry.connect().await;

    // Reading through them reads the container's /etc (its passwd), never the host's shadow.
    let passwd = host.path().join("passwd");
    conn.copy_from(&request("/up-link/passwd", &passwd, false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fs::read(&passwd).unwrap(),
        fs::read(container.inside("etc/passwd")).unwrap()
    );
    let shadow = host.path().join("shadow");
    let reply = conn
        .copy_from(&request("/etc-link/shadow", &shadow, false))
        .await;
    assert!(!matches!(reply, Ok(Ok(()))), "the host's shadow was read");
    assert!(!shadow.exists());

    // Writing through them writes into the container's /etc.
    let marker = host.path().join("marker");
    fs::write(&marker, "x").unwrap();
    let name = format!("berth-test-{}", std::process::id());
    conn.copy_to(&request(
        marker.to_str().unwrap(),
        &Path::new("/up-link").join(&name),
        false,
    ))
    .await
    .unwrap()
    .unwrap();
    assert!(container.root().join("etc").join(&name).exists());
    assert!(!Path::new("/etc").join(&name).exists());

    // A host symlink is copied in as a symlink, not as what it points at.
    symlink("/etc/shadow", host.path().join("to-shadow")).unwrap();
    conn.copy_to(&request(
        host.path().join("to-shadow").to_str().unwrap(),
        Path::new("/to-shadow"),
        false,
    ))
    .await
    .unwrap()
    .unwrap();
    let copied = container.root().join("to-shadow");
    assert_eq!(fs::read_link(&copied).unwrap(), Path::new("/etc/shadow"));
}

/// `/big` in the container: 1 GiB of data (no holes), long enough to copy that a test can
/// act while it runs.
fn write_big_file(container: &Container) {
    let big = fs::File::create(container.root().join("big")).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for n in 0..1024 {
        big.write_all_at(&chunk, n << 20).unwrap();
    }
}

/// A client that sends a call and hangs up at once.
const HANG_UP: &str = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"method": "io.systemd.Machine.CopyFrom",
                      "parameters": {"name": "boxed", "source": "/big",
                                     "destination": sys.argv[2]}}).encode() + b"\0")
s.close()
"#;

#[test]
fn hanging_up_cancels_the_copy_and_leaves_nothing() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 350_000);
    write_big_file(&container);
    let host = tempfile::tempdir().unwrap();
    let destination = host.path().join("big");
    let status = Command::new("/usr/bin/python3")
        .args(["-c", HANG_UP])
        .arg(registry.socket())
        .arg(&destination)
        .status()
        .unwrap();
    assert!(status.success());
    wait::until("the copy to be cancelled and cleaned up", || {
        fs::read_dir(host.path()).unwrap().count() == 0
    });
    assert!(!destination.exists());
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
    let socket = registry.socket();
    let call = |params: serde_json::Value| {
        varlinkctl_call(
            &socket,
            "io.systemd.Machine.CopyTo",
            &params.to_string(),
            false,
        )
    };
    let cases = [
        (
            json!({"name": "nope", "source": "/etc/hostname"}),
            "NoSuchMachine",
        ),
        (
            json!({"name": "vm", "source": "/etc/hostname"}),
            "NotSupported",
        ),
        (
            json!({"name": "roots", "source": "etc/hostname"}),
            "InvalidParameter",
        ),
        (
            json!({"name": "roots", "source": "/etc/../etc"}),
            "InvalidParameter",
        ),
        (
            json!({"name": "roots", "source": "/etc/hostname", "destination": "x"}),
            "InvalidParameter",
        ),
        (
            json!({"name": "roots", "source": "/nonexistent-berth"}),
            "io.systemd.System",
        ),
        // Its root is the host's: the destination exists.
        (
            json!({"name": "roots", "source": "/etc/hostname"}),
            "io.systemd.System",
        ),
    ];
    for (params, expected) in cases {
        let run = call(params.clone());
        assert!(run.stderr.contains(expected), "{params}: {run:?}");
    }
    let denied = varlinkctl_call_as(
        NOBODY,
        &socket,
        "io.systemd.Machine.CopyFrom",
        r#"{"name":"roots","source":"/etc/hostname","destination":"/tmp/x"}"#,
    );
    assert!(
        denied
            .stderr
            .contains("org.varlink.service.PermissionDenied"),
        "{denied:?}"
    );
    let mut conn = registry.connect().await;
    let reply = conn
        .copy_from(&CopyRequest {
            lookup: MachineLookup::by_name("vm"),
            source: "/x".into(),
            destination: None,
            replace: None,
        })
        .await
        .unwrap();
    assert_eq!(reply.err(), Some(MachineError::NotSupported));
}

/// A client that sends a copy and waits for its answer, printing it.
const COPY_AND_WAIT: &str = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"method": "io.systemd.Machine.CopyFrom",
                      "parameters": {"name": "boxed", "source": "/big",
                                     "destination": sys.argv[2]}}).encode() + b"\0")
reply = b""
while not reply.endswith(b"\0"):
    reply += s.recv(65536)
print(reply.rstrip(b"\0").decode())
"#;

#[test]
fn a_long_copy_never_blocks_other_clients() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 355_000);
    write_big_file(&container);
    let host = tempfile::tempdir().unwrap();
    let destination = host.path().join("big");
    let mut copying = Proc::spawn(
        Command::new("/usr/bin/python3")
            .args(["-c", COPY_AND_WAIT])
            .arg(registry.socket())
            .arg(&destination)
            .stdout(std::process::Stdio::piped()),
    );
    wait::until("the copy to start", || {
        fs::read_dir(host.path()).unwrap().count() > 0
    });
    // While it runs, other clients are answered at once.
    for _ in 0..20 {
        let reply = RawClient::connect(&registry.socket())
            .method("io.systemd.Machine.List", json!({"name": "boxed"}));
        assert_eq!(reply["parameters"]["name"], "boxed", "{reply}");
    }
    assert!(
        !destination.exists(),
        "the copy was done before the other calls"
    );
    let mut output = String::new();
    let stdout = copying.child().stdout.take().unwrap();
    std::io::Read::read_to_string(&mut { stdout }, &mut output).unwrap();
    assert!(output.contains(r#"{"parameters":{}}"#), "{output}");
    assert_eq!(fs::metadata(&destination).unwrap().len(), 1 << 30);
}
