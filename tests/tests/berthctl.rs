//! `berthctl` against the real registry (and `supervise` for the verbs that go through a
//! machine's controller): every verb, its output, and its errors and exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use berth_tests::berthctl::{berthctl, berthctl_code};
use berth_tests::clients::RawClient;
use berth_tests::daemon::Registry;
use berth_tests::process::Proc;
use berth_tests::{require, wait};
use serde_json::{Value, json};

fn register(registry: &Registry, name: &str, leader: &Proc) {
    let reply = RawClient::connect(&registry.socket()).method(
        "io.systemd.Machine.Register",
        json!({"name": name, "class": "container", "leader": leader.pid()}),
    );
    assert!(reply.get("error").is_none(), "{reply}");
}

fn listed(registry: &Registry, name: &str) -> bool {
    let reply = RawClient::connect(&registry.socket())
        .method("io.systemd.Machine.List", json!({"name": name}));
    reply.get("error").is_none()
}

#[test]
fn list_prints_a_table_or_json() {
    let registry = Registry::without_cgroup();
    let leader = Proc::sleeper();
    register(&registry, "demo", &leader);

    let table = berthctl(&registry, &["list"]);
    assert!(table.success, "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("MACHINE") && lines[0].contains("ADDRESSES"),
        "{table:?}"
    );
    assert!(
        lines[1].starts_with("demo") && lines[1].contains("container"),
        "{table:?}"
    );
    assert!(!table.stdout.contains(".host"));
    assert!(table.stdout.ends_with("1 machines listed.\n"), "{table:?}");

    let all = berthctl(&registry, &["list", "--all", "--no-legend"]);
    assert_eq!(all.stdout.lines().count(), 2, "{all:?}");
    assert!(all.stdout.lines().any(|l| l.starts_with(".host")));

    let json = berthctl(&registry, &["list", "--json"]);
    let machines: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["name"], "demo");
    assert_eq!(machines[0]["leader"]["pid"], leader.pid());
}

#[test]
fn status_and_show_describe_a_machine() {
    let registry = Registry::without_cgroup();
    let leader = Proc::shell("sleep 1000 & exec sleep 2000");
    register(&registry, "demo", &leader);

    let status = berthctl(&registry, &["status", "demo"]);
    assert!(status.success, "{status:?}");
    assert!(status.stdout.starts_with("demo\n"), "{status:?}");
    let leader_line = format!("Leader: {} (", leader.pid());
    assert!(status.stdout.contains(&leader_line), "{status:?}");
    assert!(status.stdout.contains("class container"), "{status:?}");
    assert!(
        status.stdout.contains("sleep 1000"),
        "the process tree: {status:?}"
    );

    let show = berthctl(&registry, &["show", "demo"]);
    let lines: Vec<&str> = show.stdout.lines().collect();
    assert!(lines.contains(&"Name=demo") && lines.contains(&"Class=container"));
    assert!(lines.contains(&format!("Leader={}", leader.pid()).as_str()));
}

#[test]
fn errors_have_messages_and_exit_codes() {
    let registry = Registry::without_cgroup();
    let leader = Proc::sleeper();
    register(&registry, "demo", &leader);

    let (status, stderr) = berthctl_code(&registry, &["status", "nope"]);
    assert_eq!(status, 4, "{stderr}");
    assert!(stderr.contains("No machine 'nope' known"), "{stderr}");
    let (status, stderr) = berthctl_code(&registry, &["kill", "--signal=NOPE", "demo"]);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("InvalidParameter"), "{stderr}");
    let (status, stderr) = berthctl_code(&registry, &["poweroff", "demo"]);
    assert_eq!(status, 1, "{stderr}");
    assert!(stderr.contains("has no control address"), "{stderr}");
    let (status, _) = berthctl_code(&registry, &["frobnicate"]);
    assert_eq!(status, 2);

    let gone = Command::new(berth_tests::workspace_binary("berthctl"))
        .args(["--runtime-dir", "/nonexistent/berth", "list"])
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(3));
}

#[test]
fn kill_and_terminate_end_machines() {
    if !require::varlinkctl() {
        return;
    }
    let registry = Registry::without_cgroup();
    let mut killed = Proc::sleeper();
    let mut terminated = Proc::sleeper();
    // Registered by a tool that exits (else Terminate would signal this test, the supervisor).
    for (name, leader) in [("killed", &killed), ("terminated", &terminated)] {
        let params = json!({"name": name, "class": "container", "leader": leader.pid()});
        berth_tests::machines::register_with_varlinkctl(&registry, &params);
    }

    let kill = berthctl(
        &registry,
        &["kill", "--kill-whom=leader", "-s", "KILL", "killed"],
    );
    assert!(kill.success, "{kill:?}");
    wait::until("the killed leader to end", || killed.has_exited());
    let terminate = berthctl(&registry, &["terminate", "terminated"]);
    assert!(terminate.success, "{terminate:?}");
    wait::until("the terminated leader to end", || terminated.has_exited());
    wait::until("both machines to go", || {
        !listed(&registry, "killed") && !listed(&registry, "terminated")
    });
}

#[test]
fn watch_follows_machines_coming_and_going() {
    let registry = Registry::without_cgroup();
    let before = Proc::sleeper();
    register(&registry, "before", &before);
    let mut watch = Proc::spawn(
        Command::new(berth_tests::workspace_binary("berthctl"))
            .arg("--runtime-dir")
            .arg(registry.runtime_dir())
            .arg("watch")
            .stdout(Stdio::piped()),
    );
    let mut lines = BufReader::new(watch.child().stdout.take().unwrap()).lines();
    let mut next_about = |name: &str| -> String {
        loop {
            let line = lines.next().expect("a line").expect("text");
            if line.split_whitespace().nth(1) == Some(name) {
                return line;
            }
        }
    };
    assert!(next_about("before").starts_with("existing before container"));
    let leader = Proc::sleeper();
    register(&registry, "watched", &leader);
    let added = format!("added watched container leader {}", leader.pid());
    assert_eq!(next_about("watched"), added);
    let reply = RawClient::connect(&registry.socket())
        .method("io.systemd.Machine.Unregister", json!({"name": "watched"}));
    assert!(reply.get("error").is_none());
    assert!(next_about("watched").starts_with("removed watched container"));
    watch.kill();
}

#[test]
fn spawn_runs_a_supervised_machine_that_the_controller_verbs_reach() {
    if !require::root() {
        return;
    }
    let registry = Registry::without_cgroup();
    let mut spawned = Proc::spawn(
        Command::new(berth_tests::workspace_binary("berthctl"))
            .arg("--runtime-dir")
            .arg(registry.runtime_dir())
            .args(["spawn", "spawned", "--", "sleep", "1000"])
            .stdin(Stdio::null()),
    );
    wait::until("the spawned machine to be registered", || {
        assert!(!spawned.has_exited(), "berthctl spawn ended");
        listed(&registry, "spawned")
    });
    let status = berthctl(&registry, &["status", "spawned"]);
    assert!(status.stdout.contains("Control: "), "{status:?}");
    for verb in ["pause", "resume"] {
        let run = berthctl(&registry, &[verb, "spawned"]);
        assert!(run.success, "{verb}: {run:?}");
    }
    let poweroff = berthctl(&registry, &["poweroff", "spawned"]);
    assert!(poweroff.success, "{poweroff:?}");
    wait::until("the machine to power off", || spawned.has_exited());
    wait::until("the machine to go", || !listed(&registry, "spawned"));
}
