//! Fault: a leader that has exited already, or exits while its `Register` is processed. The
//! caller is told (`io.systemd.System` `ESRCH`) when the registry can still see it, and no
//! machine is ever left behind, in `List` or in the state directory.

use std::process::{Command, Stdio};

use berth_tests::clients::RawClient;
use berth_tests::daemon::{Options, Registry};
use berth_tests::wait;
use serde_json::{Value, json};

fn register(client: &mut RawClient, name: &str, leader: u32) -> Value {
    client.method(
        "io.systemd.Machine.Register",
        json!({"name": name, "class": "container", "leader": leader}),
    )
}

/// Whether `pid` is a zombie (exited, not reaped yet).
fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

/// Every machine `List` gives.
fn list_all(client: &mut RawClient) -> Vec<Value> {
    client.send(&json!({"method": "io.systemd.Machine.List", "more": true}));
    let mut replies = Vec::new();
    loop {
        let reply = client.recv().expect("a reply");
        let last = reply.get("continues").is_none();
        replies.push(reply);
        if last {
            return replies;
        }
    }
}

fn no_machine_left(registry: &Registry, client: &mut RawClient) -> bool {
    let only_host = list_all(client)
        .iter()
        .all(|reply| reply["parameters"]["name"] == ".host");
    let files = std::fs::read_dir(registry.state_dir())
        .map(|dir| dir.count())
        .unwrap_or(0);
    only_host && files == 0
}

#[test]
fn a_zombie_leader_is_refused_with_esrch() {
    let registry = Registry::with(Options {
        cgroup: false,
        ..Options::default()
    });
    let mut client = RawClient::connect(&registry.socket());
    let mut child = Command::new("true").stdin(Stdio::null()).spawn().unwrap();
    wait::until("the child to be a zombie", || is_zombie(child.id()));
    let reply = register(&mut client, "zombie", child.id());
    child.wait().unwrap();
    assert_eq!(
        reply,
        json!({"error": "io.systemd.System", "parameters": {"errno": libc::ESRCH}})
    );
    assert!(no_machine_left(&registry, &mut client));
}

#[test]
fn leaders_exiting_during_their_registration_leave_no_machine_behind() {
    let registry = Registry::with(Options {
        cgroup: false,
        ..Options::default()
    });
    let mut client = RawClient::connect(&registry.socket());
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..300 {
        // Exits about as fast as a process can: somewhere around its registration.
        let mut child = Command::new("true").stdin(Stdio::null()).spawn().unwrap();
        let reply = register(&mut client, &format!("brief{i}"), child.id());
        if reply.get("error").is_some() {
            refused += 1;
        } else {
            accepted += 1;
        }
        child.wait().unwrap();
    }
    println!("{accepted} registrations answered, {refused} refused");
    wait::until("every brief machine to be gone", || {
        no_machine_left(&registry, &mut client)
    });
}
