//! The one module of Berth's OS layer (and of its services) that may use `unsafe`: thin wrappers around the few
//! system calls that neither std nor rustix expose safely.
//!
//! Every function here validates its inputs, owns the resulting file descriptors through
//! `OwnedFd` right away, and documents its invariant in a `SAFETY:` comment.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
#[cfg(feature = "tokio")]
use std::sync::Arc;

#[cfg(feature = "tokio")]
use tokio::io::Interest;
#[cfg(feature = "tokio")]
use tokio::io::unix::AsyncFd;

use crate::signal::SIGNAL_MAX;

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

/// The supplementary groups of the peer of a connected AF_UNIX socket (`SO_PEERGROUPS`), as
/// they were when it connected.
///
/// # Errors
/// The kernel's error, e.g. `ENOTCONN`.
pub fn peer_groups(socket: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is valid for writes of `len` bytes; on ERANGE the kernel writes
        // nothing but the size it needs into `len`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ERANGE) || count <= groups.len() {
            return Err(error);
        }
        groups.resize(count, 0);
    }
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

/// Takes or drops (see [`OfdLock`]) an open file description lock on the whole of `file`
/// (`F_OFD_SETLK`, or `F_OFD_SETLKW` when `wait`).
///
/// Unlike a classic `fcntl` lock it belongs to the open file, not the process: closing another
/// descriptor of the same file does not drop it, and it conflicts with every other open file of
/// the same inode, also within this process. A write lock needs `file` open for writing.
///
/// # Errors
/// `EAGAIN` (or `EACCES`) without `wait` when another open file holds a conflicting lock,
/// `EBADF` when `file` is not open for the access the lock needs, else the kernel's error.
pub fn ofd_lock(file: BorrowedFd<'_>, lock: OfdLock, wait: bool) -> io::Result<()> {
    let kind = match lock {
        OfdLock::Read => libc::F_RDLCK,
        OfdLock::Write => libc::F_WRLCK,
        OfdLock::Unlock => libc::F_UNLCK,
    };
    let command = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    // SAFETY: all-zero is a valid `struct flock` (l_start 0, l_len 0: the whole file; l_pid 0,
    // which F_OFD_* requires).
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = kind as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: F_OFD_SETLK[W] reads one `struct flock` from the pointer, valid for the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), command, &raw const request) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What [`ofd_lock`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfdLock {
    /// A shared lock.
    Read,
    /// An exclusive lock.
    Write,
    /// Drops the lock this open file holds.
    Unlock,
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

#[cfg(feature = "tokio")]
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

#[cfg(feature = "tokio")]
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

fn signal_set(signals: &[i32]) -> io::Result<libc::sigset_t> {
    // SAFETY: an all-zero `sigset_t` is a valid value (glibc's is a plain bit array), and
    // sigemptyset/sigaddset only write inside the set they are given.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigemptyset(&mut set) };
    for &signal in signals {
        // SAFETY: as above; an invalid signal number is reported as -1/EINVAL.
        if unsafe { libc::sigaddset(&mut set, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(set)
}

/// Blocks `signals` for the calling thread (`sigprocmask(SIG_BLOCK)`), so that they queue for
/// a [`signal_fd`] instead of running their default action.
///
/// # Errors
/// `EINVAL` for a number that is not a signal.
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = signal_set(signals)?;
    // SAFETY: `set` is a valid, initialized signal set; the old mask is not asked for.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking, close-on-exec `signalfd` for `signals` (which must be blocked, see
/// [`block_signals`]); read it with [`read_signal`].
///
/// # Errors
/// The kernel's error (`EINVAL`, `EMFILE`, …).
pub fn signal_fd(signals: &[i32]) -> io::Result<OwnedFd> {
    let set = signal_set(signals)?;
    // SAFETY: `set` is a valid signal set; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created this descriptor for us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The number of the next pending signal of a [`signal_fd`], `None` when none is pending.
///
/// # Errors
/// The read failed.
pub fn read_signal(signal_fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    // One `struct signalfd_siginfo` is 128 bytes; `ssi_signo` is its first u32.
    let mut record = [0u8; 128];
    match rustix::io::read(signal_fd, &mut record) {
        Ok(128) => {
            let signo = u32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
            Ok(i32::try_from(signo).ok())
        }
        Ok(_) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Gives `signal` its default action (`SIG_DFL`), e.g. to undo a `SIG_IGN` for `SIGCHLD`
/// inherited from the parent, which would make the kernel reap children behind our back.
///
/// # Errors
/// `EINVAL` for a number that is not a signal or cannot be caught.
pub fn default_signal_action(signal: i32) -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` with `sa_sigaction = SIG_DFL` (0) is a valid request.
    let action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `action` is valid for reads; the old action is not asked for.
    if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the heap's free memory back to the system (`malloc_trim(0)`): glibc keeps freed
/// memory in its arenas, so after a burst of large or many allocations a long-running service
/// would otherwise stay at its peak size.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only rearranges glibc's own free lists and returns unused pages; it
    // takes the arena locks itself and touches no memory the program holds.
    unsafe { libc::malloc_trim(0) };
}

/// What a payload runs, converted to C strings before any process is cloned, so that the
/// clone only makes system calls.
#[derive(Debug, Clone)]
pub struct ExecImage {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

impl ExecImage {
    /// `program` (a path; no `PATH` search happens) with `argv` (including `argv[0]`) and the
    /// environment `env` (`KEY=VALUE` each).
    ///
    /// # Errors
    /// `InvalidInput` when a string contains a NUL byte.
    pub fn new(program: &OsStr, argv: &[OsString], env: &[OsString]) -> io::Result<Self> {
        let c = |s: &OsStr| {
            CString::new(s.as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        };
        Ok(Self {
            program: c(program)?,
            argv: argv.iter().map(|a| c(a)).collect::<io::Result<_>>()?,
            env: env.iter().map(|e| c(e)).collect::<io::Result<_>>()?,
        })
    }
}

/// The parent's end of a spawned payload's gate: the payload waits before `execve` until
/// [`Gate::open`]; dropping the gate instead makes it exit with status 127 without running.
#[derive(Debug)]
pub struct Gate(OwnedFd);

impl Gate {
    /// Lets the payload go on to `execve`.
    ///
    /// # Errors
    /// The payload is gone (`EPIPE`).
    pub fn open(self) -> io::Result<()> {
        rustix::io::write(&self.0, b"g")?;
        Ok(())
    }
}

/// A payload started by [`spawn_gated`], waiting at its gate.
#[derive(Debug)]
pub struct Spawned {
    /// Its PID.
    pub pid: i32,
    /// A pidfd for it, made atomically with the process (`CLONE_PIDFD`).
    pub pidfd: OwnedFd,
    /// Opens the way to `execve`.
    pub gate: Gate,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`, Linux ≥ 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The raw pieces the child needs, all prepared in the parent.
struct ChildPlan {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    gate_read: RawFd,
    gate_write: RawFd,
    stdin: RawFd,
    parent: libc::pid_t,
}

/// Starts `image` as a child process with `clone3(CLONE_PIDFD[|CLONE_INTO_CGROUP])`: born in
/// the cgroup2 directory `cgroup` (an `O_PATH` descriptor) when given, with a pidfd from
/// birth. Before `execve` the child sets `PR_SET_PDEATHSIG(SIGKILL)`, resets every signal
/// to its default action and unblocks all signals, starts a new session, puts `stdin` (if
/// given) on descriptor 0, and waits for its [`Gate`].
///
/// The caller must reap the child (`waitid`/`waitpid`) and should be single-threaded (the
/// death signal follows the creating thread).
///
/// # Errors
/// The pipe or clone3 failed: `EACCES`/`EBUSY`/… when the cgroup cannot take the child,
/// `ENOSYS`/`E2BIG` on kernels without clone3 or `CLONE_INTO_CGROUP`.
pub fn spawn_gated(
    image: &ExecImage,
    cgroup: Option<BorrowedFd<'_>>,
    stdin: Option<BorrowedFd<'_>>,
) -> io::Result<Spawned> {
    let argv = null_terminated(&image.argv);
    let envp = null_terminated(&image.env);
    let (gate_read, gate_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let plan = ChildPlan {
        program: image.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        gate_read: gate_read.as_raw_fd(),
        gate_write: gate_write.as_raw_fd(),
        stdin: stdin.map_or(-1, |fd| fd.as_raw_fd()),
        // SAFETY: getpid(2) cannot fail and touches no memory.
        parent: unsafe { libc::getpid() },
    };
    match clone_process(cgroup)? {
        Cloned::Child => child_after_clone(&plan),
        Cloned::Parent { pid, pidfd } => {
            drop(gate_read);
            Ok(Spawned {
                pid,
                pidfd,
                gate: Gate(gate_write),
            })
        }
    }
}

/// Which side of [`clone_process`] we are on.
enum Cloned {
    /// The new process: it must only make system calls, then `execve` or `_exit`.
    Child,
    /// The creator, with the child's PID and pidfd.
    Parent { pid: i32, pidfd: OwnedFd },
}

/// `clone3(CLONE_PIDFD[|CLONE_INTO_CGROUP])`, as `fork` with a pidfd from birth.
fn clone_process(cgroup: Option<BorrowedFd<'_>>) -> io::Result<Cloned> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: CLONE_PIDFD | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: (&raw mut pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM gives the child a copy of our memory, as fork does;
    // every caller runs in the child only a function that makes raw system calls on data it
    // prepared before (still alive in the copy) and never returns. `args` is valid for the
    // size passed, and the kernel writes the pidfd through the pointer it holds.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw mut args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        0 => Ok(Cloned::Child),
        rc if rc < 0 => Err(io::Error::last_os_error()),
        pid => Ok(Cloned::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor that we alone own.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Who a session runs as.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// Its UID.
    pub uid: u32,
    /// Its GID.
    pub gid: u32,
    /// Its supplementary groups.
    pub groups: Vec<u32>,
    /// Its working directory (`/` when it cannot be entered).
    pub home: CString,
}

/// Starts `image` as the leader of a new session on the terminal `tty` (its controlling
/// terminal and standard input, output and error), as `user`, born in the cgroup2 directory
/// `cgroup` when given. Unlike [`spawn_gated`] the child outlives us (no death signal): it
/// is a login session. Returns its PID once it has executed `image`.
///
/// # Errors
/// The clone failed, or the child could not become `user` or execute `image` (its errno).
pub fn spawn_session(
    image: &ExecImage,
    tty: BorrowedFd<'_>,
    user: &SessionUser,
    cgroup: Option<BorrowedFd<'_>>,
) -> io::Result<i32> {
    let argv = null_terminated(&image.argv);
    let envp = null_terminated(&image.env);
    let groups: Vec<libc::gid_t> = user.groups.clone();
    // The child writes its errno here if it fails; end of file means it executed.
    let (report_read, report_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let plan = SessionPlan {
        program: image.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        tty: tty.as_raw_fd(),
        uid: user.uid,
        gid: user.gid,
        groups: groups.as_ptr(),
        group_count: groups.len(),
        home: user.home.as_ptr(),
        report: report_write.as_raw_fd(),
    };
    let pid = match clone_process(cgroup)? {
        Cloned::Child => session_child_after_clone(&plan),
        Cloned::Parent { pid, .. } => pid,
    };
    drop(report_write);
    let mut errno = [0u8; 4];
    match rustix::io::retry_on_intr(|| rustix::io::read(&report_read, &mut errno))? {
        0 => Ok(pid),
        _ => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))),
    }
}

/// What [`session_child_after_clone`] needs, prepared in the parent.
struct SessionPlan {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    tty: RawFd,
    uid: u32,
    gid: u32,
    groups: *const libc::gid_t,
    group_count: usize,
    home: *const libc::c_char,
    report: RawFd,
}

/// The session's child between clone3 and execve: system calls only.
fn session_child_after_clone(plan: &SessionPlan) -> ! {
    // SAFETY: as in `child_after_clone`: async-signal-safe system calls on descriptors and C
    // strings of `plan`, valid in this copy of the parent's memory; ends in execve or _exit.
    unsafe {
        let fail = |report: RawFd| -> ! {
            let errno = (*libc::__errno_location()).to_ne_bytes();
            libc::write(report, errno.as_ptr().cast(), errno.len());
            libc::_exit(127)
        };
        reset_signals();
        if libc::setsid() < 0 || libc::ioctl(plan.tty, libc::TIOCSCTTY, 0) < 0 {
            fail(plan.report);
        }
        for target in 0..3 {
            if libc::dup2(plan.tty, target) < 0 {
                fail(plan.report);
            }
        }
        // A user namespace made without privileges denies setgroups: then no groups are
        // wanted and none are held that the namespace's creator did not have.
        let groups_denied = || *libc::__errno_location() == libc::EPERM && plan.group_count == 0;
        if (libc::setgroups(plan.group_count, plan.groups) < 0 && !groups_denied())
            || libc::setresgid(plan.gid, plan.gid, plan.gid) < 0
            || libc::setresuid(plan.uid, plan.uid, plan.uid) < 0
        {
            fail(plan.report);
        }
        if libc::chdir(plan.home) < 0 {
            libc::chdir(c"/".as_ptr());
        }
        libc::execve(plan.program, plan.argv, plan.envp);
        fail(plan.report)
    }
}

/// Makes the detached mount tree `tree` (from `open_tree(OPEN_TREE_CLONE)`) read-only,
/// recursively (`mount_setattr(MOUNT_ATTR_RDONLY)`), before it is attached anywhere.
///
/// # Errors
/// The kernel's error.
pub fn make_mount_tree_read_only(tree: BorrowedFd<'_>) -> io::Result<()> {
    /// `struct mount_attr` of mount_setattr(2).
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `attr` (valid for its size) and the empty C string; `tree`
    // is a live descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Puts every signal back to its default action and unblocks them all, as a new program
/// expects to find them.
///
/// # Safety
/// Only for a freshly cloned child before `execve`: it changes process-wide signal state.
unsafe fn reset_signals() {
    // SAFETY: sigaction and sigprocmask with valid, zeroed structures; the caller is a child
    // that only makes system calls until it executes or exits.
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        for signal in 1..=SIGNAL_MAX {
            libc::sigaction(signal, &default, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// The child between clone3 and execve: system calls only (no allocation, no locks).
fn child_after_clone(plan: &ChildPlan) -> ! {
    const FAILED: &[u8] = b"supervise: cannot execute the payload\n";
    // SAFETY: every call below is an async-signal-safe system call on descriptors and C
    // strings the parent prepared (`plan`), valid in this copy of its memory; the child ends
    // in execve or _exit and never returns into Rust code that could unwind or allocate.
    unsafe {
        libc::close(plan.gate_write);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != plan.parent
        {
            libc::_exit(127);
        }
        reset_signals();
        libc::setsid();
        if plan.stdin >= 0 && libc::dup2(plan.stdin, 0) < 0 {
            libc::_exit(127);
        }
        let mut byte = 0u8;
        loop {
            match libc::read(plan.gate_read, (&raw mut byte).cast(), 1) {
                1 => break,
                n if n < 0 && *libc::__errno_location() == libc::EINTR => {}
                _ => libc::_exit(127),
            }
        }
        libc::execve(plan.program, plan.argv, plan.envp);
        libc::write(2, FAILED.as_ptr().cast(), FAILED.len());
        libc::_exit(127)
    }
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

    fn wait_status(pid: i32) -> rustix::process::WaitStatus {
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        let (_, status) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        status
    }

    fn image(script: &str) -> ExecImage {
        let argv = ["sh".into(), "-c".into(), script.into()];
        ExecImage::new(OsStr::new("/bin/sh"), &argv, &[]).unwrap()
    }

    #[test]
    fn a_gated_payload_runs_only_once_its_gate_opens() {
        let spawned = spawn_gated(&image("exit 7"), None, None).unwrap();
        let fds = &mut [rustix::event::PollFd::new(
            &spawned.pidfd,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec::default();
        assert_eq!(
            rustix::event::poll(fds, Some(&zero)).unwrap(),
            0,
            "ran early"
        );
        spawned.gate.open().unwrap();
        assert_eq!(wait_status(spawned.pid).exit_status(), Some(7));
    }

    #[test]
    fn a_dropped_gate_ends_the_payload_unrun_and_signals_are_reset() {
        let spawned = spawn_gated(&image("exit 0"), None, None).unwrap();
        drop(spawned.gate);
        assert_eq!(wait_status(spawned.pid).exit_status(), Some(127));

        // SIGPIPE, ignored by the Rust runtime, is back to its default in the payload.
        let spawned = spawn_gated(&image("kill -PIPE $$; exit 0"), None, None).unwrap();
        spawned.gate.open().unwrap();
        assert_eq!(
            wait_status(spawned.pid).terminating_signal(),
            Some(libc::SIGPIPE)
        );
    }

    #[test]
    fn strings_with_nul_bytes_are_refused() {
        let err = ExecImage::new(OsStr::new("/bin/\0sh"), &[], &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_blocked_signal_is_read_from_its_signalfd() {
        // SIGWINCH: ignored by default, so a stray delivery in another test cannot hurt.
        block_signals(&[libc::SIGWINCH]).unwrap();
        let fd = signal_fd(&[libc::SIGWINCH]).unwrap();
        assert_eq!(read_signal(fd.as_fd()).unwrap(), None);
        // SAFETY: raise(3) only queues a signal for this thread, which blocks it.
        unsafe { libc::raise(libc::SIGWINCH) };
        assert_eq!(read_signal(fd.as_fd()).unwrap(), Some(libc::SIGWINCH));
        default_signal_action(libc::SIGCHLD).unwrap();
    }
}
