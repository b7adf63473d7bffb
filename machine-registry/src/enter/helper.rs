//! Running `berth-machine-helper` for one job: the job and its descriptors go over a
//! `SOCK_SEQPACKET` connection, one answer comes back.
//!
//! Under systemd the registry connects to the helper's socket
//! (`BERTH_MACHINE_HELPER_SOCKET`, set by its unit) and systemd starts a helper for the
//! connection, outside the registry's sandbox. Without it the registry starts the helper
//! itself, with `posix_spawn` (std's `Command` with nothing to run before `exec`), the other
//! end of a socket pair as its standard input.
//!
//! Dropping the future closes the connection: the helper cancels what it does (a copy
//! removes what it built) and exits; a helper the registry started is reaped in the
//! background.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use berth_interfaces::helper::{HelperReply, HelperRequest};
use berth_os::socket::{recv_with_fds, send_with_fds};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use tokio::io::Interest;

/// The helper's socket, when systemd listens on it for the registry.
fn socket_path() -> Option<PathBuf> {
    std::env::var_os("BERTH_MACHINE_HELPER_SOCKET").map(PathBuf::from)
}

/// The helper's binary: next to the registry's.
fn helper_path() -> io::Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name("berth-machine-helper"))
}

/// A helper the registry started, reaped when dropped (in the background).
struct Started(Option<Child>);

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            tokio::task::spawn_blocking(move || child.wait());
        }
    }
}

/// A connection to a helper: the registry's end, and the helper if the registry started it.
fn connect() -> io::Result<(OwnedFd, Started)> {
    let flags = SocketFlags::CLOEXEC;
    if let Some(path) = socket_path() {
        let channel =
            rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, flags, None)?;
        rustix::net::connect(&channel, &SocketAddrUnix::new(&path)?)?;
        return Ok((channel, Started(None)));
    }
    let (ours, theirs) =
        rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, flags, None)?;
    let child = Command::new(helper_path()?)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .spawn()?;
    Ok((ours, Started(Some(child))))
}

/// Gives `request`, with `fds` passed alongside, to a helper and returns its answer with
/// the descriptors it passed back.
///
/// # Errors
/// The helper could not be reached or started, or ended without answering.
pub async fn run(
    request: &HelperRequest,
    fds: &[OwnedFd],
) -> io::Result<(HelperReply, Vec<OwnedFd>)> {
    let (channel, _started) = connect()?;
    let text = serde_json::to_vec(request).map_err(io::Error::other)?;
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    send_with_fds(&channel, &text, &borrowed)?;
    rustix::io::ioctl_fionbio(&channel, true)?;
    let channel = berth_os::sys::async_fd(channel, Interest::READABLE)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let (length, fds) = loop {
        let mut ready = channel.readable().await?;
        match ready.try_io(|channel| recv_with_fds(channel.get_ref(), &mut buffer)) {
            Ok(received) => break received?,
            Err(_would_block) => {}
        }
    };
    if length == 0 {
        return Err(io::Error::other(
            "the machine helper ended without answering",
        ));
    }
    let reply = serde_json::from_slice(&buffer[..length]).map_err(io::Error::other)?;
    Ok((reply, fds))
}
