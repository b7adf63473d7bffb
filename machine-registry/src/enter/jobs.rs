//! `Open`, `BindMount`, `CopyFrom` and `CopyTo`: jobs for the machine helper, which enters
//! the machine (or, for copies, resolves paths inside its root) with the caller's rights.

use std::os::fd::OwnedFd;
use std::time::Duration;

use berth_interfaces::helper::{Caller, HelperFailure, HelperReply, HelperRequest, Job};
use berth_interfaces::machine::MachineClass;
use berth_os::identity::Identity;
use rustix::fs::{Mode, OFlags};

use super::helper;
use crate::error::Error;
use crate::machine::Machine;

/// What a job gave back: for `Open`, the pty's path and master.
pub type Opened = Option<(String, OwnedFd)>;

/// How long a job other than a copy may take (a few system calls, one program started).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `job` in `machine` (the host for `.host`) with `caller`'s rights. Dropping the
/// future cancels the job.
///
/// # Errors
/// `NotSupported` for VMs; `NoSuchUser`, `NoIpc` (no login prompt in the machine), or the
/// system's error (`ETIMEDOUT` for a job other than a copy that takes too long).
pub async fn run(machine: &Machine, job: Job, caller: &Identity) -> Result<Opened, Error> {
    let (request, fds) = request_for(machine, job, caller)?;
    give(&request, &fds, &machine.name).await
}

/// Runs `job` on the host, in no machine (a change to the image pool).
///
/// # Errors
/// The system's error.
pub async fn run_on_host(job: Job, caller: &Identity) -> Result<(), Error> {
    let request = HelperRequest {
        job,
        caller: caller_of(caller),
        leader: None,
        cgroup: None,
    };
    give(&request, &[], "").await.map(drop)
}

fn caller_of(caller: &Identity) -> Caller {
    Caller {
        uid: caller.uid,
        gid: caller.gid,
        groups: caller.groups.clone(),
    }
}

fn request_for(
    machine: &Machine,
    job: Job,
    caller: &Identity,
) -> Result<(HelperRequest, Vec<OwnedFd>), Error> {
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
        caller: caller_of(caller),
        leader,
        cgroup,
    };
    Ok((request, fds))
}

/// Gives `request` to a helper and turns its answer into ours.
async fn give(request: &HelperRequest, fds: &[OwnedFd], machine: &str) -> Result<Opened, Error> {
    let running = helper::run(request, fds);
    let long = matches!(request.job, Job::Copy { .. } | Job::Image { .. });
    let answer = if long {
        running.await
    } else {
        tokio::time::timeout(TIMEOUT, running)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::from_raw_os_error(libc::ETIMEDOUT)))
    };
    let (reply, mut fds) = answer.map_err(Error::System)?;
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
            tracing::debug!(machine, %error, doing, "The machine helper failed");
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
