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
            let _ = registry.state_dir().remove(&file);
            continue;
        }
        if !names::is_valid_machine_name(&file) {
            continue;
        }
        match restore_one(registry, &dir, &file) {
            Ok(()) => report.restored += 1,
            Err(reason) => {
                tracing::info!(machine = %file, %reason, "Dropping saved machine");
                let _ = registry.state_dir().remove(&file);
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

/// Turns a state file into a machine: the fields first ([`saved_machine`]), then the processes
/// pinned again and the leader's user namespace read.
fn machine_from_state(file: &str, entries: &HashMap<String, String>) -> Result<Machine, String> {
    let saved = saved_machine(file, entries)?;
    let leader = pin(&saved.leader).ok_or("its leader is gone")?;
    let userns = match saved.class {
        MachineClass::Container => {
            UserNamespace::of_process(leader.pid()).map_err(|e| e.to_string())?
        }
        _ => UserNamespace::Host,
    };
    let supervisor = saved.supervisor.as_ref().and_then(pin);
    Ok(saved.into_machine(leader, supervisor, userns))
}

/// What a state file says about a machine, checked but not yet tied to live processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMachine {
    /// `NAME`, the same as the file's name.
    pub name: String,
    /// `ID`, 32 lowercase hex digits.
    pub id: Option<String>,
    /// `CLASS`: `container` or `vm`.
    pub class: MachineClass,
    /// `SERVICE`.
    pub service: Option<String>,
    /// `ROOT`.
    pub root_directory: Option<String>,
    /// `SCOPE`.
    pub unit: Option<String>,
    /// `SUBGROUP`.
    pub subgroup: Option<String>,
    /// `LEADER` and `LEADER_PIDFDID`.
    pub leader: SavedProcess,
    /// `SUPERVISOR` and `SUPERVISOR_PIDFDID`.
    pub supervisor: Option<SavedProcess>,
    /// `REALTIME` and `MONOTONIC`.
    pub timestamp: Timestamp,
    /// `NETIF`.
    pub netif: Vec<i32>,
    /// `VSOCK_CID`.
    pub vsock_cid: Option<u32>,
    /// `SSH_ADDRESS`.
    pub ssh_address: Option<String>,
    /// `SSH_PRIVATE_KEY_PATH`.
    pub ssh_private_key_path: Option<String>,
    /// `CONTROL_ADDRESS`.
    pub control_address: Option<String>,
    /// `UID`.
    pub uid: u32,
    /// `STOPPING`.
    pub stopping: bool,
}

impl SavedMachine {
    /// The machine, its processes pinned again (`leader`, `supervisor`) and its user namespace
    /// read; no cgroup yet.
    pub fn into_machine(
        self,
        leader: ProcessRef,
        supervisor: Option<ProcessRef>,
        userns: UserNamespace,
    ) -> Machine {
        Machine {
            name: self.name,
            instance: 0,
            id: self.id,
            class: self.class,
            service: self.service,
            root_directory: self.root_directory,
            unit: self.unit,
            subgroup: self.subgroup,
            cgroup: None,
            leader,
            supervisor,
            timestamp: self.timestamp,
            netif: self.netif,
            vsock_cid: self.vsock_cid,
            ssh_address: self.ssh_address,
            ssh_private_key_path: self.ssh_private_key_path,
            control_address: self.control_address,
            userns,
            network: Default::default(),
            uid: self.uid,
            stopping: self.stopping,
        }
    }
}

/// A saved process: its PID and, when known, the pidfd ID that tells a recycled PID apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedProcess {
    /// The PID (above 1).
    pub pid: u32,
    /// The pidfs inode of its pidfd.
    pub pidfd_id: Option<u64>,
}

/// Reads the fields of the state file `file` (parsed into `entries`). Unknown keys and values
/// that do not parse are ignored (a field left out), as machined does.
///
/// # Errors
/// Why the file cannot be a machine: its `NAME` is not the file's name, it has no valid
/// `CLASS`, or no valid `LEADER`.
pub fn saved_machine(
    file: &str,
    entries: &HashMap<String, String>,
) -> Result<SavedMachine, String> {
    let get = |key: &str| entries.get(key).filter(|v| !v.is_empty()).cloned();
    if get("NAME").as_deref() != Some(file) {
        return Err("its NAME does not match the file name".into());
    }
    let class = match get("CLASS").as_deref() {
        Some("container") => MachineClass::Container,
        Some("vm") => MachineClass::Vm,
        _ => return Err("it has no valid CLASS".into()),
    };
    let leader = saved_process(get("LEADER"), get("LEADER_PIDFDID")).ok_or("its leader is gone")?;
    let parse = |key: &str| get(key).and_then(|v| v.parse::<u64>().ok());
    Ok(SavedMachine {
        name: file.to_owned(),
        id: get("ID").and_then(|id| names::parse_id128(&id).ok().flatten()),
        class,
        service: get("SERVICE"),
        root_directory: get("ROOT"),
        unit: get("SCOPE"),
        subgroup: get("SUBGROUP"),
        leader,
        supervisor: saved_process(get("SUPERVISOR"), get("SUPERVISOR_PIDFDID")),
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
        uid: parse("UID")
            .and_then(|u| u32::try_from(u).ok())
            .unwrap_or(0),
        stopping: get("STOPPING").is_some(),
    })
}

/// A saved PID (above 1) and its pidfd ID, if it has one that parses.
fn saved_process(pid: Option<String>, pidfd_id: Option<String>) -> Option<SavedProcess> {
    Some(SavedProcess {
        pid: pid?.parse::<u32>().ok().filter(|&pid| pid > 1)?,
        pidfd_id: pidfd_id.and_then(|id| id.parse::<u64>().ok()),
    })
}

/// Pins a saved process again; `None` if it is gone or its PID was recycled (the pidfd ID
/// differs from the saved one).
fn pin(saved: &SavedProcess) -> Option<ProcessRef> {
    let process = ProcessRef::open(saved.pid).ok()?;
    let same = match (saved.pidfd_id, process.id()) {
        (Some(saved), Some(now)) => saved == now,
        _ => true,
    };
    (same && process.is_alive()).then_some(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "# This is private data. Do not parse.\nNAME=demo\nUID=1000\n\
                         SCOPE=machine-demo.scope\nSERVICE=\"nspawn x\"\nID=0123456789ABCDEF0123456789abcdef\n\
                         LEADER=4242\nLEADER_PIDFDID=77\nSUPERVISOR=1\nCLASS=container\n\
                         REALTIME=1700000000000000\nNETIF=\" 5 x 7\"\nVSOCK_CID=2\nSTOPPING=1\n";

    #[test]
    fn state_files_read_back_into_their_fields() {
        let saved = saved_machine("demo", &state_file::parse(SAVED)).unwrap();
        assert_eq!(
            saved,
            SavedMachine {
                name: "demo".into(),
                id: Some("0123456789abcdef0123456789abcdef".into()),
                class: MachineClass::Container,
                service: Some("nspawn x".into()),
                root_directory: None,
                unit: Some("machine-demo.scope".into()),
                subgroup: None,
                leader: SavedProcess {
                    pid: 4242,
                    pidfd_id: Some(77),
                },
                supervisor: None,
                timestamp: Timestamp {
                    realtime: Some(1_700_000_000_000_000),
                    monotonic: None,
                },
                netif: vec![5, 7],
                vsock_cid: None,
                ssh_address: None,
                ssh_private_key_path: None,
                control_address: None,
                uid: 1000,
                stopping: true,
            }
        );
    }

    #[test]
    fn files_that_are_no_machine_say_why() {
        let without = |key: &str| {
            let text: String = SAVED
                .lines()
                .filter(|line| !line.starts_with(key))
                .map(|line| format!("{line}\n"))
                .collect();
            saved_machine("demo", &state_file::parse(&text)).unwrap_err()
        };
        assert_eq!(without("NAME="), "its NAME does not match the file name");
        assert_eq!(without("CLASS="), "it has no valid CLASS");
        assert_eq!(without("LEADER="), "its leader is gone");
        let entries = state_file::parse(SAVED);
        assert!(saved_machine("other", &entries).is_err());
    }
}
