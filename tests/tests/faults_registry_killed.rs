//! Fault: the registry is killed (SIGKILL) in the middle of a burst of `Register` calls. After
//! a restart every machine whose `Register` was answered is back, and no machine whose
//! registration went unanswered and whose leader is gone comes back as a ghost.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_tests::clients::RawClient;
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::Proc;
use berth_tests::wait;
use serde_json::{Value, json};

const BURST: usize = 300;

/// Registers `m0`, `m1`, … led by `leaders` one after the other until the connection breaks;
/// the names whose `Register` was answered with success.
fn burst(socket: &std::path::Path, leaders: &[u32], answered: &AtomicUsize) -> Vec<String> {
    let stream = UnixStream::connect(socket).expect("connect");
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut registered = Vec::new();
    for (i, leader) in leaders.iter().enumerate() {
        let name = format!("m{i}");
        let call = json!({"method": "io.systemd.Machine.Register",
            "parameters": {"name": name, "class": "container", "leader": leader}});
        if writer.write_all(format!("{call}\0").as_bytes()).is_err() {
            break;
        }
        let mut reply = Vec::new();
        match reader.read_until(0, &mut reply) {
            Ok(n) if n > 0 && reply.ends_with(b"\0") => {}
            _ => break,
        }
        let reply: Value = serde_json::from_slice(&reply[..reply.len() - 1]).unwrap();
        assert!(reply.get("error").is_none(), "{name}: {reply}");
        registered.push(name);
        answered.fetch_add(1, Ordering::SeqCst);
    }
    registered
}

fn listed(registry: &Registry) -> BTreeSet<String> {
    let mut client = RawClient::connect(&registry.socket());
    client.send(&json!({"method": "io.systemd.Machine.List", "more": true}));
    let mut names = BTreeSet::new();
    loop {
        let reply = client.recv().expect("a reply");
        names.insert(reply["parameters"]["name"].as_str().unwrap().to_owned());
        if reply.get("continues").is_none() {
            return names;
        }
    }
}

#[test]
fn machines_answered_before_a_kill_come_back_and_no_ghosts_do() {
    let mut registry = Registry::with(Options {
        cgroup: false,
        ..Options::default()
    });
    let mut leaders: Vec<Proc> = (0..BURST).map(|_| Proc::sleeper()).collect();
    let pids: Vec<u32> = leaders.iter().map(Proc::pid).collect();
    let answered = Arc::new(AtomicUsize::new(0));
    let socket = registry.socket();
    let counter = Arc::clone(&answered);
    let client = std::thread::spawn(move || burst(&socket, &pids, &counter));
    wait::until("a part of the burst to be answered", || {
        answered.load(Ordering::SeqCst) >= BURST / 3
    });
    registry.kill9();
    let registered = client.join().expect("the burst");
    assert!(registered.len() < BURST, "the kill came after the burst");

    // The registrants of unanswered machines give up: their leaders go.
    for leader in &mut leaders[registered.len()..] {
        leader.kill();
    }
    registry.start_again();
    let back = listed(&registry);
    for name in &registered {
        assert!(
            back.contains(name),
            "{name} was answered but did not come back"
        );
    }
    let ghosts: Vec<&String> = back
        .iter()
        .filter(|name| *name != ".host" && !registered.contains(name))
        .collect();
    assert!(ghosts.is_empty(), "ghosts came back: {ghosts:?}");
    let files = std::fs::read_dir(registry.state_dir()).unwrap().count();
    assert_eq!(files, registered.len(), "state files of ghosts are left");
}
