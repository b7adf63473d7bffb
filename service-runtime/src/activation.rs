//! Getting listening sockets: from the service manager (`LISTEN_FDS`/`LISTEN_FDNAMES`) or,
//! when nothing was passed, by binding the path ourselves.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_os::socket::{self, BindError};
use berth_os::sys;
use tokio::net::UnixListener;

/// Errors getting a listening socket.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS`/`LISTEN_FDNAMES` are malformed.
    #[error("Socket activation environment is invalid")]
    Environment(#[source] io::Error),
    /// A passed descriptor is not open.
    #[error("Passed file descriptor {0} is not open")]
    NotOpen(i32),
    /// A passed descriptor is not a listening AF_UNIX stream socket.
    #[error("Passed file descriptor named {name:?} is not a listening AF_UNIX stream socket")]
    NotAListener {
        /// Its `LISTEN_FDNAMES` name.
        name: String,
    },
    /// Descriptors were passed that this service does not know.
    #[error("Unexpected sockets passed by the service manager: {0:?}")]
    Unexpected(Vec<String>),
    /// The socket path is served by another live process, or binding it failed.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The bound socket could not be handed to the runtime.
    #[error("Cannot serve the socket bound at the path")]
    Runtime(#[source] io::Error),
}

/// The descriptors the service manager passed, by name.
#[derive(Debug, Default)]
pub struct PassedSockets {
    fds: Vec<(String, OwnedFd)>,
}

/// The name systemd gives descriptors without `FileDescriptorName=`, and sd-notify when
/// `LISTEN_FDNAMES` is unset.
const UNNAMED: &str = "unknown";

impl PassedSockets {
    /// Takes the descriptors passed to this process (none if `LISTEN_PID` is not ours).
    ///
    /// # Errors
    /// The environment is malformed or names a descriptor that is not open.
    pub fn from_env() -> Result<Self, ActivationError> {
        let passed = sd_notify::listen_fds_with_names().map_err(ActivationError::Environment)?;
        let mut fds = Vec::new();
        for (raw, name) in passed {
            let fd = sys::adopt_inherited_fd(raw).ok_or(ActivationError::NotOpen(raw))?;
            fds.push((name, fd));
        }
        Ok(Self { fds })
    }

    /// Whether anything was passed at all.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Takes the socket named `name`. An unnamed socket counts as `name` when it is the only
    /// one passed, so `systemd-socket-activate -l PATH` works without `--fdname`.
    ///
    /// # Errors
    /// The descriptor is not a listening AF_UNIX stream socket.
    pub fn take(&mut self, name: &str) -> Result<Option<UnixListener>, ActivationError> {
        let only_unnamed = self.fds.len() == 1 && matches!(self.fds[0].0.as_str(), UNNAMED | "");
        let Some(index) = self.fds.iter().position(|(n, _)| n == name || only_unnamed) else {
            return Ok(None);
        };
        let (name, fd) = self.fds.remove(index);
        listener_from_fd(fd, &name).map(Some)
    }

    /// Fails if descriptors are left that nobody took.
    ///
    /// # Errors
    /// [`ActivationError::Unexpected`] with their names.
    pub fn finish(self) -> Result<(), ActivationError> {
        if self.fds.is_empty() {
            return Ok(());
        }
        Err(ActivationError::Unexpected(
            self.fds.into_iter().map(|(name, _)| name).collect(),
        ))
    }
}

fn listener_from_fd(fd: OwnedFd, name: &str) -> Result<UnixListener, ActivationError> {
    let not_a_listener = || ActivationError::NotAListener {
        name: name.to_owned(),
    };
    let is_listening = rustix::net::sockopt::socket_acceptconn(fd.as_fd()).unwrap_or(false);
    let is_stream = rustix::net::sockopt::socket_type(fd.as_fd())
        .is_ok_and(|t| t == rustix::net::SocketType::STREAM);
    let is_unix = rustix::net::getsockname(fd.as_fd())
        .is_ok_and(|addr| addr.address_family() == rustix::net::AddressFamily::UNIX);
    if !(is_listening && is_stream && is_unix) {
        return Err(not_a_listener());
    }
    let listener = std::os::unix::net::UnixListener::from(fd);
    listener
        .set_nonblocking(true)
        .map_err(|_| not_a_listener())?;
    UnixListener::from_std(listener).map_err(|_| not_a_listener())
}

/// Binds a listening socket at `path` with permissions `mode` (see
/// [`berth_os::socket::bind_unix`]: a stale socket is replaced, a live one is never taken over).
///
/// # Errors
/// [`ActivationError::Bind`] (also when another process serves `path`), or
/// [`ActivationError::Runtime`].
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, ActivationError> {
    let listener = socket::bind_unix(path, mode)?;
    UnixListener::from_std(listener).map_err(ActivationError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_but_a_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/sock");
        let live = bind(&path, 0o600).unwrap();
        assert!(matches!(
            bind(&path, 0o600),
            Err(ActivationError::Bind(BindError::InUse(_)))
        ));
        drop(live);
        let again = bind(&path, 0o666).unwrap();
        drop(again);
    }

    #[tokio::test]
    async fn a_passed_socket_must_be_a_unix_stream_listener() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let err = listener_from_fd(OwnedFd::from(a), "varlink").unwrap_err();
        assert!(matches!(err, ActivationError::NotAListener { .. }));
    }
}
