//! Getting listening sockets: from the service manager (`LISTEN_FDS`/`LISTEN_FDNAMES`) or,
//! when nothing was passed, by binding the path ourselves.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::sys;

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
    /// The socket path is served by another live process.
    #[error("{0} is served by another running process; refusing to take it over")]
    InUse(PathBuf),
    /// Creating, binding or chmod-ing the socket failed.
    #[error("Cannot bind {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
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

/// Binds a listening socket at `path` with permissions `mode`, creating the parent directory
/// (mode 0755) when missing.
///
/// A socket file left behind by a dead process is replaced; one that a live process still
/// accepts connections on is not touched.
///
/// # Errors
/// [`ActivationError::InUse`] when another process serves `path`, else [`ActivationError::Bind`].
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, ActivationError> {
    let bind_error = |source| ActivationError::Bind {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        create_dir_all_with_mode(parent, 0o755).map_err(bind_error)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ActivationError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(bind_error)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_error)?;
    Ok(listener)
}

/// `mkdir -p` where newly created directories get `mode`.
pub fn create_dir_all_with_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_but_a_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/sock");
        let live = bind(&path, 0o600).unwrap();
        assert!(matches!(bind(&path, 0o600), Err(ActivationError::InUse(_))));
        drop(live);
        let again = bind(&path, 0o666).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        drop(again);
    }

    #[tokio::test]
    async fn a_passed_socket_must_be_a_unix_stream_listener() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let err = listener_from_fd(OwnedFd::from(a), "varlink").unwrap_err();
        assert!(matches!(err, ActivationError::NotAListener { .. }));
    }
}
