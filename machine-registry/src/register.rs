//! Turning a `Register` request into a machine: validation with machined's rules, leader and
//! supervisor from the request or the caller, and the ownership check.

use berth_interfaces::machine::{MachineClass, ProcessId, RegisterRequest};
use berth_os::proc;
use berth_os::process::ProcessRef;
use berth_service_runtime::peer::Peer;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::idmap::UserNamespace;
use crate::machine::{self, Machine};
use crate::manager::{CgroupPlan, NewMachine};
use crate::names;

/// Validates `request` (fields checked in the order the caller sent them, as sd-json does, so
/// the first bad field is the one reported) and builds the machine to add.
///
/// # Errors
/// `InvalidParameter` for the first bad field, `PermissionDenied` when an unprivileged caller
/// names a leader it does not own, `System(ESRCH)` when the caller's own process cannot be
/// pinned as leader.
pub fn prepare(
    request: RegisterRequest,
    order: &Map<String, Value>,
    peer: &Peer,
    boot_id: &str,
) -> Result<NewMachine, Error> {
    let mut fields = Fields::default();
    for key in order.keys() {
        fields.check(key, &request, boot_id)?;
    }
    let caller = peer.process().cloned();
    let (leader, supervisor) = match fields.leader {
        Some(leader) => {
            let supervisor = caller.filter(|c| !c.same_process(&leader));
            (leader, supervisor)
        }
        None => (
            caller.ok_or(Error::System(std::io::Error::from_raw_os_error(
                libc::ESRCH,
            )))?,
            None,
        ),
    };
    if !peer.is_privileged() && !leader.is_owned_by(peer.uid)? {
        return Err(Error::PermissionDenied);
    }
    let leader_cgroup = proc::cgroup_path(leader.pid());
    let (unit, subgroup) = leader_cgroup
        .as_deref()
        .map(machine::unit_of_cgroup)
        .unwrap_or_default();
    let cgroup = match (request.allocate_unit, leader_cgroup) {
        (Some(true), _) => CgroupPlan::Allocate,
        // A leader with a supervisor: if the leader is the only process in its cgroup (checked
        // when adding), the cgroup is not the supervisor's own, so the supervisor made it for
        // the machine.
        (_, Some(path)) if supervisor.is_some() => CgroupPlan::Adopt(path),
        _ => CgroupPlan::None,
    };
    let userns = user_namespace(request.class, leader.pid())?;
    let machine = Machine {
        name: request.name,
        instance: 0,
        id: fields.id,
        class: request.class,
        service: request.service,
        root_directory: request.root_directory,
        unit,
        subgroup,
        cgroup: None,
        leader,
        supervisor,
        timestamp: machine::now(),
        netif: fields.netif,
        vsock_cid: fields.vsock_cid,
        ssh_address: request.ssh_address,
        ssh_private_key_path: request.ssh_private_key_path,
        control_address: request.control_address,
        userns,
        network: Default::default(),
        uid: peer.uid,
        stopping: false,
    };
    Ok(NewMachine { machine, cgroup })
}

/// A container's user namespace; VMs have none that matters.
fn user_namespace(class: MachineClass, leader: u32) -> Result<UserNamespace, Error> {
    match class {
        MachineClass::Container => Ok(UserNamespace::of_process(leader)?),
        _ => Ok(UserNamespace::Host),
    }
}

/// What the checks resolve, beyond the plain strings of the request.
#[derive(Default)]
struct Fields {
    id: Option<String>,
    leader: Option<ProcessRef>,
    netif: Vec<i32>,
    vsock_cid: Option<u32>,
}

impl Fields {
    fn check(&mut self, key: &str, request: &RegisterRequest, boot_id: &str) -> Result<(), Error> {
        let invalid = |field| Err(Error::invalid(field));
        match key {
            "name" if !names::is_valid_machine_name(&request.name) => invalid("name"),
            "class" if request.class == MachineClass::Host => invalid("class"),
            "id" => {
                self.id = match &request.id {
                    Some(id) => names::parse_id128(id).map_err(|_| Error::invalid("id"))?,
                    None => None,
                };
                Ok(())
            }
            "leader" => match request.leader {
                Some(pid) => self.set_leader("leader", &ProcessId::from_pid(pid_u32(pid)), boot_id),
                None => Ok(()),
            },
            "leaderProcessId" => match &request.leader_process_id {
                Some(pid) => self.set_leader("leaderProcessId", pid, boot_id),
                None => Ok(()),
            },
            "rootDirectory" => check_path(
                &request.root_directory,
                "rootDirectory",
                names::is_absolute_normalized_path,
            ),
            "controlAddress" => check_path(
                &request.control_address,
                "controlAddress",
                names::is_absolute_normalized_path,
            ),
            "sshPrivateKeyPath" => check_path(
                &request.ssh_private_key_path,
                "sshPrivateKeyPath",
                names::is_absolute_path,
            ),
            "sshAddress" => check_path(&request.ssh_address, "sshAddress", names::is_safe_string),
            "ifIndices" => {
                self.netif = if_indices(request.if_indices.as_deref().unwrap_or_default())
                    .ok_or(Error::invalid("ifIndices"))?;
                Ok(())
            }
            "vSockCid" => {
                self.vsock_cid = match request.v_sock_cid {
                    Some(cid) => Some(regular_cid(cid).ok_or(Error::invalid("vSockCid"))?),
                    None => None,
                };
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Pins a leader strictly: it must exist, not be PID 1, and match the `pidfdId` and
    /// `bootId` given; a second leader field must name the same process as the first.
    fn set_leader(&mut self, field: &str, pid: &ProcessId, boot_id: &str) -> Result<(), Error> {
        let invalid = Error::invalid(field);
        if pid.pid <= 1 || pid.pid > i32::MAX as u32 {
            return Err(invalid);
        }
        let process = ProcessRef::open(pid.pid).map_err(|_| Error::invalid(field))?;
        let id_matches = pid.pidfd_id.is_none_or(|id| process.id() == Some(id));
        let boot_matches = pid.boot_id.as_deref().is_none_or(|b| b == boot_id);
        let same_as_before = self
            .leader
            .as_ref()
            .is_none_or(|l| l.same_process(&process));
        if !(id_matches && boot_matches && same_as_before) {
            return Err(invalid);
        }
        self.leader = Some(process);
        Ok(())
    }
}

/// A negative or oversized plain `leader` can never be valid; map it to an invalid PID.
fn pid_u32(pid: i64) -> u32 {
    u32::try_from(pid).unwrap_or(0)
}

fn check_path(value: &Option<String>, field: &str, valid: fn(&str) -> bool) -> Result<(), Error> {
    match value {
        Some(v) if !valid(v) => Err(Error::invalid(field)),
        _ => Ok(()),
    }
}

fn if_indices(indices: &[i64]) -> Option<Vec<i32>> {
    indices
        .iter()
        .map(|&i| i32::try_from(i).ok().filter(|&i| i > 0))
        .collect()
}

/// A "regular" AF_VSOCK CID: not any/hypervisor/local/host, not `VMADDR_CID_ANY`.
fn regular_cid(cid: i64) -> Option<u32> {
    u32::try_from(cid)
        .ok()
        .filter(|&cid| cid > 2 && cid < u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_indices_and_cids_have_machined_ranges() {
        assert_eq!(if_indices(&[1, 7]), Some(vec![1, 7]));
        assert_eq!(if_indices(&[0]), None);
        assert_eq!(if_indices(&[1 << 31]), None);
        assert_eq!(regular_cid(3), Some(3));
        for bad in [-1, 0, 1, 2, i64::from(u32::MAX)] {
            assert_eq!(regular_cid(bad), None, "{bad}");
        }
    }
}
