//! Wire types of `io.systemd.MachineImage` (`idl/io.systemd.MachineImage.varlink`): the image
//! pool, served on the registry's socket as machined serves it.

use serde::{Deserialize, Serialize};

use crate::errors::wire_errors;
pub use crate::machine::AcquireMetadata;

/// Parameters of `List`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageListRequest {
    /// One image by name; none: every image (needs `more`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether to read the image's hostname, machine ID, machine-info and os-release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_metadata: Option<AcquireMetadata>,
    /// polkit's; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
}

/// One image, as `List` replies (the field order of machined's replies).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    /// Its name.
    pub name: String,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `directory`, `subvolume`, `raw` or `block`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `machine`.
    pub class: String,
    /// Whether it is read-only.
    pub read_only: bool,
    /// When it was made (µs since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<u64>,
    /// When it was last changed (µs since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modification_timestamp: Option<u64>,
    /// Bytes used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    /// Bytes used by it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_exclusive: Option<u64>,
    /// Its size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Its exclusive size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_exclusive: Option<u64>,
    /// Its `/etc/hostname` (metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Its `/etc/machine-id` (metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Its `/etc/machine-info`, `KEY=VALUE` each (metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_info: Option<Vec<String>>,
    /// Its os-release, `KEY=VALUE` each (metadata).
    #[serde(rename = "OSRelease", default, skip_serializing_if = "Option::is_none")]
    pub os_release: Option<Vec<String>>,
}

/// Parameters of `Update`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    /// The image.
    pub name: String,
    /// polkit's; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
    /// Its new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Its new read-only flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Its new quota limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Parameters of `Clone`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloneRequest {
    /// The image.
    pub name: String,
    /// polkit's; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
    /// The clone's name.
    pub new_name: String,
    /// Whether the clone is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Parameters of `Remove`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveRequest {
    /// The image.
    pub name: String,
    /// polkit's; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
}

/// Parameters of `SetPoolLimit`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetPoolLimitRequest {
    /// polkit's; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
    /// The pool's new quota limit.
    pub limit: i64,
}

/// Which images `CleanPool` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CleanPoolMode {
    /// Every image not in use (not the host's, not vendor images).
    All,
    /// Only hidden ones (names starting with `.`).
    Hidden,
}

/// Parameters of `CleanPool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanPoolRequest {
    /// polkit's; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_interactive_authentication: Option<bool>,
    /// Which images.
    pub mode: CleanPoolMode,
}

/// One image `CleanPool` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanPoolReply {
    /// Its name.
    pub name: String,
    /// What it used alone, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_exclusive: Option<u64>,
}

wire_errors! {
    /// Errors of `io.systemd.MachineImage`.
    pub enum ImageError in "io.systemd.MachineImage" {
        /// No matching image exists.
        NoSuchImage,
        /// Too many operations are running.
        TooManyOperations,
        /// The operation is not supported (here, or for this image).
        NotSupported,
    }
}
