//! `CopyFrom` and `CopyTo`: files and trees between a container and the host.
//!
//! No namespace is entered: the machine's side resolves strictly inside its root, pinned
//! through the leader (`RESOLVE_IN_ROOT`), the host's side with the caller's rights, and the
//! whole copy runs with the caller's rights on a thread of its own ([`berth_os::copy`]: no
//! symlink followed, built under a temporary name). Owners keep their host IDs where the
//! destination can represent them: a file of the container's root (host UID 65536 in a
//! container shifted by 65536) lands on the host owned by 65536 and back; a host file whose
//! owner the container does not map (host root's) becomes the container root's. Only root
//! can give files away: an unprivileged caller's copies are owned by the caller.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::AtomicBool;

use berth_interfaces::machine::MachineClass;
use berth_os::copy::{self, CopyOptions, Place};
use berth_os::identity::{self, Identity};
use berth_os::root::Root;
use rustix::fs::{Mode, OFlags};

use crate::error::Error;
use crate::idmap::UserNamespace;
use crate::machine::Machine;

/// Which way a copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `CopyFrom`: from the machine to the host.
    FromMachine,
    /// `CopyTo`: from the host into the machine.
    ToMachine,
}

/// One copy, validated.
#[derive(Debug)]
pub struct CopyJob {
    /// Which way.
    pub direction: Direction,
    /// The absolute, normalized source path.
    pub source: String,
    /// The absolute, normalized destination path.
    pub destination: String,
    /// Whether an existing destination is replaced.
    pub replace: bool,
}

/// Runs `job` for `machine` with `caller`'s rights, until done or `cancel` is set. This
/// blocks for as long as the copy takes: call it off the async threads.
///
/// # Errors
/// `NotSupported` for machines other than containers; the kernel's error otherwise
/// (`EEXIST` for an existing destination without `replace`, `ECANCELED`).
pub fn run(
    machine: &Machine,
    job: &CopyJob,
    caller: &Identity,
    cancel: &AtomicBool,
) -> Result<(), Error> {
    if machine.class != MachineClass::Container {
        return Err(Error::NotSupported);
    }
    let namespace = UserNamespace::of_process(machine.leader.pid()).map_err(Error::System)?;
    let to_machine = job.direction == Direction::ToMachine;
    let map = move |uid: u32, gid: u32| {
        if to_machine {
            (
                into_machine(&namespace, uid, true),
                into_machine(&namespace, gid, false),
            )
        } else {
            (uid, gid)
        }
    };
    let options = CopyOptions {
        replace: job.replace,
        owner: (caller.uid == 0).then_some(&map as copy::OwnerMap<'_>),
        cancel,
    };
    identity::run_as(caller, || {
        let root = Root::of_process(&machine.leader)?;
        let (machine_path, host_path) = match job.direction {
            Direction::FromMachine => (&job.source, &job.destination),
            Direction::ToMachine => (&job.destination, &job.source),
        };
        let (machine_dir, machine_name) = copy::split_path(machine_path);
        let (host_dir, host_name) = copy::split_path(host_path);
        let machine_dir = root.open_directory(machine_dir)?;
        let host_dir = rustix::fs::open(
            host_dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let on_machine = place(&machine_dir, machine_name);
        let on_host = place(&host_dir, host_name);
        match job.direction {
            Direction::FromMachine => copy::copy(on_machine, on_host, &options),
            Direction::ToMachine => copy::copy(on_host, on_machine, &options),
        }
    })
    .map_err(Error::System)
}

fn place<'a>(dir: &'a OwnedFd, name: &'a str) -> Place<'a> {
    Place {
        dir: dir.as_fd(),
        name: name.as_ref(),
    }
}

/// The host ID a file copied into the machine gets: its own where the machine maps it, else
/// that of the machine's root (0 in the host's namespace).
fn into_machine(namespace: &UserNamespace, id: u32, is_uid: bool) -> u32 {
    let map = if is_uid {
        namespace.uid_map()
    } else {
        namespace.gid_map()
    };
    let Some(map) = map else {
        return id;
    };
    let mapped = map.iter().any(|line| line.to_inside(id).is_some());
    if mapped {
        return id;
    }
    let root = if is_uid {
        namespace.uid_to_host(0)
    } else {
        namespace.gid_to_host(0)
    };
    root.unwrap_or(id)
}
