//! Who is on the other end of a connection.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use berth_os::identity::Identity;
use berth_os::process::ProcessRef;
use berth_os::sys;

/// The credentials of a connected client, taken when the connection was accepted.
#[derive(Debug)]
pub struct Peer {
    /// Effective UID of the client when it connected.
    pub uid: u32,
    /// Effective GID of the client when it connected.
    pub gid: u32,
    /// Supplementary groups of the client when it connected.
    pub groups: Vec<u32>,
    /// PID of the client in our PID namespace (`None` when it is not visible from here).
    pub pid: Option<u32>,
    /// A pidfd of the client process (`SO_PEERPIDFD`), robust against PID reuse.
    pub pidfd: Option<OwnedFd>,
    /// The client process pinned, made once from the pidfd when first asked for.
    process: OnceLock<Option<ProcessRef>>,
}

impl Peer {
    /// Reads the credentials of the client connected to `socket`.
    ///
    /// # Errors
    /// `SO_PEERCRED` failed; a missing pidfd is not an error (the field is `None`).
    pub fn of_socket(socket: BorrowedFd<'_>) -> io::Result<Self> {
        let (pid, uid, gid) = sys::peer_credentials(socket)?;
        Ok(Self {
            uid,
            gid,
            groups: sys::peer_groups(socket).unwrap_or_default(),
            pid: u32::try_from(pid).ok().filter(|&pid| pid > 0),
            pidfd: sys::peer_pidfd(socket).ok(),
            process: OnceLock::new(),
        })
    }

    /// A client with these credentials (for connections from elsewhere than a socket, and
    /// tests).
    pub fn new(
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
        pid: Option<u32>,
        pidfd: Option<OwnedFd>,
    ) -> Self {
        Self {
            uid,
            gid,
            groups,
            pid,
            pidfd,
            process: OnceLock::new(),
        }
    }

    /// The client's pidfd, if the kernel gave one.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// The client process, pinned through its pidfd (made on the first call of a connection
    /// and kept for the others); `None` without a pidfd or when it is not visible from here.
    pub fn process(&self) -> Option<&ProcessRef> {
        self.process
            .get_or_init(|| ProcessRef::from_peer(self.pidfd()?, self.pid).ok())
            .as_ref()
    }

    /// Who the client is, for file work done with its rights.
    pub fn identity(&self) -> Identity {
        Identity {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.clone(),
        }
    }

    /// Whether the client runs as root or as the same user as this service: such clients may do
    /// everything (the equivalent of machined's "peer UID equals our UID" shortcut).
    pub fn is_privileged(&self) -> bool {
        self.uid == 0 || self.uid == rustix::process::geteuid().as_raw()
    }
}
