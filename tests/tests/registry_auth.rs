//! Authorization without polkit, checked with varlinkctl run as unprivileged users.

use std::process::{Command, Stdio};

use berth_tests::clients::{Run, varlinkctl_call, varlinkctl_call_as};
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::Proc;
use berth_tests::{require, wait};
use serde_json::json;

const NOBODY: u32 = 65534;
const OTHER: u32 = 65533;

fn ready() -> bool {
    require::root() && require::varlinkctl() && require::program("setpriv")
}

fn register_as(uid: u32, registry: &Registry, name: &str, leader: u32) -> Run {
    let params = json!({"name": name, "class": "container", "leaderProcessId": {"pid": leader}});
    varlinkctl_call_as(
        uid,
        &registry.socket(),
        "io.systemd.Machine.Register",
        &params.to_string(),
    )
}

fn call_as(uid: u32, registry: &Registry, method: &str, params: serde_json::Value) -> Run {
    varlinkctl_call_as(
        uid,
        &registry.socket(),
        &format!("io.systemd.Machine.{method}"),
        &params.to_string(),
    )
}

fn denied(run: &Run) -> bool {
    !run.success && run.stderr.contains("org.varlink.service.PermissionDenied")
}

/// A sleeper running as `uid`.
fn sleeper_as(uid: u32) -> Proc {
    let prefix = berth_tests::process::as_user(uid);
    Proc::spawn(
        Command::new(&prefix[0])
            .args(&prefix[1..])
            .args(["sleep", "100000"]),
    )
}

#[test]
fn users_register_only_leaders_they_own_and_manage_only_their_machines() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let roots = Proc::sleeper();
    let params = json!({"name": "roots", "class": "container", "leader": roots.pid()});
    assert!(
        varlinkctl_call(
            &registry.socket(),
            "io.systemd.Machine.Register",
            &params.to_string(),
            false
        )
        .success
    );

    assert!(denied(&register_as(
        NOBODY,
        &registry,
        "stolen",
        roots.pid()
    )));
    let mine = sleeper_as(NOBODY);
    let run = register_as(NOBODY, &registry, "mine", mine.pid());
    assert!(run.success, "{run:?}");

    let listed = call_as(NOBODY, &registry, "List", json!({"name": "mine"}));
    assert_eq!(listed.json()["UID"], NOBODY);
    for method in ["Unregister", "Terminate"] {
        assert!(
            denied(&call_as(
                NOBODY,
                &registry,
                method,
                json!({"name": "roots"})
            )),
            "{method}"
        );
        assert!(
            denied(&call_as(OTHER, &registry, method, json!({"name": "mine"}))),
            "{method}"
        );
    }
    assert!(denied(&call_as(
        NOBODY,
        &registry,
        "Kill",
        json!({"name": "roots", "signal": 9})
    )));
    assert!(denied(&call_as(
        NOBODY,
        &registry,
        "Unregister",
        json!({"name": ".host"})
    )));
    let unregister = call_as(NOBODY, &registry, "Unregister", json!({"name": "mine"}));
    assert!(unregister.success, "{unregister:?}");
    assert!(!roots_gone(&registry));
}

fn roots_gone(registry: &Registry) -> bool {
    !varlinkctl_call(
        &registry.socket(),
        "io.systemd.Machine.List",
        r#"{"name":"roots"}"#,
        false,
    )
    .success
}

#[test]
fn listing_is_open_but_metadata_only_for_those_who_could_read_it() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let roots = Proc::sleeper();
    let params = json!({"name": "roots", "class": "container", "leader": roots.pid()});
    assert!(
        varlinkctl_call(
            &registry.socket(),
            "io.systemd.Machine.Register",
            &params.to_string(),
            false
        )
        .success
    );
    let mine = sleeper_as(NOBODY);
    assert!(register_as(NOBODY, &registry, "mine", mine.pid()).success);

    let all = varlinkctl_call_as_more(NOBODY, &registry);
    let names: Vec<_> = all
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"roots".to_owned()) && names.contains(&"mine".to_owned()),
        "{names:?}"
    );

    let strict = call_as(
        NOBODY,
        &registry,
        "List",
        json!({"name": "roots", "acquireMetadata": "yes"}),
    );
    assert!(denied(&strict), "{strict:?}");
    let graceful = call_as(
        NOBODY,
        &registry,
        "List",
        json!({"name": "roots", "acquireMetadata": "graceful"}),
    );
    assert!(
        graceful.success && graceful.json().get("OSRelease").is_none(),
        "{graceful:?}"
    );
    let own = call_as(
        NOBODY,
        &registry,
        "List",
        json!({"name": "mine", "acquireMetadata": "graceful"}),
    );
    assert!(own.json().get("OSRelease").is_some(), "{own:?}");
    let host = call_as(
        NOBODY,
        &registry,
        "List",
        json!({"name": ".host", "acquireMetadata": "graceful"}),
    );
    assert!(host.json().get("OSRelease").is_some(), "{host:?}");
}

fn varlinkctl_call_as_more(uid: u32, registry: &Registry) -> Vec<serde_json::Value> {
    let prefix = berth_tests::process::as_user(uid);
    berth_tests::clients::run(
        Command::new(&prefix[0])
            .args(&prefix[1..])
            .args([require::VARLINKCTL, "call", "-j", "--more"])
            .arg(registry.socket())
            .args(["io.systemd.Machine.List", "{}"]),
    )
    .json_lines()
}

/// A leader running as host UID 100000 inside a user namespace that `nobody` created: nobody
/// owns it, though the UIDs differ; anybody else does not.
#[test]
fn a_leader_in_a_user_namespace_the_caller_owns_may_be_registered() {
    if !(ready() && require::program("/usr/bin/python3")) {
        return;
    }
    let registry = Registry::start();
    // unshare(CLONE_NEWUSER) as nobody; once root has written the maps, become UID 0 inside
    // (host UID 100000) before exec, while the namespace's capabilities still hold.
    let script = r#"
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:
    sys.exit("unshare failed")
sys.stdin.readline()
os.setresgid(0, 0, 0)
os.setresuid(0, 0, 0)
os.execvp("sleep", ["sleep", "100000"])
"#;
    let id = NOBODY.to_string();
    let mut leader = Proc::spawn(
        Command::new("setpriv")
            .args([
                "--reuid",
                &id,
                "--regid",
                &id,
                "--clear-groups",
                "--",
                "/usr/bin/python3",
                "-c",
                script,
            ])
            .stdin(Stdio::piped()),
    );
    let pid = leader.pid();
    wait::until("the new user namespace", || {
        std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
            != std::fs::read_link("/proc/self/ns/user").ok()
    });
    std::fs::write(format!("/proc/{pid}/setgroups"), "deny").unwrap();
    std::fs::write(format!("/proc/{pid}/uid_map"), "0 100000 65536").unwrap();
    std::fs::write(format!("/proc/{pid}/gid_map"), "0 100000 65536").unwrap();
    std::io::Write::write_all(leader.child().stdin.as_mut().unwrap(), b"go\n").unwrap();
    wait::until("the leader to run as host UID 100000", || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t100000")))
    });
    assert!(denied(&register_as(OTHER, &registry, "userns", pid)));
    let run = register_as(NOBODY, &registry, "userns", pid);
    assert!(run.success, "{run:?}");
}

#[test]
fn unprivileged_users_have_a_registration_quota_and_no_service_controls() {
    if !ready() {
        return;
    }
    let registry = Registry::with(Options {
        args: vec!["--max-machines-per-user".into(), "2".into()],
        ..Options::default()
    });
    let leaders: Vec<Proc> = (0..3).map(|_| sleeper_as(NOBODY)).collect();
    assert!(register_as(NOBODY, &registry, "q0", leaders[0].pid()).success);
    assert!(register_as(NOBODY, &registry, "q1", leaders[1].pid()).success);
    let third = register_as(NOBODY, &registry, "q2", leaders[2].pid());
    assert_eq!(third.json(), json!({"errno": libc::EDQUOT}), "{third:?}");
    let log_level = varlinkctl_call_as(
        NOBODY,
        &registry.socket(),
        "io.systemd.service.SetLogLevel",
        r#"{"level":7}"#,
    );
    assert!(denied(&log_level), "{log_level:?}");
    let environment = varlinkctl_call_as(
        NOBODY,
        &registry.socket(),
        "io.systemd.service.GetEnvironment",
        "{}",
    );
    assert!(denied(&environment), "{environment:?}");
}
