//! Fault: descriptors run out, for machines (each pins its leader with a pidfd) and for
//! connections. The registry refuses with a clear error (`io.systemd.System` `ENFILE`) and
//! serves again as soon as descriptors are free.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use berth_tests::clients::RawClient;
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::Proc;
use berth_tests::require;
use serde_json::{Value, json};

/// A small descriptor limit: 128 connections and 64 machines.
const NOFILE: u64 = 1024;

fn small_registry() -> Registry {
    Registry::with(Options {
        cgroup: false,
        nofile: Some(NOFILE),
        ..Options::default()
    })
}

fn enfile() -> Value {
    json!({"error": "io.systemd.System", "parameters": {"errno": libc::ENFILE}})
}

#[test]
fn machines_up_to_the_budget_then_enfile_then_room_again() {
    if !require::program("prlimit") {
        return;
    }
    let registry = small_registry();
    let mut client = RawClient::connect(&registry.socket());
    let mut leaders = Vec::new();
    let refusal = loop {
        let leader = Proc::sleeper();
        let reply = client.method(
            "io.systemd.Machine.Register",
            json!({"name": format!("m{}", leaders.len()), "class": "container", "leader": leader.pid()}),
        );
        if reply.get("error").is_some() {
            break reply;
        }
        leaders.push(leader);
        assert!(
            leaders.len() <= usize::try_from(NOFILE).unwrap(),
            "no budget"
        );
    };
    assert_eq!(refusal, enfile());
    assert!(leaders.len() >= 32, "only {} machines", leaders.len());
    // A machine that goes makes room for another.
    let last = format!("m{}", leaders.len() - 1);
    let reply = client.method("io.systemd.Machine.Unregister", json!({"name": last}));
    assert!(reply.get("error").is_none(), "{reply}");
    let late = Proc::sleeper();
    let reply = client.method(
        "io.systemd.Machine.Register",
        json!({"name": "late", "class": "container", "leader": late.pid()}),
    );
    assert!(reply.get("error").is_none(), "{reply}");
}

#[test]
fn connections_up_to_the_budget_then_enfile_then_served_again() {
    if !require::program("prlimit") {
        return;
    }
    let registry = small_registry();
    let mut held = Vec::new();
    let refusal = loop {
        let mut conn = UnixStream::connect(registry.socket()).unwrap();
        conn.write_all(b"{\"method\":\"org.varlink.service.GetInfo\"}\0")
            .unwrap();
        let reply = read_message(&mut conn);
        if reply.get("error").is_some() {
            break reply;
        }
        held.push(conn);
        assert!(held.len() <= 4096, "no budget");
    };
    assert_eq!(refusal, enfile());
    assert_eq!(held.len(), 128);
    held.clear();
    berth_tests::wait::until("the registry to serve again", || {
        let mut conn = UnixStream::connect(registry.socket()).unwrap();
        let _ = conn.write_all(b"{\"method\":\"org.varlink.service.GetInfo\"}\0");
        read_message(&mut conn)["parameters"]["vendor"] == "Berth"
    });
}

fn read_message(conn: &mut UnixStream) -> Value {
    let mut message = Vec::new();
    let mut chunk = [0u8; 4096];
    while !message.ends_with(b"\0") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return Value::Null,
            Ok(n) => message.extend_from_slice(&chunk[..n]),
        }
    }
    serde_json::from_slice(&message[..message.len() - 1]).unwrap_or(Value::Null)
}
