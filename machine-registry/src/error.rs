//! The registry's internal error type; `varlink::error` maps it onto the wire in one place.

use std::io;

use crate::manager::RegistryError;
use crate::metadata::MetadataError;

/// Everything a registry method can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is present but unacceptable.
    #[error("Invalid parameter {0}")]
    InvalidParameter(String),
    /// No machine matches the lookup.
    #[error("No such machine")]
    NoSuchMachine,
    /// The caller may not do this.
    #[error("Permission denied")]
    PermissionDenied,
    /// The method needs `more` (listing every machine).
    #[error("The 'more' flag is required")]
    ExpectedMore,
    /// The operation is not supported (for this machine, or at all).
    #[error("Operation not supported")]
    NotSupported,
    /// No such user (in the machine, or no machine maps the host UID).
    #[error("No such user")]
    NoSuchUser,
    /// No such group.
    #[error("No such group")]
    NoSuchGroup,
    /// The host UID is in the host's own range (below 65536).
    #[error("The user belongs to the host's UID range")]
    UserInHostRange,
    /// The host GID is in the host's own range (below 65536).
    #[error("The group belongs to the host's GID range")]
    GroupInHostRange,
    /// No image of that name.
    #[error("No such image")]
    NoSuchImage,
    /// Too many copies run already.
    #[error("Too many operations")]
    TooManyOperations,
    /// The machine has no way to start what was asked (no `agetty` or `login` in it).
    #[error("The machine cannot start a login prompt")]
    NoIpc,
    /// The machine's user namespace has no simple shift.
    #[error("The machine's UID mapping has no simple shift")]
    NoUidShift,
    /// The machine's addresses are not available.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// Registering failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Metadata could not be read.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A system call failed.
    #[error("System call failed")]
    System(#[from] io::Error),
}

impl Error {
    /// `InvalidParameter` for `field`.
    pub fn invalid(field: &str) -> Self {
        Self::InvalidParameter(field.to_owned())
    }

    /// Whether the registry itself failed (the system refused it something: a full disk, no
    /// descriptors left), rather than the caller asking for something it may not have: such
    /// failures are logged as warnings.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::System(_)
                | Self::Registry(
                    RegistryError::Persist(_) | RegistryError::Watch(_) | RegistryError::Full
                )
                | Self::Metadata(MetadataError::Io(_))
        )
    }
}
