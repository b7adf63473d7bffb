//! Registering machines and watching them and their processes end.

use berth_interfaces::client::MachineProxy;
use berth_interfaces::machine::{
    ListRequest, MachineClass, MachineError, MachineLookup, ProcessId, RegisterRequest,
};

use crate::daemon::Registry;
use crate::wait;

/// A `Register` request for a container led by `leader`.
pub fn container(name: &str, leader: u32) -> RegisterRequest {
    machine(name, MachineClass::Container, leader)
}

/// A `Register` request for a machine of `class` led by `leader`.
pub fn machine(name: &str, class: MachineClass, leader: u32) -> RegisterRequest {
    RegisterRequest {
        name: name.into(),
        class,
        leader_process_id: Some(ProcessId::from_pid(leader)),
        ..RegisterRequest::default()
    }
}

/// A `List` request for one machine.
pub fn by_name(name: &str) -> ListRequest {
    ListRequest {
        lookup: MachineLookup::by_name(name),
        ..ListRequest::default()
    }
}

/// Waits until `name` has left the registry.
pub async fn wait_gone(registry: &Registry, name: &str) {
    wait::until_async(&format!("{name} to leave the registry"), || async {
        let mut conn = registry.connect().await;
        conn.list(&by_name(name)).await.unwrap() == Err(MachineError::NoSuchMachine)
    })
    .await;
}

/// Waits until `parent` has at least `count` children; returns them.
pub fn children_of(parent: u32, count: usize) -> Vec<u32> {
    let mut children = Vec::new();
    wait::until("the leader's children", || {
        children = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| parent_of(pid) == Some(parent))
            .collect();
        children.len() >= count
    });
    children
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

/// Registers a machine with varlinkctl, which exits right after: a machine whose supervisor is
/// gone (so `Terminate` signals the machine itself, never the test).
///
/// # Panics
/// When the registration fails.
pub fn register_with_varlinkctl(registry: &Registry, params: &serde_json::Value) {
    let run = crate::clients::varlinkctl_call(
        &registry.socket(),
        "io.systemd.Machine.Register",
        &params.to_string(),
        false,
    );
    assert!(run.success, "{run:?}");
}

/// Registers `name` of `class` led by `leader` with a raw call.
///
/// # Panics
/// When the registration fails.
pub fn register_raw(registry: &Registry, name: &str, class: &str, leader: u32) {
    let reply = crate::clients::RawClient::connect(&registry.socket()).method(
        "io.systemd.Machine.Register",
        serde_json::json!({"name": name, "class": class, "leader": leader}),
    );
    assert!(reply.get("error").is_none(), "{reply}");
}
