//! Process trees through `/proc`, for subreaper mode (no cgroup): the children and
//! descendants of a process, signalling them, and catern/supervise's kill loop.
//!
//! (`/proc/PID/task/TID/children` is not built into every kernel, so parents come from
//! scanning `/proc/*/stat`.)

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::fd::OwnedFd;

use berth_service_runtime::sys;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, pidfd_open, waitid};

/// Every process's parent, from one scan of `/proc`.
fn parents() -> HashMap<u32, u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

/// The PPID field of `/proc/PID/stat` (after the command name, which may contain anything).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The children of `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    parents()
        .into_iter()
        .filter_map(|(pid, ppid)| (ppid == parent).then_some(pid))
        .collect()
}

/// Every descendant of `root` (not `root` itself).
pub fn descendants_of(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, ppid) in parents() {
        children.entry(ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// Sends `signal` to the process `pid` through a pidfd.
///
/// # Errors
/// `ESRCH` when it is gone, else the kernel's error.
pub fn signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = Pid::from_raw(pid as i32).ok_or(io::ErrorKind::InvalidInput)?;
    let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
    sys::pidfd_send_signal(rustix::fd::AsFd::as_fd(&pidfd), signal)
}

/// Pidfds for those of `pids` that still exist.
pub fn pidfds(pids: Vec<u32>) -> impl Iterator<Item = OwnedFd> {
    pids.into_iter()
        .filter_map(|pid| Pid::from_raw(pid as i32))
        .filter_map(|pid| pidfd_open(pid, PidfdFlags::empty()).ok())
}

/// Waits until each process of `pidfds` has exited (a second at most each: they were
/// SIGKILLed and have left their cgroup, so they are in their last steps of exiting).
pub fn wait_exited(pidfds: Vec<OwnedFd>) {
    let timeout = Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    for pidfd in pidfds {
        let fds = &mut [PollFd::new(&pidfd, PollFlags::IN)];
        let _ = rustix::event::poll(fds, Some(&timeout));
    }
}

/// Sends `signal` to every process `list` returns, again and again until a pass finds no
/// process it did not signal yet (so that processes forked meanwhile get it too).
///
/// # Errors
/// `list` failed.
pub fn signal_until_none_new(
    mut list: impl FnMut() -> io::Result<Vec<u32>>,
    signal_number: i32,
) -> io::Result<()> {
    let mut done = HashSet::new();
    loop {
        let fresh: Vec<u32> = list()?.into_iter().filter(|p| !done.contains(p)).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        for pid in fresh {
            let _ = signal(pid, signal_number);
            done.insert(pid);
        }
    }
}

/// catern/supervise's "filicide" for a subreaper: SIGKILL each child of `me` and wait for it
/// to die (without reaping it, so its PID stays ours), which reparents its own children to
/// us; repeat until a scan finds no child that was not killed yet. Afterwards every
/// descendant is a zombie waiting to be reaped.
pub fn kill_children(me: u32) {
    let mut killed = HashSet::new();
    loop {
        let fresh: Vec<u32> = children_of(me)
            .into_iter()
            .filter(|p| !killed.contains(p))
            .collect();
        if fresh.is_empty() {
            return;
        }
        for pid in fresh {
            let _ = signal(pid, rustix::process::Signal::KILL.as_raw());
            if let Some(pid) = Pid::from_raw(pid as i32) {
                let _ = waitid(
                    WaitId::Pid(pid),
                    WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
                );
            }
            killed.insert(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parent_and_a_child_are_found() {
        let me = std::process::id();
        assert_eq!(
            parent_of(me),
            Some(rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32))
        );
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        assert!(children_of(me).contains(&child.id()));
        assert!(descendants_of(me).contains(&child.id()));
        signal(child.id(), 9).unwrap();
        child.wait().unwrap();
    }
}
