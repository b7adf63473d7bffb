//! Restart recovery: reading the state files back. Every machine whose leader still runs is
//! back with the same fields; a machine whose leader died (or whose PID now belongs to another
//! process, told apart by the pidfd ID) is dropped and its own cgroup cleaned up.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use berth_interfaces::machine::{MachineClass, Timestamp};
use berth_os::process::ProcessRef;

use crate::idmap::UserNamespace;
use crate::machine::Machine;
use crate::manager::Registry;
use crate::names;
use crate::state_file;

/// What a restore found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Machines back in the registry.
    pub restored: usize,
    /// State files of machines that ended while the registry was away.
    pub dropped: usize,
}

/// Reads every state file in the registry's state directory back into the registry.
pub fn restore(registry: &Arc<Registry>) -> RestoreReport {
    let dir = registry.config().state_dir.clone();
    let mut report = RestoreReport::default();
    let Ok(entries) = fs::read_dir(&dir) else {
        return report;
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if file.starts_with("unit:") || file.starts_with(".#") {
            // Links are made again for restored machines; temporaries are leftovers of a crash.
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if !names::is_valid_machine_name(&file) {
            continue;
        }
        match restore_one(registry, &dir, &file) {
            Ok(()) => report.restored += 1,
            Err(reason) => {
                tracing::info!(machine = %file, %reason, "Dropping saved machine");
                let _ = state_file::remove(&dir, &file);
                report.dropped += 1;
            }
        }
    }
    report
}

fn restore_one(registry: &Arc<Registry>, dir: &Path, file: &str) -> Result<(), String> {
    let text = fs::read_to_string(dir.join(file)).map_err(|e| e.to_string())?;
    let entries = state_file::parse(&text);
    let root = registry.config().cgroup_root.as_ref();
    let cgroup = [("CGROUP", true), ("ADOPTED_CGROUP", false)]
        .into_iter()
        .find_map(|(key, owned)| root?.existing(Path::new(entries.get(key)?), owned));
    let machine = match machine_from_state(file, &entries) {
        Ok(mut machine) => {
            machine.cgroup = cgroup;
            machine
        }
        Err(reason) => {
            if let Some(cgroup) = cgroup {
                tokio::spawn(async move { cgroup.destroy().await });
            }
            return Err(reason);
        }
    };
    registry
        .readd(machine)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn machine_from_state(file: &str, entries: &HashMap<String, String>) -> Result<Machine, String> {
    let get = |key: &str| entries.get(key).filter(|v| !v.is_empty()).cloned();
    if get("NAME").as_deref() != Some(file) {
        return Err("its NAME does not match the file name".into());
    }
    let class = match get("CLASS").as_deref() {
        Some("container") => MachineClass::Container,
        Some("vm") => MachineClass::Vm,
        _ => return Err("it has no valid CLASS".into()),
    };
    let leader = pin(get("LEADER"), get("LEADER_PIDFDID")).ok_or("its leader is gone")?;
    let parse = |key: &str| get(key).and_then(|v| v.parse::<u64>().ok());
    let userns = match class {
        MachineClass::Container => {
            UserNamespace::of_process(leader.pid()).map_err(|e| e.to_string())?
        }
        _ => UserNamespace::Host,
    };
    Ok(Machine {
        name: file.to_owned(),
        instance: 0,
        id: get("ID").and_then(|id| names::parse_id128(&id).ok().flatten()),
        class,
        service: get("SERVICE"),
        root_directory: get("ROOT"),
        unit: get("SCOPE"),
        subgroup: get("SUBGROUP"),
        cgroup: None,
        leader,
        supervisor: pin(get("SUPERVISOR"), get("SUPERVISOR_PIDFDID")),
        timestamp: Timestamp {
            realtime: parse("REALTIME"),
            monotonic: parse("MONOTONIC"),
        },
        netif: get("NETIF")
            .map(|n| {
                n.split_whitespace()
                    .filter_map(|i| i.parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
        vsock_cid: parse("VSOCK_CID")
            .and_then(|c| u32::try_from(c).ok())
            .filter(|&c| c > 2 && c < u32::MAX),
        ssh_address: get("SSH_ADDRESS"),
        ssh_private_key_path: get("SSH_PRIVATE_KEY_PATH"),
        control_address: get("CONTROL_ADDRESS"),
        userns,
        network: Default::default(),
        uid: parse("UID")
            .and_then(|u| u32::try_from(u).ok())
            .unwrap_or(0),
        stopping: get("STOPPING").is_some(),
    })
}

/// Pins a saved process again; `None` if it is gone or its PID was recycled (the pidfd ID
/// differs from the saved one).
fn pin(pid: Option<String>, pidfd_id: Option<String>) -> Option<ProcessRef> {
    let pid = pid?.parse::<u32>().ok().filter(|&pid| pid > 1)?;
    let process = ProcessRef::open(pid).ok()?;
    let saved_id = pidfd_id.and_then(|id| id.parse::<u64>().ok());
    let same = match (saved_id, process.id()) {
        (Some(saved), Some(now)) => saved == now,
        _ => true,
    };
    (same && process.is_alive()).then_some(process)
}
