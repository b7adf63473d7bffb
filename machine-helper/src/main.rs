//! `berth-machine-helper`: one job inside a machine, for the registry.
//!
//! The registry starts it (`posix_spawn`, never a fork of the registry) with a
//! `SOCK_SEQPACKET` socket as standard input, sends one [`HelperRequest`] with the leader's
//! pidfd (and a cgroup directory) passed alongside, and reads one [`HelperReply`] back (with
//! the pty's master for `Open`). Under systemd the helper is instead socket-activated per job
//! (`berth-machine-helper@.service`, the connection as standard input), so that it, and the
//! sessions it starts, run outside the registry's sandbox. The helper becomes the caller first (unless root), enters
//! the machine's namespaces through the pidfd (only those that differ from ours) and its
//! root, does the job and exits. A shell or login prompt it starts outlives it, in the
//! machine's PID namespace and cgroup.

#![forbid(unsafe_code)]

mod bind;
mod copy;
mod enter;
mod image;
mod passwd;
mod pty;
mod session;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_interfaces::helper::{HelperFailure, HelperReply, HelperRequest, Job};
use berth_os::socket::{recv_with_fds, send_with_fds};

/// A failure of a job, as it goes back to the registry.
#[derive(Debug)]
pub struct Failure(HelperFailure);

impl Failure {
    /// A system call failed while `doing` something.
    pub fn system(doing: &str, error: impl Into<io::Error>) -> Self {
        let error = error.into();
        Self(HelperFailure::System {
            errno: error.raw_os_error().unwrap_or(libc::EIO),
            doing: doing.to_owned(),
        })
    }
}

/// What a job gives back: the pty path and its master, for `Open`.
type Outcome = Result<Option<(String, OwnedFd)>, Failure>;

fn main() {
    let channel = std::io::stdin().as_fd().try_clone_to_owned();
    let Ok(channel) = channel else {
        eprintln!("berth-machine-helper: no channel on standard input");
        std::process::exit(2);
    };
    let outcome = match receive(channel.as_fd()) {
        Ok((request, fds)) => run(&request, fds, channel.as_fd()),
        Err(error) => Err(Failure::system("reading the job", error)),
    };
    let (reply, fds) = match outcome {
        Ok(Some((path, master))) => (done(Some(path)), vec![master]),
        Ok(None) => (done(None), Vec::new()),
        Err(Failure(failure)) => (HelperReply::Failed(failure), Vec::new()),
    };
    let text = serde_json::to_vec(&reply).expect("replies serialize");
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    if let Err(error) = send_with_fds(&channel, &text, &borrowed) {
        eprintln!("berth-machine-helper: cannot answer: {error}");
        std::process::exit(1);
    }
}

fn done(pty_path: Option<String>) -> HelperReply {
    HelperReply::Done { pty_path }
}

fn receive(channel: BorrowedFd<'_>) -> io::Result<(HelperRequest, Vec<OwnedFd>)> {
    // A job's arguments and environment are bounded by the registry (128 KiB each).
    let mut buffer = vec![0u8; 512 * 1024];
    let (length, fds) = recv_with_fds(channel, &mut buffer)?;
    let request = serde_json::from_slice(&buffer[..length])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((request, fds))
}

/// Takes descriptor `index` out of the passed ones.
fn take(fds: &mut [Option<OwnedFd>], index: Option<usize>) -> Result<Option<OwnedFd>, Failure> {
    let Some(index) = index else {
        return Ok(None);
    };
    let fd = fds.get_mut(index).and_then(Option::take);
    fd.map(Some)
        .ok_or_else(|| Failure::system("taking a passed descriptor", rustix::io::Errno::BADF))
}

/// The leader's pidfd, which a job in a container needs.
fn needed(leader: Option<OwnedFd>) -> Result<OwnedFd, Failure> {
    leader.ok_or_else(|| Failure::system("finding the leader", rustix::io::Errno::INVAL))
}

fn run(request: &HelperRequest, fds: Vec<OwnedFd>, channel: BorrowedFd<'_>) -> Outcome {
    let mut fds: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
    let leader = take(&mut fds, request.leader)?;
    let cgroup = take(&mut fds, request.cgroup)?;
    enter::become_caller(&request.caller)?;
    match &request.job {
        Job::Open {
            mode,
            user,
            path,
            args,
            environment,
        } => {
            enter::machine(leader.as_ref(), enter::Scope::Everything)?;
            let pty = pty::open()?;
            let program = session::Program {
                user,
                path: path.as_deref(),
                args: args.as_deref(),
                environment,
            };
            session::start(*mode, &pty, &program, cgroup.as_ref())?;
            Ok(Some((pty.path, pty.master)))
        }
        Job::Copy {
            to_machine,
            source,
            destination,
            replace,
        } => {
            let job = copy::CopyJob {
                to_machine: *to_machine,
                source,
                destination,
                replace: *replace,
                keep_owners: request.caller.uid == 0,
            };
            copy::run(&needed(leader)?, &job, channel)?;
            Ok(None)
        }
        Job::Image { change, lock_dir } => {
            image::run(change, lock_dir, channel)?;
            Ok(None)
        }
        Job::BindMount {
            source,
            destination,
            read_only,
            mkdir,
        } => {
            bind::mount(&needed(leader)?, source, destination, *read_only, *mkdir)?;
            Ok(None)
        }
    }
}
