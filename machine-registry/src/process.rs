//! Processes: robust references through pidfds, and what `/proc` tells about them.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use berth_interfaces::machine::ProcessId;
use berth_service_runtime::sys;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

const PIDFS_MAGIC: i64 = 0x5049_4446;

/// A process pinned by a pidfd, so a recycled PID is never mistaken for it.
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
        let raw = i32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
        let pid_t = Pid::from_raw(raw).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let fd = pidfd_open(pid_t, PidfdFlags::empty())?;
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
        matches!(
            poll(&mut fds, Some(&rustix::time::Timespec::default())),
            Ok(0)
        )
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

    /// The wire form, with `pidfdId` and `bootId` when the pidfd ID is known.
    pub fn to_wire(&self, boot_id: &str) -> ProcessId {
        ProcessId {
            pid: self.pid,
            pidfd_id: self.id,
            boot_id: self.id.map(|_| boot_id.to_owned()),
        }
    }
}

/// The pidfs inode of `pidfd`; `None` on kernels without pidfs, where all pidfds share one.
fn pidfd_id(pidfd: &OwnedFd) -> Option<u64> {
    let on_pidfs = rustix::fs::fstatfs(pidfd).is_ok_and(|s| s.f_type == PIDFS_MAGIC);
    on_pidfs.then(|| sys::inode_of(pidfd).ok()).flatten()
}

/// This boot's ID as 32 lowercase hex digits.
///
/// # Errors
/// Reading `/proc/sys/kernel/random/boot_id` failed.
pub fn boot_id() -> io::Result<String> {
    Ok(fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .replace('-', ""))
}

/// The real UID of `pid` (first field of `Uid:` in `/proc/PID/status`).
///
/// # Errors
/// The process is gone or `/proc` is unreadable.
pub fn real_uid(pid: u32) -> io::Result<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

/// The parent PID of `pid`, from `/proc/PID/stat`.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

fn parse_stat_ppid(stat: &str) -> Option<u32> {
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The cgroup2 path of `pid` (the `0::` line of `/proc/PID/cgroup`).
pub fn cgroup_path(pid: u32) -> Option<String> {
    let cgroups = read_small(format!("/proc/{pid}/cgroup")).ok()?;
    cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Reads a small file of `/proc` or of the cgroup file system whole. Their sizes read as 0, so
/// `fs::read_to_string` would ask for the size and then read a few bytes at a time; this reads
/// into one page-sized buffer: open, read, read (the end), close.
///
/// # Errors
/// The file cannot be opened or read, or is not UTF-8.
pub fn read_small(path: impl AsRef<Path>) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut text = vec![0; 4096];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(2 * len, 0);
        }
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(read) => len += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    text.truncate(len);
    String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Whether `process` belongs to `uid`: its real UID is `uid`, or it lives in a user namespace
/// (or a descendant of one) that `uid` created.
///
/// # Errors
/// The process vanished while we looked at it.
pub fn is_owned_by(process: &ProcessRef, uid: u32) -> io::Result<bool> {
    let owned = real_uid(process.pid())? == uid || userns_owned_by(process.pid(), uid)?;
    // The facts came from /proc/PID; they are about our process only if it still runs.
    if !process.is_alive() {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(owned)
}

fn userns_owned_by(pid: u32, uid: u32) -> io::Result<bool> {
    let ours = fs::metadata("/proc/self/ns/user")?;
    let theirs = fs::File::open(format!("/proc/{pid}/ns/user"))?;
    let meta = theirs.metadata()?;
    if (meta.dev(), meta.ino()) == (ours.dev(), ours.ino()) {
        return Ok(false);
    }
    let mut ns = OwnedFd::from(theirs);
    loop {
        if sys::userns_owner_uid(ns.as_fd())? == uid {
            return Ok(true);
        }
        ns = match sys::userns_parent(ns.as_fd()) {
            Ok(parent) => parent,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(false),
            Err(e) => return Err(e),
        };
    }
}

/// Every live process and its parent, from one scan of `/proc`.
pub fn parent_map() -> HashMap<u32, u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_pid(pid)?)))
        .collect()
}

/// `root` and all its descendants, root first, from a parent map.
pub fn descendants(root: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, &ppid) in parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        if let Some(kids) = children.get(&tree[next]) {
            tree.extend(kids.iter().copied().filter(|&kid| kid != root));
        }
        next += 1;
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        assert_eq!(parse_stat_ppid("12 (a) b) c) S 7 12 12"), Some(7));
        assert_eq!(parse_stat_ppid("12 (sh) S 1 12"), Some(1));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn small_files_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(10_000);
        std::fs::write(dir.path().join("long"), &long).unwrap();
        assert_eq!(read_small(dir.path().join("long")).unwrap(), long);
        let status = read_small("/proc/self/status").unwrap();
        assert!(status.starts_with("Name:") && status.ends_with('\n'));
    }

    #[test]
    fn descendants_walk_the_whole_tree() {
        let parents = HashMap::from([(2, 1), (3, 2), (4, 2), (5, 4), (9, 8)]);
        let mut tree = descendants(2, &parents);
        tree.sort_unstable();
        assert_eq!(tree, [2, 3, 4, 5]);
    }

    #[test]
    fn our_own_process_is_pinned_alive_and_owned_by_us() {
        let me = ProcessRef::open(std::process::id()).unwrap();
        assert!(me.is_alive());
        assert!(me.id().is_some(), "this kernel has pidfs");
        let uid = rustix::process::getuid().as_raw();
        assert!(is_owned_by(&me, uid).unwrap());
        assert!(!is_owned_by(&me, uid + 1).unwrap());
        assert_eq!(boot_id().unwrap().len(), 32);
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
    }
}
