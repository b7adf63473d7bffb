//! The Varlink protocol as sd-varlink speaks it, without any runtime: usable from the tokio
//! transport ([`crate::varlink`]) and from a plain epoll loop (`supervise`) alike, so every
//! Berth endpoint answers well-formed and malformed calls identically.
//!
//! * [`FrameBuffer`] cuts received bytes into NUL-terminated messages of at most
//!   [`MAX_MESSAGE_SIZE`] bytes.
//! * `envelope` reads a message into a method call (`method`, `parameters`, `more`,
//!   `oneway`); anything else is a [`ProtocolViolation`], and the connection is closed.
//! * [`Endpoint`] holds the interfaces served (parsed from their IDL texts with zlink's IDL
//!   parser), looks each call's method up, checks `more` and the parameters against the IDL
//!   (`validate`), and answers `org.varlink.service` and every error itself; what is left is a
//!   [`Call`] for the service's own handlers.
//! * `encode` writes replies and [`ErrorReply`]s.

mod encode;
mod endpoint;
mod envelope;
mod frame;
mod interfaces;
mod json;
mod validate;

use std::sync::Arc;

use berth_interfaces::Methods;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use encode::{
    ErrorReply, encode_parameters, error_message, push_error, push_reply, reply_message,
};
pub use endpoint::{Answer, Endpoint, Received, ServerInfo};
pub use envelope::ProtocolViolation;
pub use frame::{FrameBuffer, TooLarge};
pub use interfaces::InterfaceSet;

use crate::peer::Peer;

/// The largest message accepted from a client (sd-varlink's limit); a bigger one closes the
/// connection.
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Errors setting up an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// An interface definition did not parse.
    #[error("Interface definition does not parse: {0}")]
    Idl(String),
    /// Two texts declared the same interface.
    #[error("Interface {0} is declared twice")]
    DuplicateInterface(String),
    /// A served method has no handler.
    #[error("Method {0} is served but has no handler")]
    Unhandled(String),
}

/// A validated call of one of the service's own methods.
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

    /// The method as a variant of the method enum `M` of its interface, if it is one.
    pub fn method_of<M: Methods>(&self) -> Option<M> {
        M::from_qualified(&self.method)
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
        decode(&self.parameters).map_err(|field| {
            let field = field.or_else(|| blame::<T>(&self.parameters));
            ErrorReply::invalid_parameter(field.unwrap_or_else(|| "parameters".to_owned()))
        })
    }
}

/// Decodes `parameters` into `T`; on failure, the top-level field the error is about, if the
/// deserializer said.
fn decode<T: DeserializeOwned>(parameters: &Map<String, Value>) -> Result<T, Option<String>> {
    let value = Value::Object(parameters.clone());
    serde_path_to_error::deserialize(value).map_err(|error| {
        error.path().iter().find_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        })
    })
}

/// The field to blame for an error that came without one: errors inside a `#[serde(flatten)]`
/// part (such as the machine lookup fields of `List`) lose their path. It is the first field
/// without which that error goes away.
fn blame<T: DeserializeOwned>(parameters: &Map<String, Value>) -> Option<String> {
    parameters.keys().find_map(|key| {
        let mut without = parameters.clone();
        without.remove(key);
        match decode::<T>(&without) {
            Ok(_) | Err(Some(_)) => Some(key.clone()),
            Err(None) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Lookup {
        #[serde(default)]
        _pid: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    struct Request {
        #[serde(flatten)]
        _lookup: Lookup,
        _count: u8,
    }

    fn call(parameters: Value) -> Call {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        Call {
            method: "org.example.t.M".into(),
            parameters: parameters.as_object().unwrap().clone(),
            more: false,
            oneway: false,
            peer: Arc::new(Peer::of_socket(a.as_fd()).unwrap()),
        }
    }

    fn blamed(parameters: Value) -> Option<String> {
        call(parameters)
            .decode::<Request>()
            .err()
            .map(|e| e.parameters["parameter"].as_str().unwrap().to_owned())
    }

    #[test]
    fn decoding_errors_name_the_field_also_inside_flattened_parts() {
        assert_eq!(blamed(json!({"_count": 1})), None);
        assert_eq!(blamed(json!({"_count": 300})), Some("_count".into()));
        assert_eq!(
            blamed(json!({"_pid": -1, "_count": 1})),
            Some("_pid".into())
        );
        assert_eq!(blamed(json!({})), Some("parameters".into()));
    }
}
