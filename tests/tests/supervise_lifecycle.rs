//! `supervise` leaves no orphans: whatever ends the machine (the payload's exit, Terminate,
//! SIGTERM, EOF on stdin, or `supervise` itself being SIGKILLed), every process of it dies,
//! including those that double-fork, `setsid` away or live in their own PID namespace.

use std::path::{Path, PathBuf};

use berth_tests::daemon::Registry;
use berth_tests::process::is_dead;
use berth_tests::supervise::{Launch, Supervise, list, pids_in};
use berth_tests::{require, wait};

/// A payload script that starts four escapees (listed in `file`) and then runs `last`.
fn escaping(file: &Path, last: &str) -> String {
    let f = file.display();
    format!(
        "setsid sleep 1000 & echo $! >> {f}; \
         (sleep 1000 & echo $! >> {f}); \
         nohup sh -c 'sleep 1000 & echo $! >> {f}; wait' >/dev/null 2>&1 & echo $! >> {f}; \
         {last}"
    )
}

const SLEEP: &str = "exec sleep 1000";

fn signal(supervise: &Supervise, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(supervise.pid() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

fn leaf(registry: &Registry, name: &str, boot: u32) -> PathBuf {
    registry
        .cgroup_root()
        .expect("a cgroup root")
        .join(format!("{name}-{boot}"))
}

/// `supervise` (with `args`) running the escaping payload, then `last`; with the escapees.
fn with_escapees(
    registry: &Registry,
    name: &str,
    args: &[&str],
    piped_stdin: bool,
    last: &str,
) -> (Supervise, Vec<u32>) {
    let file = registry.runtime_dir().join(format!("{name}.pids"));
    let launch = Launch {
        registry: Some(registry),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        piped_stdin,
        ..Launch::default()
    };
    let script = escaping(&file, last).replace("FILE", &file.display().to_string());
    let supervise = Supervise::launch(name, &["sh", "-c", &script], launch);
    let pids = pids_in(&file, 4);
    (supervise, pids)
}

/// `supervise` ends with `code`, and every one of `pids` is dead by then.
fn assert_ends(supervise: &mut Supervise, code: i32, pids: &[u32]) {
    assert_eq!(supervise.wait_exit(), code);
    assert_all_dead(pids);
}

fn assert_all_dead(pids: &[u32]) {
    for pid in pids {
        assert!(is_dead(*pid), "process {pid} survived the machine");
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn escaping_grandchildren_die_when_the_payload_exits() {
    if !require::root() {
        return;
    }
    let registry = Registry::start();
    let last = "while [ $(wc -l < FILE) -lt 4 ]; do :; done; exit 7";
    let (mut supervise, pids) = with_escapees(&registry, "exiter", &[], false, last);
    assert_ends(&mut supervise, 7, &pids);
    assert!(!leaf(&registry, "exiter", 1).exists());
    assert!(list(&registry, "exiter").is_none());
}

#[test]
fn escaping_grandchildren_die_in_subreaper_mode_too() {
    if !require::root() {
        return;
    }
    let registry = Registry::start();
    let args = ["--no-cgroup"];
    let (mut supervise, pids) = with_escapees(&registry, "reaper", &args, false, SLEEP);
    assert!(!leaf(&registry, "reaper", 1).exists(), "no cgroup expected");
    supervise.instance("Terminate");
    assert_ends(&mut supervise, 128 + 9, &pids);
}

#[test]
fn an_unshared_process_tree_dies_on_terminate() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::start();
    let script =
        "exec unshare --fork --pid sh -c 'setsid sleep 1000 & (sleep 1000 &); exec sleep 1000'";
    let mut supervise = Supervise::start(&registry, "unshared", script);
    let procs = leaf(&registry, "unshared", 1).join("cgroup.procs");
    let mut pids = Vec::new();
    wait::until("unshare and three sleeps, nothing else", || {
        pids = pids_in(&procs, 1);
        let mut names: Vec<String> = pids.iter().map(|p| comm(*p)).collect();
        names.sort();
        names == ["sleep", "sleep", "sleep", "unshare"]
    });
    supervise.instance("Terminate");
    assert_eq!(supervise.wait_exit(), 128 + 9);
    assert_all_dead(&pids);
    assert!(!leaf(&registry, "unshared", 1).exists());
}

#[test]
fn sigterm_to_supervise_ends_the_machine() {
    if !require::root() {
        return;
    }
    let registry = Registry::start();
    let (mut supervise, pids) = with_escapees(&registry, "termed", &[], false, SLEEP);
    signal(&supervise, rustix::process::Signal::TERM);
    assert_ends(&mut supervise, 128 + 9, &pids);
    assert!(list(&registry, "termed").is_none());
}

#[test]
fn eof_on_stdin_ends_the_machine_with_tie_to_stdin() {
    if !require::root() {
        return;
    }
    let registry = Registry::start();
    let args = ["--tie-to-stdin"];
    let (mut supervise, pids) = with_escapees(&registry, "tied", &args, true, SLEEP);
    drop(supervise.child().stdin.take());
    assert_ends(&mut supervise, 128 + 9, &pids);
}

#[test]
fn a_sigkilled_supervise_leaves_nothing_behind() {
    if !require::root() {
        return;
    }
    let registry = Registry::start();
    let (mut supervise, pids) = with_escapees(&registry, "killed", &[], false, SLEEP);
    signal(&supervise, rustix::process::Signal::KILL);
    supervise.status_after_kill();
    wait::until("the machine to leave the registry", || {
        list(&registry, "killed").is_none()
    });
    wait::until("the registry to kill the machine's cgroup", || {
        pids.iter().all(|p| is_dead(*p))
    });
}

#[test]
fn a_refused_registration_never_runs_the_payload() {
    if !require::root() {
        return;
    }
    let registry = Registry::start();
    let _first = Supervise::start(&registry, "twin", SLEEP);
    let ran = registry.runtime_dir().join("ran");
    let output = std::process::Command::new(berth_tests::workspace_binary("supervise"))
        .args(["--name", "twin", "--registry"])
        .arg(registry.socket())
        .arg("--cgroup-root")
        .arg(registry.cgroup_root().expect("a cgroup root"))
        .arg("--control-socket")
        .arg(registry.runtime_dir().join("twin2.sock"))
        .args(["--", "touch"])
        .arg(&ran)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("supervise runs");
    assert_eq!(output.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MachineExists"), "{stderr}");
    assert!(!ran.exists(), "the payload ran");
    let root = registry.cgroup_root().expect("a cgroup root");
    let leaves: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("twin"))
        .collect();
    assert_eq!(leaves, ["twin-1"], "the refused boot's cgroup is left");
    assert!(!registry.runtime_dir().join("twin2.sock").exists());
}
