//! Controlling a machine through `supervise`'s control socket and through the registry:
//! cooperative power-off and reboot, the grace time, pause and resume, the event and child
//! streams (seen with `varlinkctl call --more`), and Berth's extension.

use berth_tests::clients::RawClient;
use berth_tests::daemon::Registry;
use berth_tests::process::is_dead;
use berth_tests::supervise::{Launch, Stream, Supervise, list, pids_in};
use berth_tests::{require, wait};
use serde_json::{Value, json};

fn ready() -> bool {
    require::root() && require::varlinkctl() && require::program("bash")
}

/// `bash -c SCRIPT` under `supervise` with more options.
fn bash(registry: &Registry, name: &str, args: &[&str], script: &str) -> Supervise {
    let launch = Launch {
        registry: Some(registry),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Launch::default()
    };
    Supervise::launch(name, &["bash", "-c", script], launch)
}

/// Like [`bash`] for a script that says `READY` where it should create a file once its traps
/// are set; returns once it has.
fn bash_ready(registry: &Registry, name: &str, args: &[&str], script: &str) -> Supervise {
    let ready_file = registry.runtime_dir().join(format!("{name}.ready"));
    let script = script.replace("READY", &format!("touch {}", ready_file.display()));
    let supervise = bash(registry, name, args, &script);
    wait::until(&format!("{}", ready_file.display()), || ready_file.exists());
    supervise
}

fn subscribe(supervise: &Supervise, filter: Value) -> Stream {
    let mut stream = Stream::varlinkctl(
        &supervise.socket,
        "io.systemd.MachineInstance.SubscribeEvents",
        &filter,
    );
    let first = stream.next_reply().expect("the first event");
    assert_eq!(first["event"], "subscribed", "{first}");
    stream
}

/// The events of `stream` up to the end of the machine.
fn events_until_exit(stream: &mut Stream) -> Vec<Value> {
    let mut events = Vec::new();
    while let Some(event) = stream.next_reply() {
        let last = event["event"] == "exited" && event["data"].get("reboot").is_none();
        events.push(event);
        if last {
            break;
        }
    }
    assert!(stream.finished_ok(), "varlinkctl failed after {events:?}");
    events
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["event"].as_str()).collect()
}

fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|end| stat[end + 2..].chars().next())
        .unwrap_or('?')
}

#[test]
fn a_cooperative_payload_powers_off_on_its_signal() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let script = "trap 'kill $!; exit 0' RTMIN+4; READY; sleep 1000 & wait";
    let mut supervise = bash_ready(&registry, "polite", &[], script);
    let mut stream = subscribe(&supervise, json!({}));
    supervise.instance("PowerOff");
    assert_eq!(supervise.wait_exit(), 0);
    let events = events_until_exit(&mut stream);
    assert_eq!(names(&events), ["poweroff", "exited"]);
    assert_eq!(events[1]["data"], json!({"exitCode": 0, "status": 0}));
}

#[test]
fn an_uncooperative_payload_is_killed_after_the_grace_time() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let args = ["--grace", "0.3", "--poweroff-signal", "INT"];
    let script = "trap '' INT; READY; exec sleep 1000";
    let mut supervise = bash_ready(&registry, "stubborn", &args, script);
    supervise.instance("PowerOff");
    assert_eq!(supervise.status_text(), "stopping");
    assert_eq!(supervise.wait_exit(), 128 + 9);
}

#[test]
fn reboot_starts_a_fresh_payload_in_a_fresh_cgroup_and_registers_it_again() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let boots = registry.runtime_dir().join("boots");
    let script = format!(
        "trap 'kill $!; exit 0' INT; echo $$ >> {}; sleep 1000 & wait",
        boots.display()
    );
    let mut supervise = bash(&registry, "phoenix", &[], &script);
    let mut stream = subscribe(&supervise, json!({}));
    let root = registry.cgroup_root().expect("a cgroup root").to_owned();
    for boot in 1..=3u32 {
        let leader = pids_in(&boots, boot as usize)[boot as usize - 1];
        wait::until("the new boot in the registry", || {
            list(&registry, "phoenix").is_some_and(|m| m["leader"]["pid"] == leader)
        });
        let machine = list(&registry, "phoenix").expect("registered");
        assert_eq!(machine["supervisor"]["pid"], supervise.pid());
        assert!(root.join(format!("phoenix-{boot}")).exists());
        if boot < 3 {
            supervise.instance("Reboot");
            wait::until("the old boot's cgroup to go", || {
                !root.join(format!("phoenix-{boot}")).exists()
            });
        }
    }
    supervise.instance("Terminate");
    assert_eq!(supervise.wait_exit(), 128 + 9);
    let events = events_until_exit(&mut stream);
    let expected = [
        "reboot",
        "exited",
        "started",
        "reboot",
        "exited",
        "started",
        "terminate",
        "exited",
    ];
    assert_eq!(names(&events), expected);
    assert_eq!(events[1]["data"]["reboot"], true);
    assert_eq!(events[2]["data"]["boot"], 2);
}

#[test]
fn pause_freezes_every_process_and_resume_thaws_them() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let mut supervise = bash(&registry, "frosty", &[], "sleep 1000 & exec sleep 1000");
    let events = registry
        .cgroup_root()
        .expect("a cgroup root")
        .join("frosty-1/cgroup.events");
    let frozen = || {
        std::fs::read_to_string(&events)
            .unwrap()
            .contains("frozen 1")
    };
    let mut stream = subscribe(
        &supervise,
        json!({"filter": ["paused", "resumed", "exited"]}),
    );
    supervise.instance("Pause");
    assert!(frozen(), "Pause replied before the cgroup froze");
    assert_eq!(
        supervise.call("io.systemd.MachineInstance.Describe", json!({}))["parameters"],
        json!({"running": false, "status": "paused"})
    );
    supervise.instance("Resume");
    assert!(!frozen());
    assert_eq!(supervise.status_text(), "running");
    supervise.instance("Pause");
    supervise.instance("Terminate");
    assert_eq!(supervise.wait_exit(), 128 + 9);
    let events = events_until_exit(&mut stream);
    assert_eq!(names(&events), ["paused", "resumed", "paused", "exited"]);
}

#[test]
fn pause_without_a_cgroup_stops_every_process() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let pids = registry.runtime_dir().join("pids");
    let script = format!(
        "setsid sleep 1000 & echo $! > {}; exec sleep 1000",
        pids.display()
    );
    let mut supervise = bash(&registry, "stopped", &["--no-cgroup"], &script);
    let child = pids_in(&pids, 1)[0];
    let leader = list(&registry, "stopped").expect("registered")["leader"]["pid"]
        .as_u64()
        .unwrap() as u32;
    supervise.instance("Pause");
    wait::until("both processes to stop", || {
        process_state(child) == 'T' && process_state(leader) == 'T'
    });
    supervise.instance("Resume");
    wait::until("both processes to go on", || {
        process_state(child) != 'T' && process_state(leader) != 'T'
    });
    supervise.instance("Terminate");
    assert_eq!(supervise.wait_exit(), 128 + 9);
    assert!(is_dead(child));
}

#[test]
fn the_registry_lists_the_supervisor_and_routes_terminate_to_it() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let mut supervise = Supervise::start(&registry, "routed", "exec sleep 1000");
    let machine = list(&registry, "routed").expect("registered");
    assert_eq!(machine["supervisor"]["pid"], supervise.pid());
    assert_eq!(
        machine["controlAddress"],
        supervise.socket.to_str().unwrap()
    );
    assert_eq!(machine["service"], "berth-supervise");
    let mut stream = subscribe(&supervise, json!({"filter": ["terminate", "exited"]}));
    let reply = RawClient::connect(&registry.socket())
        .method("io.systemd.Machine.Terminate", json!({"name": "routed"}));
    assert_eq!(reply, json!({"parameters": {}}));
    assert_eq!(supervise.wait_exit(), 128 + 9);
    let events = events_until_exit(&mut stream);
    assert_eq!(names(&events), ["terminate", "exited"]);
    assert_eq!(
        events[0]["data"]["reason"], "call",
        "not through the controller"
    );
    assert!(list(&registry, "routed").is_none());
}

#[test]
fn kill_whom_supervisor_reaches_supervise() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let mut supervise = Supervise::start(&registry, "signalled", "exec sleep 1000");
    let mut stream = subscribe(&supervise, json!({"filter": ["terminate"]}));
    let params = json!({"name": "signalled", "whom": "supervisor", "signal": 15});
    let reply = RawClient::connect(&registry.socket()).method("io.systemd.Machine.Kill", params);
    assert_eq!(reply, json!({"parameters": {}}));
    assert_eq!(supervise.wait_exit(), 128 + 9);
    let event = stream.next_reply().expect("a terminate event");
    assert_eq!(event["data"]["reason"], "signal");
}

#[test]
fn the_extension_signals_the_leader_or_everyone_and_streams_child_changes() {
    if !ready() {
        return;
    }
    let registry = Registry::start();
    let pids = registry.runtime_dir().join("pids");
    let script = format!(
        "trap 'exit 42' USR1; setsid sleep 1000 & echo $! > {}; while :; do wait; done",
        pids.display()
    );
    let mut supervise = bash(&registry, "signals", &[], &script);
    let child = pids_in(&pids, 1)[0];
    let mut children = Stream::varlinkctl(
        &supervise.socket,
        "io.berth.Supervisor.SubscribeChildren",
        &json!({}),
    );
    assert_eq!(children.next_reply(), Some(json!({"ready": true})));
    let kill = |whom: &str, signal: i32| {
        let params = json!({"whom": whom, "signal": signal});
        supervise.call("io.berth.Supervisor.Kill", params)
    };
    assert_eq!(kill("all", 19), json!({"parameters": {}}));
    wait::until("everyone to stop", || process_state(child) == 'T');
    assert_eq!(kill("all", 18), json!({"parameters": {}}));
    wait::until("everyone to go on", || process_state(child) != 'T');
    assert_eq!(kill("leader", 10), json!({"parameters": {}}));
    assert_eq!(supervise.wait_exit(), 42);
    let leader_exit = std::iter::from_fn(|| children.next_reply())
        .find(|c| c["child"]["leader"] == true && c["child"]["code"] == "exited")
        .expect("the leader's exit");
    assert_eq!(leader_exit["child"]["status"], 42);
    assert!(children.finished_ok());
    assert!(is_dead(child));
}
