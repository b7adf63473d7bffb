//! Becoming the caller, and entering a machine: its namespaces (through the leader's pidfd,
//! only those that differ from ours, all at once) and its root directory.

use std::os::fd::{AsFd, OwnedFd};

use berth_interfaces::helper::Caller;
use berth_os::namespace::{self, Kind};
use berth_os::process::ProcessRef;
use berth_os::root::Root;
use rustix::process::{Gid, Uid};
use rustix::thread::ThreadNameSpaceType as Ns;

use crate::Failure;

/// How far into the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace, then its root (a terminal, a shell).
    Everything,
    /// Its mount namespace only, keeping our rights and root (a bind mount).
    MountOnly,
}

/// Takes on `caller`'s IDs, unless we are them already or they are root. The helper is
/// single-threaded, so the thread's credentials are the process's.
///
/// # Errors
/// The kernel refused.
pub fn become_caller(caller: &Caller) -> Result<(), Failure> {
    let me = rustix::process::geteuid().as_raw();
    if caller.uid == 0 || caller.uid == me {
        return Ok(());
    }
    let groups: Vec<Gid> = caller.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    let gid = Gid::from_raw(caller.gid);
    let uid = Uid::from_raw(caller.uid);
    rustix::thread::set_thread_groups(&groups)
        .and_then(|()| rustix::thread::set_thread_res_gid(gid, gid, gid))
        .and_then(|()| rustix::thread::set_thread_res_uid(uid, uid, uid))
        .map_err(|e| Failure::system("becoming the caller", e))
}

/// Becomes root of the user namespace just entered: what we create there (a pty, a mount
/// point) must belong to an ID it maps, and our own host IDs are not mapped in it. Groups
/// are dropped too where the namespace allows `setgroups` (a rootless one may not).
fn become_its_root() -> Result<(), Failure> {
    let _ = rustix::thread::set_thread_groups(&[]);
    let (gid, uid) = (Gid::from_raw(0), Uid::from_raw(0));
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .and_then(|()| rustix::thread::set_thread_res_uid(uid, uid, uid))
        .map_err(|e| Failure::system("becoming root of its user namespace", e))
}

/// The namespace kinds and their `setns` flags, user first (its rights allow the others).
const KINDS: [(Kind, Ns); 7] = [
    (Kind::User, Ns::USER),
    (Kind::Mount, Ns::MOUNT),
    (Kind::Pid, Ns::PROCESS_ID),
    (Kind::Net, Ns::NETWORK),
    (Kind::Uts, Ns::HOST_NAME_AND_NIS_DOMAIN_NAME),
    (Kind::Ipc, Ns::INTER_PROCESS_COMMUNICATION),
    (Kind::Cgroup, Ns::CONTROL_GROUP),
];

/// Enters the machine whose leader is `leader` (none: the host, nothing to enter) as far as
/// `scope` says, and returns its root, opened before any namespace changed. With
/// [`Scope::Everything`] the root becomes ours too (`chroot`).
///
/// # Errors
/// The leader is gone, or the kernel refused (`EPERM` when the caller may not).
pub fn machine(leader: Option<&OwnedFd>, scope: Scope) -> Result<Option<Root>, Failure> {
    let Some(pidfd) = leader else {
        return Ok(None);
    };
    let process = pidfd
        .try_clone()
        .and_then(ProcessRef::from_pidfd)
        .map_err(|e| Failure::system("pinning the leader", e))?;
    let root = Root::of_process(&process).map_err(|e| Failure::system("opening its root", e))?;
    let mut flags = Ns::empty();
    for (kind, flag) in KINDS {
        if scope == Scope::MountOnly && kind != Kind::Mount {
            continue;
        }
        let theirs = namespace::open(Some(process.pid()), kind)
            .map_err(|e| Failure::system("looking at its namespaces", e))?;
        if !namespace::is_ours(&theirs, kind).unwrap_or(false) {
            flags |= flag;
        }
    }
    if !flags.is_empty() {
        rustix::thread::move_into_thread_name_spaces(pidfd.as_fd(), flags)
            .map_err(|e| Failure::system("entering its namespaces", e))?;
    }
    if flags.contains(Ns::USER) {
        become_its_root()?;
    }
    if scope == Scope::Everything {
        let dir = root
            .open_directory("/")
            .map_err(|e| Failure::system("opening its root", e))?;
        rustix::process::fchdir(&dir)
            .and_then(|()| rustix::process::chroot("."))
            .and_then(|()| rustix::process::chdir("/"))
            .map_err(|e| Failure::system("entering its root", e))?;
    }
    Ok(Some(root))
}
