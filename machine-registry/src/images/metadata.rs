//! An image's metadata, read from its tree as the caller could read it: `/etc/hostname`,
//! `/etc/machine-id`, `/etc/machine-info`, os-release. Paths resolve inside the image
//! (`RESOLVE_IN_ROOT`), so a symlink in an image never leads to a host file. Raw and block
//! images are not opened (that would need a loop device and a mount): they have none.

use std::io;

use berth_os::identity::{self, Identity};
use berth_os::root::Root;

use super::discover::{Image, Kind};
use crate::state_file;

/// What was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMetadata {
    /// The first line of `/etc/hostname`.
    pub hostname: Option<String>,
    /// `/etc/machine-id`, when it is 32 hex digits.
    pub machine_id: Option<String>,
    /// `/etc/machine-info` as `KEY=VALUE`.
    pub machine_info: Option<Vec<String>>,
    /// os-release as `KEY=VALUE`.
    pub os_release: Option<Vec<String>>,
}

/// Runs `work` (reading images' metadata) with `reader`'s rights, on one thread for all the
/// images it reads. Blocks.
///
/// # Errors
/// The thread could not take on `reader`'s credentials, or `work`'s own error.
pub fn as_reader<T: Send>(reader: &Identity, work: impl FnOnce() -> T + Send) -> io::Result<T> {
    identity::run_as(reader, || Ok(work()))
}

/// Reads `image`'s metadata with the rights of the calling thread (see [`as_reader`]);
/// missing files are left out. Blocks.
///
/// # Errors
/// `EOPNOTSUPP` for raw and block images; `EACCES` when the reader may not look inside.
pub fn read(image: &Image) -> io::Result<ImageMetadata> {
    if !matches!(image.kind, Kind::Directory | Kind::Subvolume) {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let root = Root::at(&image.path)?;
    {
        root.open("/")?; // the caller may not look inside at all: refused
        let optional = |path: &str| match root.read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        };
        let pairs = |text: String| {
            state_file::parse_pairs(&text)
                .into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
        };
        let os_release = match optional("etc/os-release")? {
            Some(text) => Some(text),
            None => optional("usr/lib/os-release")?,
        };
        Ok(ImageMetadata {
            hostname: optional("etc/hostname")?
                .and_then(|text| text.lines().next().map(|l| l.trim().to_owned()))
                .filter(|h| !h.is_empty()),
            machine_id: optional("etc/machine-id")?
                .map(|text| text.trim().to_owned())
                .filter(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())),
            machine_info: optional("etc/machine-info")?.map(pairs),
            os_release: os_release.map(pairs),
        })
    }
}
