//! Fault: the state directory fills up. `Register` fails with a clear error (`ENOSPC`, logged),
//! leaves no partial state file, every earlier machine stays intact, and registering works
//! again once there is room.

use std::fs;

use berth_tests::clients::RawClient;
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::Proc;
use berth_tests::require;
use serde_json::{Value, json};

fn register(client: &mut RawClient, name: &str, leader: &Proc) -> Value {
    client.method(
        "io.systemd.Machine.Register",
        json!({"name": name, "class": "container", "leader": leader.pid()}),
    )
}

/// The names of the files in the state directory as the registry sees it.
fn state_files(registry: &Registry) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(registry.state_dir_seen_by_it())
        .expect("the state directory")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_full_state_directory_refuses_cleanly_and_recovers() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::with(Options {
        cgroup: false,
        state_tmpfs: Some("16k".into()),
        ..Options::default()
    });
    let mut client = RawClient::connect(&registry.socket());
    let mut leaders = Vec::new();
    let refusal = loop {
        let leader = Proc::sleeper();
        let reply = register(&mut client, &format!("m{}", leaders.len()), &leader);
        if reply.get("error").is_some() {
            break reply;
        }
        leaders.push(leader);
        assert!(leaders.len() < 1000, "the tmpfs never filled up");
    };
    assert_eq!(
        refusal,
        json!({"error": "io.systemd.System", "parameters": {"errno": libc::ENOSPC}})
    );
    assert!(
        registry.log().contains("No space left on device"),
        "the failure is logged"
    );
    // Nothing half-written: exactly the earlier machines' files.
    let expected: Vec<String> = (0..leaders.len()).map(|i| format!("m{i}")).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(state_files(&registry), expected_sorted);
    for name in &expected {
        let reply = client.method("io.systemd.Machine.List", json!({"name": name}));
        assert_eq!(reply["parameters"]["name"], *name, "{reply}");
        let saved = fs::read_to_string(registry.state_dir_seen_by_it().join(name)).unwrap();
        assert!(saved.contains(&format!("NAME={name}")), "{saved}");
    }
    // Room again: it registers.
    let reply = client.method("io.systemd.Machine.Unregister", json!({"name": "m0"}));
    assert!(reply.get("error").is_none(), "{reply}");
    let late = Proc::sleeper();
    let reply = register(&mut client, "late", &late);
    assert!(reply.get("error").is_none(), "{reply}");
    assert!(state_files(&registry).contains(&"late".to_owned()));
}
