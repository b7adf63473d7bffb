//! An unprivileged user's own container (a user namespace they made, mapping only their UID
//! as root): they get a shell in it and copy in and out with `berthctl`, everything with their
//! own rights; another user may not; nobody but root bind-mounts.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use berth_tests::clients::{Run, run, varlinkctl_call_as};
use berth_tests::container::Container;
use berth_tests::daemon::{Options, Registry};
use berth_tests::require;
use berth_tests::users::{NOBODY, as_user};
use serde_json::json;

const STRANGER: u32 = 4242;

fn berthctl_as(uid: u32, registry: &Registry, args: &[&str]) -> Run {
    run(as_user(uid, berth_tests::workspace_binary("berthctl"))
        .arg("--runtime-dir")
        .arg(registry.runtime_dir())
        .args(args)
        .stdin(Stdio::null()))
}

#[test]
fn a_user_enters_their_own_container_with_their_own_rights() {
    if !(require::root()
        && require::program("unshare")
        && require::program("setpriv")
        && require::varlinkctl())
    {
        return;
    }
    let registry = Registry::with(Options {
        cgroup: false,
        env: vec![("RUST_LOG".into(), "debug".into())],
        ..Options::default()
    });
    let container = Container::start_owned_by(NOBODY);
    let register = json!({"name": "mine", "class": "container", "leader": container.pid()});
    let registered = varlinkctl_call_as(
        NOBODY,
        &registry.socket(),
        "io.systemd.Machine.Register",
        &register.to_string(),
    );
    assert!(registered.success, "{registered:?}");

    let shell = berthctl_as(
        NOBODY,
        &registry,
        &[
            "shell",
            "mine",
            "/bin/sh",
            "-c",
            "echo uid=$(id -u) host=$(hostname)",
        ],
    );
    assert!(shell.success, "{shell:?}\n{}", registry.log());
    assert!(shell.stdout.contains("uid=0 host=container"), "{shell:?}");

    let host = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("chown")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(host.path())
        .status()
        .unwrap();
    assert!(status.success());
    let file = host.path().join("note");
    fs::write(&file, "note\n").unwrap();
    std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();
    let to = berthctl_as(
        NOBODY,
        &registry,
        &["copy-to", "mine", file.to_str().unwrap(), "/root/note"],
    );
    assert!(to.success, "{to:?}");
    assert_eq!(
        fs::metadata(container.inside("root/note")).unwrap().uid(),
        NOBODY
    );
    let back = host.path().join("back");
    let from = berthctl_as(
        NOBODY,
        &registry,
        &["copy-from", "mine", "/root/note", back.to_str().unwrap()],
    );
    assert!(from.success, "{from:?}");
    assert_eq!(fs::metadata(&back).unwrap().uid(), NOBODY);
    // The user's rights, not root's: the host's shadow file stays out of reach.
    let shadow = host.path().join("shadow");
    let refused = berthctl_as(
        NOBODY,
        &registry,
        &["copy-to", "mine", "/etc/shadow", "/root/shadow"],
    );
    assert!(
        !refused.success && refused.stderr.contains("PermissionDenied"),
        "{refused:?}"
    );
    assert!(!shadow.exists() && !container.inside("root/shadow").exists());

    let bind = berthctl_as(
        NOBODY,
        &registry,
        &["bind", "mine", host.path().to_str().unwrap(), "/mnt"],
    );
    assert!(bind.stderr.contains("PermissionDenied"), "{bind:?}");
    let stranger = berthctl_as(STRANGER, &registry, &["shell", "mine", "/bin/true"]);
    assert!(stranger.stderr.contains("PermissionDenied"), "{stranger:?}");
}
