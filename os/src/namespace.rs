//! Namespaces of processes: opening them, telling whether a process shares ours, and who owns
//! a user namespace.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::sys;

/// A kind of namespace, named as in `/proc/PID/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `user`.
    User,
    /// `net`.
    Net,
    /// `mnt`.
    Mount,
    /// `pid`.
    Pid,
    /// `uts`.
    Uts,
    /// `ipc`.
    Ipc,
    /// `cgroup`.
    Cgroup,
}

impl Kind {
    /// Its file name in `/proc/PID/ns/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Net => "net",
            Self::Mount => "mnt",
            Self::Pid => "pid",
            Self::Uts => "uts",
            Self::Ipc => "ipc",
            Self::Cgroup => "cgroup",
        }
    }
}

/// Opens the namespace `kind` of `pid` (`None`: our own).
///
/// # Errors
/// The process is gone, or we may not look at its namespaces.
pub fn open(pid: Option<u32>, kind: Kind) -> io::Result<File> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/ns/{}", kind.file_name()),
        None => format!("/proc/self/ns/{}", kind.file_name()),
    };
    File::open(path)
}

/// Whether `namespace` (opened with [`open`]) is our own namespace of its kind.
///
/// # Errors
/// Our own namespace cannot be looked at.
pub fn is_ours(namespace: &File, kind: Kind) -> io::Result<bool> {
    let ours = std::fs::metadata(format!("/proc/self/ns/{}", kind.file_name()))?;
    let theirs = namespace.metadata()?;
    Ok((ours.dev(), ours.ino()) == (theirs.dev(), theirs.ino()))
}

/// Whether `pid` lives in a user namespace (or a descendant of one) that `uid` created. A
/// process in our own user namespace does not.
///
/// # Errors
/// The process is gone, or its namespaces cannot be looked at.
pub fn userns_owned_by(pid: u32, uid: u32) -> io::Result<bool> {
    let theirs = open(Some(pid), Kind::User)?;
    if is_ours(&theirs, Kind::User)? {
        return Ok(false);
    }
    let mut namespace = OwnedFd::from(theirs);
    loop {
        if sys::userns_owner_uid(namespace.as_fd())? == uid {
            return Ok(true);
        }
        namespace = match sys::userns_parent(namespace.as_fd()) {
            Ok(parent) => parent,
            // The parent is outside our own namespace: we reached the top.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(false),
            Err(e) => return Err(e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_namespaces_are_ours() {
        let me = std::process::id();
        for kind in [Kind::User, Kind::Net, Kind::Mount, Kind::Pid] {
            let namespace = open(Some(me), kind).unwrap();
            assert!(is_ours(&namespace, kind).unwrap(), "{kind:?}");
        }
        let net = open(None, Kind::Net).unwrap();
        assert!(!is_ours(&net, Kind::User).unwrap());
        assert!(!userns_owned_by(me, rustix::process::getuid().as_raw()).unwrap());
    }
}
