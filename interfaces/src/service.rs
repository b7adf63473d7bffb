//! Wire types of `io.systemd.service`, `io.systemd` and `org.varlink.service`.

use serde::{Deserialize, Serialize};

use crate::errors::wire_errors;

/// Parameters of `io.systemd.service.SetLogLevel`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetLogLevelRequest {
    /// BSD syslog level, 0 (emerg) … 7 (debug).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i64>,
}

/// Reply of `io.systemd.service.GetEnvironment`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EnvironmentReply {
    /// The environment block, `KEY=VALUE` each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<String>>,
}

wire_errors! {
    /// Errors of `io.systemd.service`.
    pub enum ServiceError in "io.systemd.service" {
        /// The environment block is not in a valid state.
        InconsistentEnvironment,
    }
}

wire_errors! {
    /// Errors of `io.systemd`, shared by every systemd interface.
    pub enum SystemError in "io.systemd" {
        /// A system call failed.
        System { errno: i32 },
        /// The peer disconnected.
        Disconnected,
        /// The call timed out.
        TimedOut,
        /// The peer violated the protocol.
        Protocol,
    }
}

/// Reply of `org.varlink.service.GetInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InfoReply {
    /// Vendor of the service.
    pub vendor: String,
    /// Product name.
    pub product: String,
    /// Product version.
    pub version: String,
    /// Web URL.
    pub url: String,
    /// Implemented interfaces, sorted.
    pub interfaces: Vec<String>,
}

/// Reply of `org.varlink.service.GetInterfaceDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InterfaceDescriptionReply {
    /// The interface definition text.
    pub description: String,
}

wire_errors! {
    /// Errors of `org.varlink.service`, sent by every Varlink server.
    pub enum VarlinkError in "org.varlink.service" {
        /// The interface is not served here.
        InterfaceNotFound { interface: String },
        /// The method is not part of the interface.
        MethodNotFound { method: String },
        /// The method is declared but not implemented.
        MethodNotImplemented { method: String },
        /// A parameter is missing, mistyped, unknown or out of range.
        InvalidParameter { parameter: String },
        /// The caller may not do this.
        PermissionDenied,
        /// The method needs the `more` flag.
        ExpectedMore,
    }
}

impl VarlinkError {
    /// `InvalidParameter` for the parameter `name`.
    pub fn invalid_parameter(name: impl Into<String>) -> Self {
        Self::InvalidParameter {
            parameter: name.into(),
        }
    }
}
