//! Running `berth-machine-helper` for one job: started with `posix_spawn` (std's `Command`
//! without anything to run before `exec`), the job and its descriptors sent over a
//! `SOCK_SEQPACKET` socket that is its standard input, one answer read back.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_interfaces::helper::{HelperReply, HelperRequest};
use berth_os::socket::{recv_with_fds, send_with_fds};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// The longest a job may take (they are short: a few system calls, one program started).
const TIMEOUT: Duration = Duration::from_secs(30);

/// The helper's binary: next to the registry's.
fn helper_path() -> io::Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name("berth-machine-helper"))
}

/// Runs `request` with `fds` passed alongside, and returns the helper's answer with the
/// descriptors it passed back. Blocks: call it off the async threads.
///
/// # Errors
/// The helper could not be started, timed out (`ETIMEDOUT`) or ended without answering.
pub fn run(request: &HelperRequest, fds: &[OwnedFd]) -> io::Result<(HelperReply, Vec<OwnedFd>)> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let mut child = Command::new(helper_path()?)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .spawn()?;
    let answer = exchange(&ours, request, fds);
    if answer.is_err() {
        let _ = child.kill();
    }
    child.wait()?;
    answer
}

fn exchange(
    channel: &OwnedFd,
    request: &HelperRequest,
    fds: &[OwnedFd],
) -> io::Result<(HelperReply, Vec<OwnedFd>)> {
    let text = serde_json::to_vec(request).map_err(io::Error::other)?;
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    send_with_fds(channel, &text, &borrowed)?;
    let timeout = Timespec::try_from(TIMEOUT).map_err(io::Error::other)?;
    let ready = rustix::event::poll(&mut [PollFd::new(channel, PollFlags::IN)], Some(&timeout))?;
    if ready == 0 {
        return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
    }
    let mut buffer = vec![0u8; 64 * 1024];
    let (length, fds) = recv_with_fds(channel, &mut buffer)?;
    if length == 0 {
        return Err(io::Error::other(
            "the machine helper ended without answering",
        ));
    }
    let reply = serde_json::from_slice(&buffer[..length]).map_err(io::Error::other)?;
    Ok((reply, fds))
}
