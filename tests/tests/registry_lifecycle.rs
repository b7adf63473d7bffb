//! Machines end when their leader ends, survive a registry crash, and can be ended on request.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use berth_interfaces::client::MachineProxy;
use berth_interfaces::machine::{
    KillRequest, KillWhom, ListRequest, MachineError, MachineInfo, MachineLookup, RegisterRequest,
    SignalSpec,
};
use berth_tests::daemon::{Options, Registry};
use berth_tests::machines::{children_of, container, wait_gone};
use berth_tests::process::Proc;
use berth_tests::process::is_dead;
use berth_tests::{require, wait};

async fn machines(registry: &Registry) -> HashMap<String, MachineInfo> {
    let mut conn = registry.connect().await;
    let all = conn
        .list_all(&ListRequest::default())
        .await
        .unwrap()
        .unwrap();
    all.into_iter().map(|m| (m.name.clone(), m)).collect()
}

#[tokio::test]
async fn a_hundred_machines_survive_a_crash_and_those_whose_leader_died_do_not() {
    let mut registry = Registry::start();
    let mut leaders: Vec<Proc> = (0..100).map(|_| Proc::sleeper()).collect();
    let mut conn = registry.connect().await;
    for (i, leader) in leaders.iter().enumerate() {
        let request = RegisterRequest {
            v_sock_cid: Some(100 + i as i64),
            root_directory: Some(format!("/var/lib/machines/m{i}")),
            ..container(&format!("m{i}"), leader.pid())
        };
        conn.register(&request).await.unwrap().unwrap();
    }
    let before = machines(&registry).await;
    assert_eq!(before.len(), 101);

    registry.kill9();
    for leader in leaders.iter_mut().step_by(10) {
        leader.kill();
    }
    registry.start_again();

    let after = machines(&registry).await;
    assert_eq!(after.len(), 101 - 10, "{:?}", after.keys());
    for (name, machine) in &before {
        let index: Option<usize> = name.strip_prefix('m').and_then(|i| i.parse().ok());
        match index {
            Some(i) if i % 10 == 0 => {
                assert!(!after.contains_key(name), "{name} should be gone");
                assert!(!registry.state_dir().join(name).exists());
            }
            _ => assert_eq!(
                after.get(name),
                Some(machine),
                "{name} changed across the restart"
            ),
        }
    }
    // Restored machines are watched again.
    leaders[1].kill();
    wait_gone(&registry, "m1").await;
}

#[tokio::test]
async fn a_hundred_leaders_dying_at_once_end_all_their_machines() {
    let registry = Registry::start();
    let mut leaders: Vec<Proc> = (0..100).map(|_| Proc::sleeper()).collect();
    let mut conn = registry.connect().await;
    for (i, leader) in leaders.iter().enumerate() {
        let request = container(&format!("d{i}"), leader.pid());
        conn.register(&request).await.unwrap().unwrap();
    }
    for leader in &mut leaders {
        leader.kill();
    }
    wait::until_async("every machine to end", || async {
        machines(&registry).await.len() == 1
    })
    .await;
    for i in 0..100 {
        let name = format!("d{i}");
        assert!(!registry.state_dir().join(&name).exists(), "{name}");
        assert!(!registry.host_table().join(&name).exists(), "{name}");
    }
}

#[tokio::test]
async fn exclusive_a_recycled_pid_is_not_taken_for_a_dead_leader_after_a_restart() {
    if !require::root() {
        return;
    }
    let mut registry = Registry::start();
    let mut leader = Proc::sleeper();
    let pid = leader.pid();
    let mut conn = registry.connect().await;
    conn.register(&container("recycled", pid))
        .await
        .unwrap()
        .unwrap();
    registry.kill9();
    leader.kill();
    let impostor = respawn_with_pid(pid);
    assert_eq!(impostor.pid(), pid);
    registry.start_again();
    assert!(!machines(&registry).await.contains_key("recycled"));
    assert!(!registry.state_dir().join("recycled").exists());
    assert!(
        registry.log().contains("Dropping saved machine"),
        "{}",
        registry.log()
    );
}

/// Starts a sleeper that gets `pid`, by setting the kernel's last PID just below it.
fn respawn_with_pid(pid: u32) -> Proc {
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let proc = Proc::sleeper();
        if proc.pid() == pid {
            return proc;
        }
    }
    panic!("could not get PID {pid} again");
}

#[tokio::test]
async fn terminate_without_a_live_supervisor_signals_the_whole_tree() {
    if !require::varlinkctl() {
        return;
    }
    let registry = Registry::start();
    let leader = Proc::shell("sleep 100000 & sleep 100000 & wait");
    let children = children_of(leader.pid(), 2);
    // varlinkctl registers and exits: the machine's supervisor is gone before Terminate.
    let params = serde_json::json!({"name": "tree", "class": "container", "leader": leader.pid()});
    berth_tests::machines::register_with_varlinkctl(&registry, &params);
    let mut conn = registry.connect().await;
    conn.terminate(&MachineLookup::by_name("tree"))
        .await
        .unwrap()
        .unwrap();
    wait_gone(&registry, "tree").await;
    wait::until("every process of the machine to end", || {
        children.iter().all(|&c| is_dead(c)) && is_dead(leader.pid())
    });
}

#[tokio::test]
async fn kill_all_reaches_descendants_that_left_the_session() {
    let registry = Registry::start();
    let leader = Proc::shell("setsid sleep 100000 & sleep 100000");
    let mut conn = registry.connect().await;
    conn.register(&container("escapee", leader.pid()))
        .await
        .unwrap()
        .unwrap();
    let children = children_of(leader.pid(), 1);
    let kill = KillRequest {
        lookup: MachineLookup::by_name("escapee"),
        whom: Some(KillWhom::All),
        signal: SignalSpec::Number(9),
    };
    conn.kill(&kill).await.unwrap().unwrap();
    wait::until("the escaped child to die", || {
        children.iter().all(|&c| is_dead(c))
    });
    wait_gone(&registry, "escapee").await;
}

/// A python process that registers `name` for `leader` and stays: the machine's supervisor.
fn python_supervisor(registry: &Registry, name: &str, leader: u32) -> Proc {
    let script = r#"
import sys, time, varlink
with varlink.Client(address="unix:" + sys.argv[1]) as client, client.open("io.systemd.Machine") as machine:
    machine.Register(**{"name": sys.argv[2], "class": "container", "leader": int(sys.argv[3])})
    print("registered", flush=True)
    time.sleep(100000)
"#;
    let mut proc = Proc::spawn(
        Command::new(require::PYTHON_VARLINK)
            .args(["-c", script])
            .arg(registry.socket())
            .args([name, &leader.to_string()])
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(proc.child().stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "registered");
    proc
}

#[tokio::test]
async fn terminate_goes_to_the_supervisor_then_kills_what_is_left() {
    if !require::python_varlink() {
        return;
    }
    let registry = Registry::with(Options {
        terminate_timeout: 1,
        ..Options::default()
    });
    let mut leader = Proc::sleeper();
    let mut supervisor = python_supervisor(&registry, "supervised", leader.pid());
    let info = machines(&registry).await.remove("supervised").unwrap();
    assert_eq!(info.supervisor.unwrap().pid, supervisor.pid());

    let mut conn = registry.connect().await;
    conn.terminate(&MachineLookup::by_name("supervised"))
        .await
        .unwrap()
        .unwrap();
    wait::until("the supervisor to get SIGTERM", || supervisor.has_exited());
    // The leader ignored nothing but nobody stopped it; after the timeout it is killed.
    wait::until(
        "the leader to be killed after the terminate timeout",
        || leader.has_exited(),
    );
    wait_gone(&registry, "supervised").await;
}

#[tokio::test]
async fn kill_supervisor_reaches_only_the_supervisor() {
    if !require::python_varlink() {
        return;
    }
    let registry = Registry::start();
    let mut leader = Proc::sleeper();
    let mut supervisor = python_supervisor(&registry, "sup", leader.pid());
    let mut conn = registry.connect().await;
    let kill = KillRequest {
        lookup: MachineLookup::by_name("sup"),
        whom: Some(KillWhom::Supervisor),
        signal: SignalSpec::Name("SIGTERM".into()),
    };
    conn.kill(&kill).await.unwrap().unwrap();
    wait::until("the supervisor to exit", || supervisor.has_exited());
    assert!(!leader.has_exited());
    assert!(machines(&registry).await.contains_key("sup"));
    // Without a live supervisor, Kill whom=supervisor fails like machined (ESRCH).
    let error = conn.kill(&kill).await.unwrap_err();
    assert!(
        format!("{error:?}").contains("io.systemd.System"),
        "{error:?}"
    );
}

#[tokio::test]
async fn allocate_unit_gives_the_machine_a_cgroup_that_goes_with_it() {
    if !require::root() {
        return;
    }
    let registry = Registry::start();
    let root = registry.cgroup_root().expect("a cgroup root").to_owned();
    // The leader forks only once it is in its cgroup, as a real container's init would.
    let mut leader = Proc::spawn(
        Command::new("sh")
            .args(["-c", "read go; setsid sleep 100000 & sleep 100000"])
            .stdin(Stdio::piped()),
    );
    let mut conn = registry.connect().await;
    let request = RegisterRequest {
        allocate_unit: Some(true),
        ..container("boxed-in", leader.pid())
    };
    conn.register(&request).await.unwrap().unwrap();
    let unit = "machine-boxed\\x2din.scope";
    let cgroup = root.join(unit);
    let info = machines(&registry).await.remove("boxed-in").unwrap();
    assert_eq!(info.unit.as_deref(), Some(unit));
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|p| p == leader.pid().to_string()),
        "{procs}"
    );
    let link = registry.state_dir().join(format!("unit:{unit}"));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::Path::new("boxed-in")
    );
    std::io::Write::write_all(leader.child().stdin.as_mut().unwrap(), b"go\n").unwrap();
    let children = children_of(leader.pid(), 2);
    let child = children[0];
    let by_child = ListRequest {
        lookup: MachineLookup::by_pid(child),
        ..ListRequest::default()
    };
    assert_eq!(
        conn.list(&by_child).await.unwrap().unwrap().name,
        "boxed-in"
    );

    // Ending the leader ends the machine, kills what is left in its cgroup and removes it.
    let kill = KillRequest {
        lookup: MachineLookup::by_name("boxed-in"),
        whom: Some(KillWhom::Leader),
        signal: SignalSpec::Number(9),
    };
    conn.kill(&kill).await.unwrap().unwrap();
    wait_gone(&registry, "boxed-in").await;
    wait::until("the machine's cgroup to go", || !cgroup.exists());
    assert!(
        children.iter().all(|&c| is_dead(c)),
        "a process of the machine survived it"
    );
    assert!(!link.exists());
}

#[tokio::test]
async fn allocate_unit_without_a_writable_cgroup_tree_is_not_supported() {
    let registry = Registry::with(Options {
        cgroup: false,
        args: vec![
            "--cgroup-root".into(),
            "/sys/fs/cgroup/unified/berth-does-not-exist".into(),
        ],
        ..Options::default()
    });
    let leader = Proc::sleeper();
    let mut conn = registry.connect().await;
    let request = RegisterRequest {
        allocate_unit: Some(true),
        ..container("nowhere", leader.pid())
    };
    assert_eq!(
        conn.register(&request).await.unwrap(),
        Err(MachineError::NotSupported)
    );
    assert!(!machines(&registry).await.contains_key("nowhere"));
}
