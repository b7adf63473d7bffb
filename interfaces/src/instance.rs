//! Wire types of `io.systemd.MachineInstance` (`idl/io.systemd.MachineInstance.varlink`), the
//! interface a machine's `controlAddress` serves.

use serde::{Deserialize, Serialize};

use crate::errors::wire_errors;

/// Reply of `Describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeReply {
    /// True iff the machine runs.
    pub running: bool,
    /// Backend state (`running`, `paused`, `shutdown`, …; `unknown` if unavailable).
    pub status: String,
}

/// Parameters of `SubscribeEvents`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubscribeEventsRequest {
    /// Only these events; `None` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Vec<String>>,
}

/// One reply of `SubscribeEvents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventReply {
    /// Name of the event.
    pub event: String,
    /// Event-specific payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
}

wire_errors! {
    /// Errors of `io.systemd.MachineInstance`.
    pub enum InstanceError in "io.systemd.MachineInstance" {
        /// The connection to the machine backend is not available.
        NotConnected,
        /// The requested operation is not supported.
        NotSupported,
        /// The named storage binding does not exist.
        NoSuchStorage,
        /// A storage binding with this name exists already.
        StorageExists,
        /// The storage binding cannot be detached at runtime.
        StorageImmutable,
        /// The `config` value is not valid for this backend.
        BadConfig,
        /// The `config` value is recognized but not supported by this backend.
        ConfigNotSupported,
    }
}
