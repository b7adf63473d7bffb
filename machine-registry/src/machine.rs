//! One registered machine: what it is, how it shows in `List`, how it is saved.

use berth_interfaces::machine::{MachineClass, MachineInfo, ProcessId, Timestamp};
use berth_os::process::ProcessRef;

use crate::cgroup::MachineCgroup;
use crate::idmap::UserNamespace;
use crate::network::NetworkCell;

/// A registered machine. Machines are shared as `Arc<Machine>`; a change (such as `stopping`)
/// replaces the whole value.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The name (a valid hostname), unique in the registry.
    pub name: String,
    /// Distinguishes this registration from a later one of the same name.
    pub instance: u64,
    /// 128-bit ID, 32 lowercase hex digits.
    pub id: Option<String>,
    /// `container`, `vm` or (for `.host`) `host`.
    pub class: MachineClass,
    /// The registering software, free-form.
    pub service: Option<String>,
    /// Root directory on the host (informational only: unprivileged callers can set it).
    pub root_directory: Option<String>,
    /// The unit (cgroup) containing the leader, when there is one.
    pub unit: Option<String>,
    /// The leader's cgroup below the unit's.
    pub subgroup: Option<String>,
    /// The cgroup the registry made for the machine (`allocateUnit: true`).
    pub cgroup: Option<MachineCgroup>,
    /// The leader: container PID 1, or the VMM.
    pub leader: ProcessRef,
    /// The process that registered the machine for another leader.
    pub supervisor: Option<ProcessRef>,
    /// When it was registered (µs on both clocks).
    pub timestamp: Timestamp,
    /// Host-side network interface indices.
    pub netif: Vec<i32>,
    /// AF_VSOCK CID.
    pub vsock_cid: Option<u32>,
    /// SSH address.
    pub ssh_address: Option<String>,
    /// SSH private key path.
    pub ssh_private_key_path: Option<String>,
    /// Socket of the machine's `io.systemd.MachineInstance` server.
    pub control_address: Option<String>,
    /// The leader's user namespace and its ID maps.
    pub userns: UserNamespace,
    /// Its addresses, watched from the first lookup on (shared by every copy of the machine).
    pub network: NetworkCell,
    /// UID of the user who registered it.
    pub uid: u32,
    /// Whether `Terminate` was asked for.
    pub stopping: bool,
}

impl Machine {
    /// The `List` reply for this machine, without metadata.
    pub fn info(&self, boot_id: &str) -> MachineInfo {
        MachineInfo {
            name: self.name.clone(),
            id: self.id.clone(),
            class: self.class,
            service: self.service.clone().filter(|s| !s.is_empty()),
            root_directory: self.root_directory.clone().filter(|s| !s.is_empty()),
            unit: self.unit.clone(),
            subgroup: self.subgroup.clone(),
            leader: Some(process_id(&self.leader, boot_id)),
            supervisor: self.supervisor.as_ref().map(|s| process_id(s, boot_id)),
            timestamp: Some(self.timestamp),
            v_sock_cid: self.vsock_cid,
            ssh_address: self.ssh_address.clone(),
            ssh_private_key_path: self.ssh_private_key_path.clone(),
            control_address: self.control_address.clone(),
            uid: Some(self.uid),
            ..MachineInfo::default()
        }
    }

    /// Whether the machine owns its unit alone (then `unit:UNIT` links to its state file).
    pub fn owns_unit(&self) -> bool {
        self.unit.is_some() && self.subgroup.is_none()
    }

    /// The state file entries, in machined's order (plus `SUBGROUP` and Berth's `CGROUP`).
    pub fn state_entries(&self) -> Vec<(&'static str, Option<String>)> {
        let pid_id = |p: &ProcessRef| p.id().map(|id| id.to_string());
        vec![
            ("NAME", Some(self.name.clone())),
            ("UID", Some(self.uid.to_string())),
            ("SCOPE", self.unit.clone()),
            ("SUBGROUP", self.subgroup.clone()),
            ("CGROUP", self.cgroup_path(true)),
            ("ADOPTED_CGROUP", self.cgroup_path(false)),
            ("SERVICE", self.service.clone()),
            ("ROOT", self.root_directory.clone()),
            ("ID", self.id.clone()),
            ("LEADER", Some(self.leader.pid().to_string())),
            ("LEADER_PIDFDID", pid_id(&self.leader)),
            (
                "SUPERVISOR",
                self.supervisor.as_ref().map(|s| s.pid().to_string()),
            ),
            (
                "SUPERVISOR_PIDFDID",
                self.supervisor.as_ref().and_then(pid_id),
            ),
            ("CLASS", Some(self.class.as_str().to_owned())),
            ("REALTIME", self.timestamp.realtime.map(|t| t.to_string())),
            ("MONOTONIC", self.timestamp.monotonic.map(|t| t.to_string())),
            ("NETIF", (!self.netif.is_empty()).then(|| join(&self.netif))),
            ("VSOCK_CID", self.vsock_cid.map(|c| c.to_string())),
            ("SSH_ADDRESS", self.ssh_address.clone()),
            ("SSH_PRIVATE_KEY_PATH", self.ssh_private_key_path.clone()),
            ("CONTROL_ADDRESS", self.control_address.clone()),
            ("STOPPING", self.stopping.then(|| "1".to_owned())),
        ]
    }
}

impl Machine {
    fn cgroup_path(&self, owned: bool) -> Option<String> {
        let cgroup = self.cgroup.as_ref().filter(|c| c.is_owned() == owned)?;
        Some(cgroup.path().display().to_string())
    }
}

fn join(netif: &[i32]) -> String {
    netif
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The systemd unit in a cgroup path, and the rest of the path below it: the first component
/// that is a service or scope (slices only group units).
pub fn unit_of_cgroup(path: &str) -> (Option<String>, Option<String>) {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let Some(at) = components
        .iter()
        .position(|c| c.ends_with(".service") || c.ends_with(".scope"))
    else {
        return (None, None);
    };
    let subgroup = components[at + 1..].join("/");
    (
        Some(components[at].to_owned()),
        (!subgroup.is_empty()).then_some(subgroup),
    )
}

fn micros(clock: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0) / 1000
}

/// Now, on both clocks.
pub fn now() -> Timestamp {
    Timestamp {
        realtime: Some(micros(rustix::time::ClockId::Realtime)),
        monotonic: Some(micros(rustix::time::ClockId::Monotonic)),
    }
}

/// When the system booted (`.host`'s timestamp): the kernel's `btime`, and monotonic 0.
/// Read from `/proc/stat` so it is the same on every call and across registry restarts.
pub fn boot_time() -> Timestamp {
    let btime = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
        stat.lines()
            .find_map(|line| line.strip_prefix("btime "))
            .and_then(|secs| secs.trim().parse::<u64>().ok())
    });
    Timestamp {
        realtime: btime.map(|secs| secs * 1_000_000),
        monotonic: Some(0),
    }
}

/// The wire form of a pinned process, with `pidfdId` and `bootId` when the pidfd ID is known.
pub fn process_id(process: &ProcessRef, boot_id: &str) -> ProcessId {
    ProcessId {
        pid: process.pid(),
        pidfd_id: process.id(),
        boot_id: process.id().map(|_| boot_id.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_found_past_slices() {
        assert_eq!(unit_of_cgroup("/"), (None, None));
        assert_eq!(
            unit_of_cgroup("/machine.slice/machine-a.scope"),
            (Some("machine-a.scope".into()), None)
        );
        assert_eq!(
            unit_of_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope"),
            (
                Some("user@1000.service".into()),
                Some("app.slice/x.scope".into())
            )
        );
    }
}
