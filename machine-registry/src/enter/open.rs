//! `Open` and `BindMount`: jobs for the machine helper, which enters the machine.

use std::os::fd::OwnedFd;

use berth_interfaces::helper::{Caller, HelperFailure, HelperReply, HelperRequest, Job};
use berth_interfaces::machine::MachineClass;
use berth_os::identity::Identity;
use rustix::fs::{Mode, OFlags};

use super::helper;
use crate::error::Error;
use crate::machine::Machine;

/// What a job gave back: for `Open`, the pty's path and master.
pub type Opened = Option<(String, OwnedFd)>;

/// Runs `job` in `machine` (the host for `.host`) with `caller`'s rights. Blocks.
///
/// # Errors
/// `NotSupported` for VMs; `NoSuchUser`, `NoIpc` (no login prompt in the machine), or the
/// system's error.
pub fn run(machine: &Machine, job: Job, caller: &Identity) -> Result<Opened, Error> {
    let mut fds = Vec::new();
    let mut leader = None;
    let mut cgroup = None;
    match machine.class {
        MachineClass::Vm => return Err(Error::NotSupported),
        MachineClass::Host => {}
        MachineClass::Container => {
            fds.push(machine.leader.fd().try_clone().map_err(Error::System)?);
            leader = Some(0);
            if let Some(dir) = cgroup_of(machine.leader.pid()) {
                fds.push(dir);
                cgroup = Some(1);
            }
        }
    }
    let request = HelperRequest {
        job,
        caller: Caller {
            uid: caller.uid,
            gid: caller.gid,
            groups: caller.groups.clone(),
        },
        leader,
        cgroup,
    };
    let (reply, mut fds) = helper::run(&request, &fds).map_err(Error::System)?;
    match reply {
        HelperReply::Done { pty_path: None } => Ok(None),
        HelperReply::Done {
            pty_path: Some(path),
        } if fds.len() == 1 => Ok(fds.pop().map(|master| (path, master))),
        HelperReply::Done { .. } => Err(Error::System(std::io::Error::other(
            "the machine helper passed no pty",
        ))),
        HelperReply::Failed(HelperFailure::NoSuchUser) => Err(Error::NoSuchUser),
        HelperReply::Failed(HelperFailure::NoLogin) => Err(Error::NoIpc),
        HelperReply::Failed(HelperFailure::System { errno, doing }) => {
            let error = std::io::Error::from_raw_os_error(errno);
            tracing::debug!(machine = machine.name, %error, doing, "The machine helper failed");
            Err(Error::System(error))
        }
    }
}

/// The cgroup2 directory of the leader, for a session to be born in.
fn cgroup_of(pid: u32) -> Option<OwnedFd> {
    let mount = berth_os::cgroup2::mount()?;
    let path = berth_os::proc::cgroup_path(pid)?;
    let dir = mount.join(path.trim_start_matches('/'));
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(&dir, flags, Mode::empty()).ok()
}
