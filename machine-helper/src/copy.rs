//! `CopyFrom` and `CopyTo`: files and trees between a container and the host, with the
//! caller's rights ([`berth_os::copy`]: nothing followed below the two starting directories,
//! built under a temporary name).
//!
//! No namespace is entered: the machine's side resolves strictly inside its root, pinned
//! through the leader (`RESOLVE_IN_ROOT`), the host's side as the caller resolves it. Owners
//! keep their host IDs where the destination can represent them: a file of the container's
//! root (host UID 65536 in a container shifted by 65536) lands on the host owned by 65536,
//! and back; a host file whose owner the container does not map (host root's) becomes the
//! container root's. Only root gives files away: an unprivileged caller's copies are theirs.
//!
//! The registry closing the channel (its caller hung up) cancels the copy, which then
//! removes what it had built.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_interfaces::registry::{IdMapping, parse_id_map};
use berth_os::copy::{self, CopyOptions, Place, Progress};
use berth_os::process::ProcessRef;
use berth_os::root::Root;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};

use crate::Failure;

/// One copy.
#[derive(Debug)]
pub struct CopyJob<'a> {
    /// Into the machine, else out of it.
    pub to_machine: bool,
    /// The source path.
    pub source: &'a str,
    /// The destination path.
    pub destination: &'a str,
    /// Replace an existing destination.
    pub replace: bool,
    /// Whether owners are kept (the caller is root).
    pub keep_owners: bool,
}

/// Runs `job` for the machine of `leader`, until done or `channel` hangs up.
///
/// # Errors
/// The kernel's error (`EEXIST` without `replace`, `ECANCELED` when cancelled).
pub fn run(leader: &OwnedFd, job: &CopyJob<'_>, channel: BorrowedFd<'_>) -> Result<(), Failure> {
    let process = leader
        .try_clone()
        .and_then(ProcessRef::from_pidfd)
        .map_err(|e| Failure::system("pinning the leader", e))?;
    let root = Root::of_process(&process).map_err(|e| Failure::system("opening its root", e))?;
    let maps = (job.to_machine && job.keep_owners)
        .then(|| read_maps(process.pid()))
        .transpose()?;
    let owner = |uid: u32, gid: u32| match &maps {
        Some((uid_map, gid_map)) => (into_machine(uid_map, uid), into_machine(gid_map, gid)),
        None => (uid, gid),
    };
    let what = format!("copying {}", job.source);
    let progress = Progress::default();
    with_cancellation(channel, &Reporter::new(&what, &progress), |cancel| {
        let options = CopyOptions {
            replace: job.replace,
            owner: job.keep_owners.then_some(&owner as copy::OwnerMap<'_>),
            cancel,
            progress: Some(&progress),
        };
        copy_between(&root, job, &options)
    })
    .map_err(|e| Failure::system("copying", e))
}

/// Runs `work` with a flag that a watching thread sets once the registry closes `channel`;
/// the same thread has `reporter` tell how far the work got, every few seconds.
pub fn with_cancellation<T: Send>(
    channel: BorrowedFd<'_>,
    reporter: &Reporter<'_>,
    work: impl FnOnce(&AtomicBool) -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let cancel = AtomicBool::new(false);
    let finished = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| watch_hang_up(channel, &finished, &cancel, reporter));
        let result = work(&cancel);
        finished.store(true, Ordering::Relaxed);
        result
    });
    if result.is_ok() {
        reporter.report("done");
    }
    result
}

/// Progress lines on standard error (the registry's log when it started the helper, the
/// journal under systemd): `berth-machine-helper: cloning /var/lib/machines/x: 1200 entries,
/// 350.2 MiB so far`.
#[derive(Debug)]
pub struct Reporter<'a> {
    what: &'a str,
    progress: &'a Progress,
}

/// How often progress is reported.
const REPORT_EVERY: Duration = Duration::from_secs(2);

impl<'a> Reporter<'a> {
    /// Reports `progress` of `what`.
    pub fn new(what: &'a str, progress: &'a Progress) -> Self {
        Self { what, progress }
    }

    fn report(&self, when: &str) {
        let entries = self.progress.entries.load(Ordering::Relaxed);
        let mebibytes = self.progress.bytes.load(Ordering::Relaxed) as f64 / 1048576.0;
        eprintln!(
            "berth-machine-helper: {}: {entries} entries, {mebibytes:.1} MiB {when}",
            self.what
        );
    }
}

fn read_maps(pid: u32) -> Result<(Vec<IdMapping>, Vec<IdMapping>), Failure> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map(|text| parse_id_map(&text))
            .map_err(|e| Failure::system("reading its user namespace", e))
    };
    Ok((read("uid_map")?, read("gid_map")?))
}

/// Sets `cancel` once the registry closes `channel`, until `finished`; reports progress.
fn watch_hang_up(
    channel: BorrowedFd<'_>,
    finished: &AtomicBool,
    cancel: &AtomicBool,
    reporter: &Reporter<'_>,
) {
    let tick = Timespec::try_from(Duration::from_millis(100)).unwrap_or_default();
    let mut last_report = std::time::Instant::now();
    while !finished.load(Ordering::Relaxed) {
        if last_report.elapsed() >= REPORT_EVERY {
            reporter.report("so far");
            last_report = std::time::Instant::now();
        }
        let mut fds = [PollFd::new(&channel, PollFlags::IN | PollFlags::RDHUP)];
        // Nothing more is ever sent: readable means closed.
        if rustix::event::poll(&mut fds, Some(&tick)).is_ok_and(|ready| ready > 0) {
            cancel.store(true, Ordering::Relaxed);
            return;
        }
    }
}

fn copy_between(root: &Root, job: &CopyJob<'_>, options: &CopyOptions<'_>) -> std::io::Result<()> {
    let (machine_path, host_path) = if job.to_machine {
        (job.destination, job.source)
    } else {
        (job.source, job.destination)
    };
    let (machine_dir, machine_name) = copy::split_path(machine_path);
    let (host_dir, host_name) = copy::split_path(host_path);
    let machine_dir = root.open_directory(machine_dir)?;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let host_dir = rustix::fs::open(host_dir, flags, Mode::empty())?;
    let on_machine = place(&machine_dir, machine_name);
    let on_host = place(&host_dir, host_name);
    if job.to_machine {
        copy::copy(on_host, on_machine, options)
    } else {
        copy::copy(on_machine, on_host, options)
    }
}

fn place<'a>(dir: &'a OwnedFd, name: &'a str) -> Place<'a> {
    Place {
        dir: dir.as_fd(),
        name: name.as_ref(),
    }
}

/// The host ID a file copied into the machine gets: its own where the machine maps it, else
/// that of the machine's root.
fn into_machine(map: &[IdMapping], id: u32) -> u32 {
    if map.iter().any(|line| line.to_inside(id).is_some()) {
        return id;
    }
    map.iter().find_map(|line| line.to_outside(0)).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_owners_become_the_machines_root() {
        let map = parse_id_map("0 65536 65536\n");
        assert_eq!(into_machine(&map, 65536 + 1000), 65536 + 1000);
        assert_eq!(into_machine(&map, 0), 65536);
        assert_eq!(into_machine(&map, 1000), 65536);
        assert_eq!(into_machine(&[], 1000), 1000);
    }
}
