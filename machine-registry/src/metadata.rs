//! Metadata a `List` call may ask for, read from the machine itself.

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use berth_interfaces::machine::MachineClass;
use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};

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
    /// Reading failed.
    #[error("Reading machine metadata failed")]
    Io(#[source] io::Error),
}

const OS_RELEASE_PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// The machine's os-release as `KEY=VALUE` strings, in file order.
///
/// For a container the file is opened through the leader's root directory (`/proc/PID/root`,
/// which also enters its mount namespace) with `RESOLVE_IN_ROOT`, so absolute symlinks inside
/// the container resolve inside it. This blocks on file I/O: call it off the async threads.
///
/// # Errors
/// [`MetadataError::NotAvailable`] for VMs, [`MetadataError::NoOsRelease`] when neither file
/// exists, else [`MetadataError::Io`].
pub fn os_release(machine: &Machine) -> Result<Vec<String>, MetadataError> {
    let text = match machine.class {
        MachineClass::Vm => return Err(MetadataError::NotAvailable),
        MachineClass::Host => {
            read_first(OS_RELEASE_PATHS.map(|p| fs::File::open(format!("/{p}"))))?
        }
        MachineClass::Container => {
            let root = fs::File::open(format!("/proc/{}/root", machine.leader.pid()))
                .map_err(MetadataError::Io)?;
            let root = OwnedFd::from(root);
            let text = read_first(OS_RELEASE_PATHS.map(|p| open_in_root(&root, p)))?;
            if !machine.leader.is_alive() {
                // The PID may belong to someone else by now; what we read is not the machine's.
                return Err(MetadataError::Io(io::Error::from_raw_os_error(libc::ESRCH)));
            }
            text
        }
    };
    Ok(state_file::parse_pairs(&text)
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect())
}

fn open_in_root(root: &OwnedFd, path: &str) -> io::Result<fs::File> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = openat2(root, path, flags, Mode::empty(), ResolveFlags::IN_ROOT)?;
    Ok(fs::File::from(fd))
}

/// Reads the first of the candidate files that exists.
fn read_first(candidates: [io::Result<fs::File>; 2]) -> Result<String, MetadataError> {
    for candidate in candidates {
        match candidate {
            Ok(file) => {
                let mut text = String::new();
                file.take(1024 * 1024)
                    .read_to_string(&mut text)
                    .map_err(MetadataError::Io)?;
                return Ok(text);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(MetadataError::Io(e)),
        }
    }
    Err(MetadataError::NoOsRelease)
}
