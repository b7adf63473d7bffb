//! Who is on the other end of a connection.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_os::identity::Identity;
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
        })
    }

    /// The client's pidfd, if the kernel gave one.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
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
