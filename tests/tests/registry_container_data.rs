//! Whatever the registry reads inside a machine on a caller's behalf is read with that
//! caller's rights: an unprivileged user who owns a container cannot make the registry (root)
//! read a root-only host file for them, by bind mount or by symlink.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use berth_tests::clients::{Run, varlinkctl_call, varlinkctl_call_as};
use berth_tests::daemon::Registry;
use berth_tests::process::Proc;
use berth_tests::require;
use berth_tests::users::{NOBODY, as_user};
use serde_json::{Value, json};

const SECRET: &str = "SECRET=hunter2";

fn ready() -> bool {
    require::root()
        && require::varlinkctl()
        && require::program("setpriv")
        && require::program("unshare")
}

/// A directory anyone may search, with a root-only file holding a KEY=VALUE secret and a file
/// anyone may read.
fn host_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, text, mode) in [("secret", SECRET, 0o600), ("public", "ID=berthtest", 0o644)] {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{text}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

/// A container `nobody` makes for themselves (`unshare --map-root-user --user --mount --net`,
/// sharing the host's root directory) after running `setup` inside it.
fn container_of_nobody(setup: &str) -> Proc {
    let script = format!("{setup} && echo ready && exec sleep 100000");
    let mut leader = Proc::spawn(
        as_user(NOBODY, "unshare")
            .args([
                "--map-root-user",
                "--user",
                "--mount",
                "--net",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let stdout = leader.child().stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the container's setup failed");
    leader
}

fn register(registry: &Registry, name: &str, leader: &Proc) {
    let params =
        json!({"name": name, "class": "container", "leaderProcessId": {"pid": leader.pid()}});
    let run = varlinkctl_call_as(
        NOBODY,
        &registry.socket(),
        "io.systemd.Machine.Register",
        &params.to_string(),
    );
    assert!(run.success, "{run:?}");
}

fn list_as_nobody(registry: &Registry, name: &str, metadata: &str) -> Run {
    let params = json!({"name": name, "acquireMetadata": metadata});
    varlinkctl_call_as(
        NOBODY,
        &registry.socket(),
        "io.systemd.Machine.List",
        &params.to_string(),
    )
}

fn os_release(run: &Run) -> Value {
    run.json().get("OSRelease").cloned().unwrap_or(Value::Null)
}

/// Nobody's container with `setup` leaks nothing: `yes` is refused, `graceful` leaves the
/// os-release out, and root (who may read the file) still gets it.
fn refused_to_its_owner(registry: &Registry, name: &str, setup: &str) {
    let leader = container_of_nobody(setup);
    register(registry, name, &leader);
    let strict = list_as_nobody(registry, name, "yes");
    assert!(!strict.success, "{strict:?}");
    assert!(
        strict
            .stderr
            .contains("org.varlink.service.PermissionDenied"),
        "{strict:?}"
    );
    assert!(!strict.stdout.contains("hunter2") && !strict.stderr.contains("hunter2"));
    let graceful = list_as_nobody(registry, name, "graceful");
    assert!(graceful.success, "{graceful:?}");
    assert_eq!(os_release(&graceful), Value::Null, "{graceful:?}");
    assert!(!graceful.stdout.contains("hunter2"));
    let params = json!({"name": name, "acquireMetadata": "graceful"}).to_string();
    let as_root = varlinkctl_call(
        &registry.socket(),
        "io.systemd.Machine.List",
        &params,
        false,
    );
    assert_eq!(os_release(&as_root), json!([SECRET]), "{as_root:?}");
}

#[test]
fn a_root_only_file_bind_mounted_over_os_release_is_not_read_for_its_owner() {
    if !ready() {
        return;
    }
    let files = host_files();
    let registry = Registry::start();
    let secret = files.path().join("secret");
    let setup = format!("mount --bind {} /etc/os-release", secret.display());
    refused_to_its_owner(&registry, "bound", &setup);
}

#[test]
fn a_symlink_to_a_root_only_file_is_not_followed_for_its_owner() {
    if !ready() {
        return;
    }
    let files = host_files();
    let registry = Registry::start();
    let secret = files.path().join("secret");
    let setup = format!(
        "mount -t tmpfs tmpfs /etc && ln -s {} /etc/os-release",
        secret.display()
    );
    refused_to_its_owner(&registry, "linked", &setup);
}

#[test]
fn what_the_owner_may_read_is_read_for_them() {
    if !ready() {
        return;
    }
    let files = host_files();
    let registry = Registry::start();
    let public = files.path().join("public");
    let leader = container_of_nobody(&format!("mount --bind {} /etc/os-release", path(&public)));
    register(&registry, "open", &leader);
    let listed = list_as_nobody(&registry, "open", "graceful");
    assert!(listed.success, "{listed:?}");
    assert_eq!(os_release(&listed), json!(["ID=berthtest"]));
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
