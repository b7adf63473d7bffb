//! The one module of Berth's services that may use `unsafe`: thin wrappers around the few
//! system calls that neither std nor rustix expose safely.
//!
//! Every function here validates its inputs, owns the resulting file descriptors through
//! `OwnedFd` right away, and documents its invariant in a `SAFETY:` comment.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
#[cfg(feature = "server")]
use std::sync::Arc;

#[cfg(feature = "server")]
use tokio::io::Interest;
#[cfg(feature = "server")]
use tokio::io::unix::AsyncFd;

/// The highest signal number Linux accepts (`_NSIG - 1`).
pub const SIGNAL_MAX: i32 = 64;

/// Takes ownership of a file descriptor inherited through socket activation.
///
/// Returns `None` when `raw` is not an open descriptor, so a wrong `LISTEN_FDS` cannot make us
/// adopt (and later close) something that is not there.
pub fn adopt_inherited_fd(raw: RawFd) -> Option<OwnedFd> {
    if raw < 0 || rustix::io::fcntl_getfd(borrow_raw_checked(raw)?).is_err() {
        return None;
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this process by the
    // service manager for it alone; sd-notify's `listen_fds` yields each one exactly once, so
    // nothing else in the process owns or closes it.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn borrow_raw_checked(raw: RawFd) -> Option<BorrowedFd<'static>> {
    // SAFETY: only used for the `fcntl(F_GETFD)` probe right above, which tolerates a closed
    // descriptor (EBADF) and does not outlive the call.
    (raw >= 0).then(|| unsafe { BorrowedFd::borrow_raw(raw) })
}

/// `SO_PEERCRED` of a connected AF_UNIX socket: `(pid, uid, gid)`, `pid` 0 when the peer is not
/// visible in our PID namespace.
///
/// (rustix decodes this into a non-zero `Pid`, which a PID of 0 from another PID namespace
/// would violate, so it is read here with a plain `ucred`.)
///
/// # Errors
/// The kernel's error, e.g. `ENOTCONN`.
pub fn peer_credentials(socket: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the kernel fills a ucred.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid, cred.gid))
}

/// The pidfd of the peer of a connected AF_UNIX socket (`SO_PEERPIDFD`, Linux ≥ 6.5).
///
/// # Errors
/// Fails with the kernel's error, e.g. `ENOPROTOOPT` on older kernels or when the peer is gone.
pub fn peer_pidfd(socket: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` and `len` are valid for writes of the sizes given; the kernel writes one int.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERPIDFD,
            (&raw mut fd).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: the kernel just created this descriptor for us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends signal `signal` (1…64) to the process behind `pidfd`.
///
/// # Errors
/// `EINVAL` for a signal outside 1…64, else the kernel's error (`ESRCH` once the process is gone).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    if !(1..=SIGNAL_MAX).contains(&signal) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: pidfd_send_signal(2) takes an fd, a signal number, a NULL siginfo and flags 0; it
    // touches no memory of ours. rustix only offers it for a `Signal` whose constructor for
    // arbitrary (real-time) numbers is itself unsafe, so the raw call is the narrower one.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// `_IO(0xb7, n)` from <linux/nsfs.h>: no direction, no size.
const NS_GET_PARENT: libc::c_ulong = 0xb7 << 8 | 0x2;
const NS_GET_OWNER_UID: libc::c_ulong = 0xb7 << 8 | 0x4;

/// The UID that created the user namespace `userns` (`NS_GET_OWNER_UID`).
///
/// # Errors
/// The kernel's error, e.g. `EINVAL` when `userns` is not a user namespace.
pub fn userns_owner_uid(userns: BorrowedFd<'_>) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer passed, which is valid for it.
    let rc = unsafe { libc::ioctl(userns.as_raw_fd(), NS_GET_OWNER_UID, &raw mut uid) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

/// The parent of the user namespace `userns` (`NS_GET_PARENT`).
///
/// # Errors
/// `EPERM` when the parent is outside our own namespace (we reached the top), else the
/// kernel's error.
pub fn userns_parent(userns: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: NS_GET_PARENT takes no argument and returns a new descriptor or -1.
    let fd = unsafe { libc::ioctl(userns.as_raw_fd(), NS_GET_PARENT) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created this descriptor for us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(feature = "server")]
/// Registers a descriptor we own with the tokio reactor, to await its readiness.
///
/// # Errors
/// The registration failed (e.g. the descriptor does not support epoll).
///
/// # Panics
/// Outside a tokio runtime.
pub fn async_fd(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the `OwnedFd` moves into the `AsyncFd`, so the descriptor stays open and refers
    // to the same file description for the `AsyncFd`'s whole life, and `as_raw_fd` never changes.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

#[cfg(feature = "server")]
/// Like [`async_fd`] for a descriptor shared through an `Arc` (e.g. a pidfd that a machine
/// keeps for signalling while a task watches it).
///
/// # Errors
/// As [`async_fd`].
///
/// # Panics
/// Outside a tokio runtime.
pub fn async_shared_fd(fd: Arc<OwnedFd>, interest: Interest) -> io::Result<AsyncFd<Arc<OwnedFd>>> {
    // SAFETY: the `AsyncFd` holds one strong reference to the `OwnedFd`, which therefore stays
    // open (and the same description) as long as the `AsyncFd` lives; `as_raw_fd` of an `Arc`
    // forwards to the one `OwnedFd` and never changes.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

/// The inode number identifying `fd` (for a pidfd on pidfs: the 64-bit process ID, `pidfdId`).
///
/// # Errors
/// The error of `fstat`.
pub fn inode_of(fd: impl AsFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopting_a_closed_descriptor_is_refused() {
        assert!(adopt_inherited_fd(-1).is_none());
        assert!(adopt_inherited_fd(999_999).is_none());
    }

    #[test]
    fn signals_out_of_range_are_refused_before_any_syscall() {
        let me = rustix::process::pidfd_open(
            rustix::process::getpid(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        for bad in [0, -1, 65] {
            let err = pidfd_send_signal(me.as_fd(), bad).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        }
        pidfd_send_signal(me.as_fd(), libc::SIGWINCH).unwrap(); // ignored by default
    }

    #[test]
    fn our_own_user_namespace_has_an_owner() {
        let ns = std::fs::File::open("/proc/self/ns/user").unwrap();
        // In the initial namespace the owner is 0; inside a test container it is whoever made it.
        userns_owner_uid(ns.as_fd()).unwrap();
    }
}
