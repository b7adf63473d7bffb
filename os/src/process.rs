//! Processes pinned by pidfds (so a recycled PID is never mistaken for the process meant),
//! signalling them, and signalling or killing whole sets of processes that may fork meanwhile.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, pidfd_open, waitid};

use crate::{namespace, proc, sys};

/// `PIDFS_MAGIC`: pidfds live on pidfs (Linux ≥ 6.9), where each has an inode of its own.
const PIDFS_MAGIC: i64 = 0x5049_4446;

/// A process pinned by a pidfd.
#[derive(Debug, Clone)]
pub struct ProcessRef {
    pid: u32,
    fd: Arc<OwnedFd>,
    id: Option<u64>,
}

impl ProcessRef {
    /// Pins the process `pid`.
    ///
    /// # Errors
    /// `ESRCH` when there is no such process, `EINVAL` for PID 0.
    pub fn open(pid: u32) -> io::Result<Self> {
        let fd = pidfd_open(pid_t(pid)?, PidfdFlags::empty())?;
        Ok(Self::with_pid(pid, fd))
    }

    /// Wraps a pidfd someone handed us (e.g. `SO_PEERPIDFD`), reading its PID from fdinfo.
    ///
    /// # Errors
    /// `ESRCH` when the process has exited or is not visible in our PID namespace.
    pub fn from_pidfd(fd: OwnedFd) -> io::Result<Self> {
        let fdinfo = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
        let pid = fdinfo
            .lines()
            .find_map(|line| line.strip_prefix("Pid:"))
            .and_then(|value| value.trim().parse::<i64>().ok())
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|&pid| pid > 0)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
        Ok(Self::with_pid(pid, fd))
    }

    /// Pins the process behind `pidfd`, a peer's (`SO_PEERPIDFD`), whose PID the peer's
    /// credentials say is `pid`: when a pidfd opened for `pid` has the same pidfs ID, that is
    /// it (cheaper than reading fdinfo), else the PID comes from fdinfo.
    ///
    /// # Errors
    /// As [`ProcessRef::from_pidfd`].
    pub fn from_peer(pidfd: BorrowedFd<'_>, pid: Option<u32>) -> io::Result<Self> {
        let by_pid = pid.and_then(|pid| Self::open(pid).ok());
        if let Some(process) = by_pid
            && process.id().is_some()
            && process.id() == pidfd_id(pidfd)
        {
            return Ok(process);
        }
        Self::from_pidfd(pidfd.try_clone_to_owned()?)
    }

    fn with_pid(pid: u32, fd: OwnedFd) -> Self {
        let id = pidfd_id(&fd);
        Self {
            pid,
            fd: Arc::new(fd),
            id,
        }
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The pidfs inode number of the pidfd (`pidfdId`), unique for the boot.
    pub fn id(&self) -> Option<u64> {
        self.id
    }

    /// The pidfd, shared.
    pub fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    /// Whether the process has not exited yet.
    pub fn is_alive(&self) -> bool {
        let mut fds = [PollFd::new(&*self.fd, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&Timespec::default())), Ok(0))
    }

    /// Sends `signal` to the process.
    ///
    /// # Errors
    /// `ESRCH` once it has exited, `EPERM` without permission, `EINVAL` for a bad signal.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        sys::pidfd_send_signal(self.fd.as_fd(), signal)
    }

    /// Whether both refer to the same process.
    pub fn same_process(&self, other: &Self) -> bool {
        match (self.id, other.id) {
            (Some(a), Some(b)) => a == b,
            _ => self.pid == other.pid,
        }
    }

    /// Whether the process belongs to `uid`: its real UID is `uid`, or it lives in a user
    /// namespace (or a descendant of one) that `uid` created.
    ///
    /// # Errors
    /// The process vanished while we looked at it.
    pub fn is_owned_by(&self, uid: u32) -> io::Result<bool> {
        let owned = proc::real_uid(self.pid)? == uid || namespace::userns_owned_by(self.pid, uid)?;
        // The facts came from /proc/PID; they are about our process only if it still runs.
        if !self.is_alive() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(owned)
    }
}

/// The pidfs inode of `pidfd`; `None` on kernels without pidfs, where all pidfds share one.
pub fn pidfd_id(pidfd: impl AsFd) -> Option<u64> {
    // Whether pidfds live on pidfs is the kernel's, the same for every pidfd: asked once.
    static ON_PIDFS: OnceLock<bool> = OnceLock::new();
    let on_pidfs = *ON_PIDFS
        .get_or_init(|| rustix::fs::fstatfs(pidfd.as_fd()).is_ok_and(|s| s.f_type == PIDFS_MAGIC));
    on_pidfs.then(|| sys::inode_of(pidfd).ok()).flatten()
}

fn pid_t(pid: u32) -> io::Result<Pid> {
    let raw = i32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    Pid::from_raw(raw).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Sends `signal` to the process `pid` through a pidfd.
///
/// # Errors
/// `ESRCH` when it is gone, else the kernel's error.
pub fn signal_pid(pid: u32, signal: i32) -> io::Result<()> {
    let pidfd = pidfd_open(pid_t(pid)?, PidfdFlags::empty())?;
    sys::pidfd_send_signal(pidfd.as_fd(), signal)
}

/// Pidfds for those of `pids` that still exist.
pub fn pidfds(pids: Vec<u32>) -> impl Iterator<Item = OwnedFd> {
    pids.into_iter()
        .filter_map(|pid| pid_t(pid).ok())
        .filter_map(|pid| pidfd_open(pid, PidfdFlags::empty()).ok())
}

/// Waits until each process of `pidfds` has exited (a second at most each: meant for
/// processes that were SIGKILLed and are in their last steps of exiting).
pub fn wait_exited(pidfds: Vec<OwnedFd>) {
    let timeout = Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    for pidfd in pidfds {
        let fds = &mut [PollFd::new(&pidfd, PollFlags::IN)];
        let _ = poll(fds, Some(&timeout));
    }
}

/// Sends `signal` to every process `list` returns, again and again until a pass finds no
/// process it did not signal yet, so that processes forked meanwhile get it too (as
/// systemd's `cg_kill` does).
///
/// # Errors
/// `list` failed.
pub fn signal_until_none_new(
    mut list: impl FnMut() -> io::Result<Vec<u32>>,
    signal: i32,
) -> io::Result<()> {
    let mut done = HashSet::new();
    loop {
        let fresh: Vec<u32> = list()?.into_iter().filter(|p| !done.contains(p)).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        for pid in fresh {
            let _ = signal_pid(pid, signal);
            done.insert(pid);
        }
    }
}

/// catern/supervise's "filicide" for a child subreaper `me`: SIGKILL each child and wait for
/// it to die (without reaping it, so its PID stays ours), which reparents its own children to
/// us; repeat until a scan finds no child that was not killed yet. Afterwards every descendant
/// is a zombie waiting to be reaped.
pub fn kill_children(me: u32) {
    let mut killed = HashSet::new();
    loop {
        let fresh: Vec<u32> = proc::ProcessTree::scan()
            .children_of(me)
            .into_iter()
            .filter(|p| !killed.contains(p))
            .collect();
        if fresh.is_empty() {
            return;
        }
        for pid in fresh {
            let _ = signal_pid(pid, libc::SIGKILL);
            if let Ok(pid) = pid_t(pid) {
                let _ = waitid(
                    WaitId::Pid(pid),
                    WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
                );
            }
            killed.insert(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_pinned_alive_and_owned_by_us() {
        let me = ProcessRef::open(std::process::id()).unwrap();
        assert!(me.is_alive());
        assert!(me.id().is_some(), "this kernel has pidfs");
        let uid = rustix::process::getuid().as_raw();
        assert!(me.is_owned_by(uid).unwrap());
        assert!(!me.is_owned_by(uid + 1).unwrap());
        assert!(me.same_process(&ProcessRef::open(std::process::id()).unwrap()));
    }

    #[test]
    fn an_exited_process_is_seen_dead_through_its_pidfd() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pinned = ProcessRef::open(child.id()).unwrap();
        child.wait().unwrap();
        assert!(!pinned.is_alive());
        assert_eq!(
            ProcessRef::open(child.id()).unwrap_err().raw_os_error(),
            Some(libc::ESRCH)
        );
        assert_eq!(
            ProcessRef::open(0).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn a_pidfd_handed_over_tells_its_pid() {
        let fd = pidfd_open(rustix::process::getpid(), PidfdFlags::empty()).unwrap();
        let me = std::process::id();
        assert_eq!(
            ProcessRef::from_peer(fd.as_fd(), Some(me)).unwrap().pid(),
            me
        );
        assert_eq!(
            ProcessRef::from_peer(fd.as_fd(), Some(1)).unwrap().pid(),
            me
        );
        assert_eq!(ProcessRef::from_peer(fd.as_fd(), None).unwrap().pid(), me);
        assert_eq!(ProcessRef::from_pidfd(fd).unwrap().pid(), me);
    }

    #[test]
    fn signalling_reaches_every_listed_process() {
        let mut children: Vec<_> = (0..3)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("100")
                    .spawn()
                    .unwrap()
            })
            .collect();
        let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
        let exiting: Vec<OwnedFd> = pidfds(pids.clone()).collect();
        assert_eq!(exiting.len(), 3);
        signal_until_none_new(|| Ok(pids.clone()), libc::SIGKILL).unwrap();
        wait_exited(exiting);
        for child in &mut children {
            let status = child.wait().unwrap();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(9)
            );
        }
    }
}
