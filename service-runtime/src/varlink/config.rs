//! How a server is set up, and what its connections share.

use std::sync::Arc;
use std::time::Duration;

use super::admission::Admission;
use super::trim::Trimmer;
use crate::logging::LogControl;
use crate::protocol::{Endpoint, ServerInfo};

/// How a server is set up.
#[derive(Debug)]
pub struct ServerConfig {
    /// `GetInfo` contents.
    pub info: ServerInfo,
    /// IDL texts of the interfaces served; `org.varlink.service` is always added, and
    /// `io.systemd.service`, when listed, is answered by the server itself.
    pub interfaces: Vec<&'static str>,
    /// Where `io.systemd.service.SetLogLevel` goes.
    pub log: Option<LogControl>,
    /// Most connections served at once (sd-varlink: 4096); an eighth of them is kept for
    /// root and the service's own user.
    pub max_connections: usize,
    /// Most connections of one unprivileged UID at once (sd-varlink: 1024).
    pub max_connections_per_uid: usize,
    /// How long shutdown waits for connections to finish their current call.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// A configuration with sd-varlink's limits.
    pub fn new(info: ServerInfo, interfaces: Vec<&'static str>) -> Self {
        Self {
            info,
            interfaces,
            log: None,
            max_connections: 4096,
            max_connections_per_uid: 1024,
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// What the server and all its connections share.
pub(crate) struct Shared<S> {
    pub(crate) service: S,
    pub(crate) config: ServerConfig,
    pub(crate) endpoint: Endpoint,
    pub(crate) admission: Arc<Admission>,
    pub(crate) trimmer: Trimmer,
}
