//! A Varlink server that behaves like sd-varlink towards its clients.
//!
//! Why not zlink's `Server`: it serves every connection from one task, drops the connection on
//! a malformed call instead of answering with the error sd-varlink sends, has no notion of a
//! client that went away, and grows messages up to 100 MiB. This server keeps zlink for what it
//! does well (the IDL parser, and the typed client side in `berth-interfaces`) and adds:
//!
//! * one task per connection, so a slow handler or a client that stops reading only ever
//!   stalls itself; connections are capped overall and per UID;
//! * NUL-framed messages of at most 16 MiB ([`MAX_MESSAGE_SIZE`], sd-varlink's limit);
//! * validation of every call against the served IDL before the handler runs
//!   (`validate`), answering `MethodNotFound`, `ExpectedMore` and `InvalidParameter` exactly
//!   as sd-varlink does, with the connection kept open;
//! * `org.varlink.service` and `io.systemd.service` answered here (`builtin`);
//! * streamed replies through a [`Replier`], and clean shutdown.
//!
//! A service implements [`Service::handle`] for the calls of its own interfaces.

mod builtin;
mod connection;
mod interfaces;
mod message;
mod reply;
mod server;
mod validate;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use interfaces::InterfaceSet;
pub use reply::{ErrorReply, HandlerResult, Replier};
pub use server::{Server, ServerConfig, ServerInfo};

use crate::peer::Peer;

/// The largest message accepted from a client; bigger ones close the connection.
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Errors setting up a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An interface definition did not parse.
    #[error("Interface definition does not parse: {0}")]
    Idl(String),
    /// Two texts declared the same interface.
    #[error("Interface {0} is declared twice")]
    DuplicateInterface(String),
}

/// A validated method call to one of the service's interfaces.
#[derive(Debug)]
pub struct Call {
    method: String,
    parameters: Map<String, Value>,
    /// Whether the client set `more`.
    pub more: bool,
    /// Whether the client set `oneway`.
    pub oneway: bool,
    /// The client.
    pub peer: Arc<Peer>,
}

impl Call {
    /// The qualified method name, e.g. `io.systemd.Machine.List`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The interface part of the method name.
    pub fn interface(&self) -> &str {
        self.method
            .rsplit_once('.')
            .map_or("", |(interface, _)| interface)
    }

    /// The method's own name, e.g. `List`.
    pub fn member(&self) -> &str {
        self.method
            .rsplit_once('.')
            .map_or(self.method.as_str(), |(_, member)| member)
    }

    /// The raw (validated) parameters.
    pub fn parameters(&self) -> &Map<String, Value> {
        &self.parameters
    }

    /// Decodes the parameters into the method's typed request.
    ///
    /// # Errors
    /// `InvalidParameter` naming the top-level field whose value does not fit the Rust type
    /// (e.g. a negative PID or a number out of range).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ErrorReply> {
        let value = Value::Object(self.parameters.clone());
        serde_path_to_error::deserialize(value).map_err(|error| {
            let field = error.path().iter().find_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            });
            ErrorReply::invalid_parameter(field.unwrap_or_else(|| "parameters".to_owned()))
        })
    }
}

/// The methods of a service's own interfaces.
pub trait Service: Send + Sync + 'static {
    /// Handles one call that passed IDL validation; replies go through `replier`.
    ///
    /// A handler that returns `Ok(())` without replying answers `{}`.
    fn handle(
        &self,
        call: Call,
        replier: &mut Replier<'_>,
    ) -> impl Future<Output = HandlerResult> + Send;
}
