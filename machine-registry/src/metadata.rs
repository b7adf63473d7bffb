//! Metadata a `List` call may ask for, read from the machine itself.

use std::io;

use berth_interfaces::machine::MachineClass;
use berth_os::identity::{self, Identity};
use berth_os::root::Root;

use crate::machine::Machine;
use crate::state_file;

/// Why a piece of metadata is missing.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The machine class has no such information (e.g. a VM's os-release).
    #[error("Not available for this machine")]
    NotAvailable,
    /// The machine has no os-release file.
    #[error("The machine has no os-release file")]
    NoOsRelease,
    /// The caller may not read it.
    #[error("The caller may not read the machine's metadata")]
    Denied,
    /// Reading failed.
    #[error("Reading machine metadata failed")]
    Io(#[source] io::Error),
}

const OS_RELEASE_PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// The machine's os-release as `KEY=VALUE` strings, in file order, read with `reader`'s rights.
///
/// The file is opened inside the machine's root (for a container its leader's, pinned
/// through the leader's pidfd; `/` for `.host`), so no symlink leads out of it, and by a
/// thread that has taken on `reader`'s credentials, so what the reader could not open
/// themselves (a root-only host file bind-mounted or symlinked over a container's
/// os-release, say) is refused. This blocks on file I/O: call it off the async threads.
///
/// # Errors
/// [`MetadataError::NotAvailable`] for VMs, [`MetadataError::NoOsRelease`] when neither file
/// exists, [`MetadataError::Denied`] when `reader` may not read it, else
/// [`MetadataError::Io`].
pub fn os_release(machine: &Machine, reader: &Identity) -> Result<Vec<String>, MetadataError> {
    let root = match machine.class {
        MachineClass::Vm => return Err(MetadataError::NotAvailable),
        MachineClass::Host => Root::host(),
        MachineClass::Container => Root::of_process(&machine.leader),
    }
    .map_err(MetadataError::Io)?;
    let text =
        identity::run_as(reader, || read_first(&root)).map_err(|error| match error.kind() {
            io::ErrorKind::PermissionDenied => MetadataError::Denied,
            io::ErrorKind::NotFound => MetadataError::NoOsRelease,
            _ => MetadataError::Io(error),
        })?;
    Ok(state_file::parse_pairs(&text)
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect())
}

/// Reads the first of the os-release files that exists.
fn read_first(root: &Root) -> io::Result<String> {
    match root.read_to_string(OS_RELEASE_PATHS[0]) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => root.read_to_string(OS_RELEASE_PATHS[1]),
        other => other,
    }
}
