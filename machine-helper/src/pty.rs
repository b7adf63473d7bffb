//! A pseudo-terminal in the machine's own devpts: `/dev/ptmx` opened after entering its
//! mount namespace and root.

use std::os::fd::OwnedFd;

use rustix::pty::OpenptFlags;

use crate::Failure;

/// An open pty.
#[derive(Debug)]
pub struct Pty {
    /// The master, for the caller.
    pub master: OwnedFd,
    /// The peer's path in the machine (`/dev/pts/N`).
    pub path: String,
}

/// Opens a new pty and unlocks its peer.
///
/// # Errors
/// The machine has no usable `/dev/ptmx`.
pub fn open() -> Result<Pty, Failure> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags).map_err(|e| Failure::system("opening /dev/ptmx", e))?;
    rustix::pty::unlockpt(&master).map_err(|e| Failure::system("unlocking the pty", e))?;
    let path = rustix::pty::ptsname(&master, Vec::new())
        .map_err(|e| Failure::system("naming the pty", e))?
        .into_string()
        .map_err(|_| Failure::system("naming the pty", rustix::io::Errno::ILSEQ))?;
    Ok(Pty { master, path })
}

impl Pty {
    /// Opens the peer (the terminal side), through the master: no path lookup.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn peer(&self) -> Result<OwnedFd, Failure> {
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        rustix::pty::ioctl_tiocgptpeer(&self.master, flags)
            .map_err(|e| Failure::system("opening the pty's peer", e))
    }
}
