//! Sending signals to a machine's processes.

use std::io;

use berth_interfaces::machine::{KillWhom, MachineClass};
use berth_os::proc::{self, ProcessTree};
use berth_os::process::ProcessRef;

use crate::machine::Machine;

/// Sends `signal` to `whom` of `machine`.
///
/// # Errors
/// `EOPNOTSUPP` for `.host`, `ESRCH` when there is no supervisor or it is gone, else the
/// signalling error.
pub async fn kill(machine: &Machine, whom: KillWhom, signal: i32) -> io::Result<()> {
    if machine.class == MachineClass::Host {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    match whom {
        KillWhom::Leader => machine.leader.signal(signal),
        KillWhom::Supervisor => match &machine.supervisor {
            Some(supervisor) => supervisor.signal(signal),
            None => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        },
        KillWhom::All => signal_all(machine, signal).await,
    }
}

/// Sends `signal` to every process of the machine: everything in its own cgroup if it has
/// one, else the leader and all its descendants. Runs on a blocking thread (it reads `/proc`).
///
/// # Errors
/// The leader cannot be signalled (e.g. it is gone).
pub async fn signal_all(machine: &Machine, signal: i32) -> io::Result<()> {
    let cgroup = machine.cgroup.clone();
    let leader = machine.leader.clone();
    let task = tokio::task::spawn_blocking(move || match cgroup {
        Some(cgroup) => cgroup.signal_all(signal),
        None => signal_tree(&leader, signal),
    });
    task.await.map_err(io::Error::other)?
}

/// Signals the leader (through its pidfd) and then each descendant. Each descendant is pinned
/// with a pidfd and checked to still be below the leader before it is signalled.
fn signal_tree(leader: &ProcessRef, signal: i32) -> io::Result<()> {
    let tree = ProcessTree::scan();
    let pinned: Vec<ProcessRef> = tree
        .descendants_of(leader.pid())
        .into_iter()
        .filter_map(|pid| ProcessRef::open(pid).ok())
        .filter(|p| proc::parent_pid(p.pid()) == tree.parent_of(p.pid()))
        .collect();
    leader.signal(signal)?;
    for process in pinned {
        let _ = process.signal(signal);
    }
    Ok(())
}
