//! AF_UNIX sockets: binding a listening one by path, the way every Berth service and
//! `supervise` do when no socket was passed to them (never stealing a socket another process
//! serves), and passing descriptors along with messages (`SCM_RIGHTS`).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

/// Why a socket could not be bound.
#[derive(Debug)]
pub enum BindError {
    /// A live process accepts connections on the path already.
    InUse(PathBuf),
    /// Creating the directory, removing a stale socket, binding or setting the mode failed.
    Io {
        /// The socket path.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InUse(path) => write!(
                f,
                "{} is served by another running process; refusing to take it over",
                path.display()
            ),
            Self::Io { path, .. } => write!(f, "Cannot bind {}", path.display()),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InUse(_) => None,
            Self::Io { source, .. } => Some(source),
        }
    }
}

/// Binds a listening socket at `path` with permissions `mode`, creating missing parent
/// directories (mode 0755). The listener is non-blocking.
///
/// A socket file left behind by a dead process is replaced; one that a live process still
/// accepts connections on is not touched.
///
/// # Errors
/// [`BindError::InUse`] when another process serves `path`, else [`BindError::Io`].
pub fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, BindError> {
    let failed = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        create_dir_all_with_mode(parent, 0o755).map_err(failed)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(BindError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(failed)?;
    }
    let listener = UnixListener::bind(path).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    Ok(listener)
}

/// `mkdir -p` where newly created directories get `mode`.
///
/// # Errors
/// The first directory that could not be made.
pub fn create_dir_all_with_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
}

/// The most descriptors one message carries.
pub const MAX_FDS: usize = 16;

/// Sends `bytes` on `socket` with `fds` attached (`SCM_RIGHTS`) to its first byte; returns how
/// many bytes went out (the rest, if any, goes out with plain writes).
///
/// # Errors
/// The kernel's error (`EAGAIN` on a non-blocking socket that is full).
pub fn send_with_fds(socket: impl AsFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let iov = [IoSlice::new(bytes)];
    Ok(sendmsg(socket, &iov, &mut control, SendFlags::NOSIGNAL)?)
}

/// Receives into `buffer` from `socket`, with the descriptors that came along (at most
/// [`MAX_FDS`]; they are close-on-exec).
///
/// # Errors
/// The kernel's error; `EMSGSIZE` when descriptors or a datagram were cut off.
pub fn recv_with_fds(socket: impl AsFd, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buffer)];
    let received = recvmsg(socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    if received
        .flags
        .intersects(ReturnFlags::CTRUNC | ReturnFlags::TRUNC)
    {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    Ok((received.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_replaced_but_a_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/sock");
        let live = bind_unix(&path, 0o600).unwrap();
        assert!(matches!(bind_unix(&path, 0o600), Err(BindError::InUse(_))));
        drop(live);
        let again = bind_unix(&path, 0o666).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        drop(again);
    }

    #[test]
    fn descriptors_travel_with_a_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        assert_eq!(send_with_fds(&a, b"hello", &[file.as_fd()]).unwrap(), 5);
        let mut buffer = [0u8; 16];
        let (read, fds) = recv_with_fds(&b, &mut buffer).unwrap();
        assert_eq!(&buffer[..read], b"hello");
        assert_eq!(fds.len(), 1);
        let ours = rustix::fs::fstat(&file).unwrap();
        let theirs = rustix::fs::fstat(&fds[0]).unwrap();
        assert_eq!((ours.st_dev, ours.st_ino), (theirs.st_dev, theirs.st_ino));
        send_with_fds(&a, b"plain", &[]).unwrap();
        let (read, fds) = recv_with_fds(&b, &mut buffer).unwrap();
        assert_eq!((&buffer[..read], fds.len()), (&b"plain"[..], 0));
    }

    #[test]
    fn a_path_that_cannot_be_bound_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = bind_unix(&file.join("sock"), 0o600).unwrap_err();
        assert!(matches!(&error, BindError::Io { path, .. } if path.ends_with("file/sock")));
    }
}
