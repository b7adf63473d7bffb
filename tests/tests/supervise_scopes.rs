//! `supervise` unprivileged (a `--user` registry, a delegated cgroup) and nested (a
//! `supervise` as another one's payload).

use std::path::Path;

use berth_tests::clients::RawClient;
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::is_dead;
use berth_tests::supervise::{DelegatedCgroup, Launch, Supervise, list, pids_in};
use berth_tests::{require, wait};
use serde_json::json;

const NOBODY: u32 = 65534;

/// A payload script that leaves one `setsid` escapee (its PID in `file`) and sleeps.
fn escaping(file: &Path) -> String {
    format!(
        "setsid sleep 1000 & echo $! >> {}; exec sleep 1000",
        file.display()
    )
}

fn terminate(registry: &Registry, name: &str) {
    let reply = RawClient::connect(&registry.socket())
        .method("io.systemd.Machine.Terminate", json!({"name": name}));
    assert_eq!(reply, json!({"parameters": {}}), "Terminate {name}");
}

#[test]
fn an_unprivileged_supervise_works_with_a_user_registry_in_a_delegated_cgroup() {
    if !(require::root() && require::program("setpriv")) {
        return;
    }
    let cgroup = DelegatedCgroup::create(NOBODY);
    let registry = Registry::with(Options {
        user: true,
        run_as: Some(NOBODY),
        cgroup: false,
        args: vec!["--cgroup-root".into(), cgroup.path.display().to_string()],
        ..Options::default()
    });
    let file = registry.runtime_dir().join("pids");
    // A root shell moves itself into the delegated cgroup, then becomes nobody.
    let enter = format!(
        "echo $$ > {}/cgroup.procs && exec {} \"$@\"",
        cgroup.supervisor_dir().display(),
        berth_tests::users::prefix(NOBODY).join(" ")
    );
    let runtime = registry.runtime_dir().display().to_string();
    let launch = Launch {
        registry: Some(&registry),
        args: vec!["--user".into()],
        wrapper: vec!["sh".into(), "-c".into(), enter, "sh".into()],
        env: vec![("XDG_RUNTIME_DIR".into(), runtime)],
        ..Launch::default()
    };
    let script = escaping(&file);
    let mut supervise = Supervise::launch("unprivileged", &["sh", "-c", &script], launch);
    let escapee = pids_in(&file, 1)[0];
    let machine = list(&registry, "unprivileged").expect("registered");
    assert_eq!(machine["supervisor"]["pid"], supervise.pid());
    let leaf = cgroup.supervisor_dir().join("unprivileged-1");
    assert!(leaf.exists(), "no leaf in the delegated cgroup");
    let uid = std::fs::read_to_string(format!("/proc/{escapee}/status")).unwrap();
    assert!(uid.lines().any(|l| l.starts_with("Uid:\t65534")), "{uid}");
    terminate(&registry, "unprivileged");
    assert_eq!(supervise.wait_exit(), 128 + 9);
    assert!(is_dead(escapee));
    assert!(!leaf.exists());
}

#[test]
fn an_unprivileged_supervise_without_a_cgroup_falls_back_to_subreaper_mode() {
    if !(require::root() && require::program("setpriv")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    rustix::fs::chown(
        dir.path(),
        Some(rustix::fs::Uid::from_raw(NOBODY)),
        Some(rustix::fs::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    let file = dir.path().join("pids");
    let launch = Launch {
        dir: Some(dir.path()),
        wrapper: berth_tests::users::prefix(NOBODY),
        ..Launch::default()
    };
    let script = format!("setsid sleep 1000 & echo $! >> {}; exit 3", file.display());
    let mut supervise = Supervise::launch("alone", &["sh", "-c", &script], launch);
    let escapee = pids_in(&file, 1)[0];
    assert_eq!(supervise.wait_exit(), 3);
    assert!(is_dead(escapee));
}

/// `outer` runs `inner`, which runs a payload with an escapee; `victim` is terminated
/// through the registry, and everything ends.
fn nested(victim: &str) {
    let registry = Registry::start();
    let file = registry.runtime_dir().join("pids");
    let inner_socket = registry.runtime_dir().join("inner.sock");
    let binary = berth_tests::workspace_binary("supervise");
    let registry_socket = registry.socket();
    let script = escaping(&file);
    let payload = [
        binary.to_str().unwrap(),
        "--name",
        "inner",
        "--registry",
        registry_socket.to_str().unwrap(),
        "--control-socket",
        inner_socket.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &script,
    ];
    let launch = Launch {
        registry: Some(&registry),
        ..Launch::default()
    };
    let mut outer = Supervise::launch("outer", &payload, launch);
    wait::until("the inner machine", || list(&registry, "inner").is_some());
    let escapee = pids_in(&file, 1)[0];
    let inner = list(&registry, "inner").unwrap();
    let outer_machine = list(&registry, "outer").unwrap();
    assert_eq!(inner["supervisor"], outer_machine["leader"]);
    let root = registry.cgroup_root().expect("a cgroup root");
    assert!(root.join("outer-1/inner-1").exists());
    terminate(&registry, victim);
    assert_eq!(outer.wait_exit(), 128 + 9);
    assert!(is_dead(escapee));
    assert!(list(&registry, "inner").is_none() && list(&registry, "outer").is_none());
    assert!(!root.join("outer-1").exists());
}

#[test]
fn terminating_the_outer_of_two_nested_machines_ends_both() {
    if require::root() {
        nested("outer");
    }
}

#[test]
fn terminating_the_inner_of_two_nested_machines_ends_both() {
    if require::root() {
        nested("inner");
    }
}
