//! File attributes and locks that image pools use: the immutable flag (`chattr +i`) and
//! `flock(2)` lock files as systemd-nspawn takes them.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FlockOperation, IFlags, Mode, OFlags};

/// Sets or clears the immutable flag of the open file or directory `fd`.
///
/// # Errors
/// `ENOTTY`/`EOPNOTSUPP` where the file system has no such flag, `EPERM` without
/// `CAP_LINUX_IMMUTABLE`.
pub fn set_immutable(fd: impl AsFd, immutable: bool) -> io::Result<()> {
    let flags = rustix::fs::ioctl_getflags(&fd)?;
    let wanted = if immutable {
        flags | IFlags::IMMUTABLE
    } else {
        flags - IFlags::IMMUTABLE
    };
    if wanted != flags {
        rustix::fs::ioctl_setflags(&fd, wanted)?;
    }
    Ok(())
}

/// A held `flock(2)` lock on a lock file; released when dropped.
#[derive(Debug)]
pub struct LockFile(#[allow(dead_code)] OwnedFd);

/// Takes an exclusive lock on the lock file `path` (made if missing, mode 0600), without
/// waiting.
///
/// # Errors
/// `EWOULDBLOCK` when someone holds it, or the kernel's error opening it.
pub fn lock_exclusive(path: &Path) -> io::Result<LockFile> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))?;
    rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive)?;
    Ok(LockFile(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_to_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lck");
        let held = lock_exclusive(&path).unwrap();
        let error = lock_exclusive(&path).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EWOULDBLOCK));
        drop(held);
        lock_exclusive(&path).unwrap();
    }
}
