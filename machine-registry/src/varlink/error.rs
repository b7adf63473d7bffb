//! The one place where internal errors become Varlink errors, for every interface the
//! registry serves (`io.berth.Registry` and the resolve hook answer machined's errors too).

use std::io;

use berth_interfaces::image::ImageError;
use berth_interfaces::machine::MachineError;
use berth_interfaces::service::{SystemError, VarlinkError};
use berth_service_runtime::varlink::ErrorReply;

use crate::error::Error;
use crate::manager::RegistryError;
use crate::metadata::MetadataError;
use crate::network::NetworkError;

impl From<Error> for ErrorReply {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidParameter(field) => VarlinkError::invalid_parameter(field).into(),
            Error::PermissionDenied => VarlinkError::PermissionDenied.into(),
            Error::ExpectedMore => VarlinkError::ExpectedMore.into(),
            Error::NoSuchMachine => MachineError::NoSuchMachine.into(),
            Error::NotSupported => MachineError::NotSupported.into(),
            Error::NoSuchUser => MachineError::NoSuchUser.into(),
            Error::NoSuchGroup => MachineError::NoSuchGroup.into(),
            Error::UserInHostRange => MachineError::UserInHostRange.into(),
            Error::GroupInHostRange => MachineError::GroupInHostRange.into(),
            Error::NoUidShift => MachineError::NoUIDShift.into(),
            Error::TooManyOperations => MachineError::TooManyOperations.into(),
            Error::NoSuchImage => ImageError::NoSuchImage.into(),
            Error::NoIpc => MachineError::NoIPC.into(),
            Error::Registry(error) => registry_error(error),
            Error::Metadata(MetadataError::NotAvailable) => MachineError::NotAvailable.into(),
            Error::Metadata(MetadataError::NoOsRelease) => {
                MachineError::NoOSReleaseInformation.into()
            }
            Error::Metadata(MetadataError::Denied) => VarlinkError::PermissionDenied.into(),
            Error::Network(NetworkError::NoPrivateNetworking) => {
                MachineError::NoPrivateNetworking.into()
            }
            Error::Metadata(MetadataError::Io(error))
            | Error::Network(NetworkError::Io(error))
            | Error::System(error) => system(&error),
        }
    }
}

/// Errors of `io.systemd.MachineImage` calls: its own `NotSupported` and
/// `TooManyOperations`, the rest as for every interface.
pub fn image_error(error: Error) -> ErrorReply {
    match error {
        Error::NotSupported => ImageError::NotSupported.into(),
        Error::TooManyOperations => ImageError::TooManyOperations.into(),
        error => error.into(),
    }
}

fn registry_error(error: RegistryError) -> ErrorReply {
    match error {
        RegistryError::Exists(_) => MachineError::MachineExists.into(),
        RegistryError::LeaderTaken(_) => errno(libc::EEXIST),
        RegistryError::Full => errno(libc::ENFILE),
        RegistryError::UserQuota(_) => errno(libc::EDQUOT),
        RegistryError::LeaderExited => errno(libc::ESRCH),
        RegistryError::Cgroup(error) if no_writable_cgroup(&error) => {
            MachineError::NotSupported.into()
        }
        RegistryError::Cgroup(error)
        | RegistryError::Watch(error)
        | RegistryError::Persist(error) => system(&error),
    }
}

/// Errors that mean "there is no cgroup2 tree we may write to".
fn no_writable_cgroup(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT | libc::EOPNOTSUPP)
    )
}

fn system(error: &io::Error) -> ErrorReply {
    errno(errno_of(error))
}

/// The errno behind `error`, also when a library wrapped the system's error in its own (as
/// `tempfile` adds the path), else the closest errno of its kind.
fn errno_of(error: &io::Error) -> i32 {
    if let Some(errno) = error.raw_os_error() {
        return errno;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = error
        .get_ref()
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    while let Some(inner) = source {
        if let Some(errno) = inner
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return errno;
        }
        source = inner.source();
    }
    match error.kind() {
        io::ErrorKind::StorageFull => libc::ENOSPC,
        io::ErrorKind::PermissionDenied => libc::EACCES,
        io::ErrorKind::NotFound => libc::ENOENT,
        _ => libc::EIO,
    }
}

fn errno(errno: i32) -> ErrorReply {
    SystemError::System { errno }.into()
}
