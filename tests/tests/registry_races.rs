//! Many connections registering and unregistering the same few names, with leaders that share
//! units, at once: the registry writes machines' files outside its lock, and whatever order the
//! calls land in, every answered Register has its state file, `unit:` link and host entry, and
//! every answered Unregister has none left behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use berth_tests::clients::RawClient;
use berth_tests::daemon::Registry;
use berth_tests::machined257::{self, ScopeSlice};
use berth_tests::process::Proc;
use berth_tests::require;
use serde_json::{Value, json};

const CONNECTIONS: usize = 8;
const NAMES: usize = 3;
const ROUNDS: usize = 400;

#[test]
fn one_names_files_follow_the_order_of_its_calls_from_many_connections() {
    if !require::root() || !require::check(machined257::cgroup2_available(), "cgroup2") {
        return;
    }
    let registry = Registry::without_cgroup();
    let slice = ScopeSlice::new("races");
    // Two leaders per connection; connections 0, 2, 4… share one unit, 1, 3, 5… another.
    let leaders: Vec<Vec<Proc>> = (0..CONNECTIONS)
        .map(|c| {
            (0..2)
                .map(|_| {
                    let leader = Proc::sleeper();
                    let scope = slice.path().join(format!("machine-shared{}.scope", c % 2));
                    std::fs::create_dir_all(&scope).unwrap();
                    std::fs::write(scope.join("cgroup.procs"), leader.pid().to_string()).unwrap();
                    leader
                })
                .collect()
        })
        .collect();
    let start = Arc::new(Barrier::new(CONNECTIONS));
    let threads: Vec<_> = leaders
        .iter()
        .enumerate()
        .map(|(c, own)| {
            let pids: Vec<u32> = own.iter().map(Proc::pid).collect();
            let socket = registry.socket();
            let start = Arc::clone(&start);
            let files = Files {
                state: registry.state_dir(),
                hosts: registry.host_table(),
            };
            std::thread::spawn(move || {
                let mut client = RawClient::connect(&socket);
                start.wait();
                race(&mut client, &files, c, &pids)
            })
        })
        .collect();
    let mut kept = BTreeSet::new();
    let mut registered = 0;
    for thread in threads {
        let (count, last) = thread.join().expect("a connection failed");
        registered += count;
        kept.extend(last);
    }
    assert!(
        registered > ROUNDS,
        "names were taken far too often: {registered}"
    );
    check_files(&registry, &kept);
}

/// Where a connection checks the files of the names it holds.
struct Files {
    state: PathBuf,
    hosts: PathBuf,
}

impl Files {
    /// While a connection holds `name`, nobody else may change its files: they are its own.
    fn assert_held(&self, name: &str, leader: u32) {
        let state = std::fs::read_to_string(self.state.join(name))
            .unwrap_or_else(|e| panic!("{name}: the state file of an answered Register: {e}"));
        assert!(
            state.contains(&format!("\nLEADER={leader}\n")),
            "{name}: {state}"
        );
        assert!(self.hosts.join(name).exists(), "{name}: no host entry");
    }
}

/// Registers and unregisters the shared names in turn, checking the files of each name while
/// it holds it; the last registration that succeeds is kept. Returns how many succeeded and
/// the name kept.
fn race(
    client: &mut RawClient,
    files: &Files,
    connection: usize,
    leaders: &[u32],
) -> (usize, Option<String>) {
    let mut registered = 0;
    for round in 0..ROUNDS {
        let name = format!("race{}", (connection + round) % NAMES);
        let leader = leaders[round % leaders.len()];
        let reply = client.call(&json!({
            "method": "io.systemd.Machine.Register",
            "parameters": {"name": name, "class": "container", "leaderProcessId": {"pid": leader}},
        }));
        match reply.get("error").and_then(Value::as_str) {
            None => {
                registered += 1;
                files.assert_held(&name, leader);
            }
            Some("io.systemd.Machine.MachineExists") => continue,
            Some(other) => panic!("Register {name}: {other}: {reply}"),
        }
        if round + NAMES >= ROUNDS {
            return (registered, Some(name));
        }
        files.assert_held(&name, leader);
        let reply = client.call(&json!({
            "method": "io.systemd.Machine.Unregister",
            "parameters": {"name": name},
        }));
        assert!(reply.get("error").is_none(), "Unregister {name}: {reply}");
    }
    (registered, None)
}

/// The registry lists exactly `kept`, and its files say the same: a state file and a host
/// entry each, `unit:` links only to kept machines of that unit, nothing else.
fn check_files(registry: &Registry, kept: &BTreeSet<String>) {
    let mut client = RawClient::connect(&registry.socket());
    client.send(&json!({"method": "io.systemd.Machine.List", "parameters": {}, "more": true}));
    let mut listed = BTreeSet::new();
    let mut units = BTreeSet::new();
    loop {
        let reply = client.recv().expect("a List reply");
        if let Some(name) = reply["parameters"]["name"].as_str()
            && name != ".host"
        {
            listed.insert(name.to_owned());
            units.insert(reply["parameters"]["unit"].as_str().unwrap().to_owned());
        }
        if !reply["continues"].as_bool().unwrap_or(false) {
            break;
        }
    }
    assert_eq!(&listed, kept);
    let state = names_in(&registry.state_dir());
    let links: BTreeSet<String> = state
        .iter()
        .filter_map(|n| n.strip_prefix("unit:").map(str::to_owned))
        .collect();
    let files: BTreeSet<String> = state
        .iter()
        .filter(|n| !n.starts_with("unit:"))
        .cloned()
        .collect();
    assert_eq!(&files, kept, "state files");
    // A unit's link belongs to the machine that had the unit first; it goes with that machine,
    // and one registered later with the same unit does not take it over (as in machined).
    assert!(
        links.is_subset(&units),
        "unit links {links:?} of units {units:?}"
    );
    for unit in &links {
        let target = std::fs::read_link(registry.state_dir().join(format!("unit:{unit}"))).unwrap();
        let target = target.to_str().unwrap();
        assert!(kept.contains(target), "unit:{unit} → {target}");
        let text = std::fs::read_to_string(registry.state_dir().join(target)).unwrap();
        assert!(text.contains(&format!("\nSCOPE={unit}\n")), "{text}");
    }
    let mut entries = names_in(&registry.host_table());
    entries.retain(|n| !n.starts_with('.'));
    assert_eq!(&entries, kept, "host entries");
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}
