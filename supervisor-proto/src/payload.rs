//! One boot of the payload: started held at its gate in its own cgroup leaf, with a pidfd.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_os::sys::{self, ExecImage, Gate};

use crate::cgroup::Leaf;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// The exit code a shell would report: the code, or 128 plus the signal.
    pub fn code(self) -> u8 {
        match self {
            Self::Exited(code) => (code & 0xff) as u8,
            Self::Signaled(signal) => (128 + (signal & 0x7f)) as u8,
        }
    }

    /// As event data: `{"exitCode": N}` or `{"signal": N}`, plus the shell's `status`.
    pub fn to_json(self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        match self {
            Self::Exited(code) => map.insert("exitCode".into(), code.into()),
            Self::Signaled(signal) => map.insert("signal".into(), signal.into()),
        };
        map.insert("status".into(), self.code().into());
        map
    }
}

/// The running payload of one boot.
#[derive(Debug)]
pub struct Payload {
    /// Its PID.
    pub pid: u32,
    /// Its pidfd (from birth).
    pub pidfd: OwnedFd,
    /// The pidfs inode of the pidfd (`pidfdId` in a `ProcessId`).
    pub pidfd_id: u64,
    /// Its cgroup, if it has one.
    pub leaf: Option<Leaf>,
    /// How it ended, once it did and was reaped.
    pub status: Option<ExitStatus>,
}

impl Payload {
    /// Starts `argv` (`program` resolved) held at its gate, in `leaf` if given; its standard
    /// input is `stdin` if given, else ours.
    ///
    /// # Errors
    /// The clone failed; with a leaf, the caller may retry without.
    pub fn spawn(
        program: &std::path::Path,
        argv: &[OsString],
        leaf: Option<Leaf>,
        stdin: Option<BorrowedFd<'_>>,
    ) -> Result<(Self, Gate), (io::Error, Option<Leaf>)> {
        let env: Vec<OsString> = std::env::vars_os()
            .map(|(key, value)| {
                let mut pair = key;
                pair.push("=");
                pair.push(value);
                pair
            })
            .collect();
        let image = match ExecImage::new(program.as_os_str(), argv, &env) {
            Ok(image) => image,
            Err(e) => return Err((e, leaf)),
        };
        let spawned = match sys::spawn_gated(&image, leaf.as_ref().map(Leaf::dir_fd), stdin) {
            Ok(spawned) => spawned,
            Err(e) => return Err((e, leaf)),
        };
        let pidfd_id = sys::inode_of(spawned.pidfd.as_fd()).unwrap_or(0);
        let payload = Self {
            pid: spawned.pid as u32,
            pidfd: spawned.pidfd,
            pidfd_id,
            leaf,
            status: None,
        };
        Ok((payload, spawned.gate))
    }

    /// Whether it still runs (or is an unreaped zombie).
    pub fn is_alive(&self) -> bool {
        self.status.is_none()
    }

    /// Sends `signal` to the payload's top process.
    ///
    /// # Errors
    /// `ESRCH` once it has been reaped.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_fd(), signal)
    }
}
