//! `OpenRootDirectory`: the machine's root directory, opened with the caller's rights.

use std::fs::File;

use berth_interfaces::machine::MachineClass;
use berth_os::identity::{self, Identity};
use berth_os::root::Root;

use crate::error::Error;
use crate::machine::Machine;

/// The root directory of `machine` (`/` for `.host`), opened for reading by a thread with
/// `caller`'s credentials. This blocks: call it off the async threads.
///
/// # Errors
/// `NotSupported` for VMs, else the system's error (the leader is gone, or the caller may not
/// open it).
pub fn open(machine: &Machine, caller: &Identity) -> Result<File, Error> {
    let leader = match machine.class {
        MachineClass::Vm => return Err(Error::NotSupported),
        MachineClass::Host => None,
        MachineClass::Container => Some(machine.leader.clone()),
    };
    identity::run_as(caller, || {
        let root = match &leader {
            Some(leader) => Root::of_process(leader)?,
            None => Root::host()?,
        };
        root.open("/")
    })
    .map_err(Error::System)
}
