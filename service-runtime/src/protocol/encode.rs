//! Writing messages: replies (final or `continues`) and error replies, NUL-terminated.

use berth_interfaces::WireError;
use berth_interfaces::service::{SystemError, VarlinkError};
use serde::Serialize;
use serde_json::{Map, Value};

/// An error reply: a qualified Varlink error name and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    /// The qualified error name.
    pub name: String,
    /// The error parameters.
    pub parameters: Map<String, Value>,
}

impl<E: WireError> From<E> for ErrorReply {
    fn from(error: E) -> Self {
        Self {
            name: error.name().to_owned(),
            parameters: error.parameters(),
        }
    }
}

impl ErrorReply {
    /// `org.varlink.service.InvalidParameter` for `parameter`.
    pub fn invalid_parameter(parameter: impl Into<String>) -> Self {
        VarlinkError::invalid_parameter(parameter).into()
    }

    /// `io.systemd.System` with `errno`.
    pub fn errno(errno: i32) -> Self {
        SystemError::System { errno }.into()
    }
}

/// The parameters of a reply as JSON text, ready for [`push_reply`].
///
/// # Errors
/// `io.systemd.System` `EINVAL` when the value does not serialize (a bug, logged by the
/// caller's transport).
pub fn encode_parameters<P: Serialize + ?Sized>(parameters: &P) -> Result<Vec<u8>, ErrorReply> {
    serde_json::to_vec(parameters).map_err(|_| ErrorReply::errno(libc::EINVAL))
}

/// Appends a reply message carrying `parameters` (JSON text from [`encode_parameters`]) to
/// `out`, marked `continues` when more replies follow.
pub fn push_reply(out: &mut Vec<u8>, parameters: &[u8], continues: bool) {
    // `parameters` is JSON that serde_json wrote, so splicing it in keeps the message valid.
    out.extend_from_slice(b"{\"parameters\":");
    out.extend_from_slice(parameters);
    out.extend_from_slice(if continues {
        b",\"continues\":true}\0"
    } else {
        b"}\0"
    });
}

/// Appends an error reply message to `out`.
pub fn push_error(out: &mut Vec<u8>, error: &ErrorReply) {
    #[derive(Serialize)]
    struct ErrorMessage<'a> {
        error: &'a str,
        parameters: &'a Map<String, Value>,
    }
    let message = ErrorMessage {
        error: &error.name,
        parameters: &error.parameters,
    };
    // A map of JSON values and a string always serialize.
    if serde_json::to_writer(&mut *out, &message).is_ok() {
        out.push(0);
    }
}

/// A whole reply message for `parameters`; an error message if they do not serialize.
pub fn reply_message<P: Serialize + ?Sized>(parameters: &P, continues: bool) -> Vec<u8> {
    let mut out = Vec::new();
    match encode_parameters(parameters) {
        Ok(encoded) => push_reply(&mut out, &encoded, continues),
        Err(error) => push_error(&mut out, &error),
    }
    out
}

/// A whole error reply message.
pub fn error_message(error: &ErrorReply) -> Vec<u8> {
    let mut out = Vec::new();
    push_error(&mut out, error);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn replies_and_errors_are_nul_terminated_json() {
        assert_eq!(
            reply_message(&json!({}), true),
            b"{\"parameters\":{},\"continues\":true}\0"
        );
        assert_eq!(
            reply_message(&json!({"a": 1}), false),
            b"{\"parameters\":{\"a\":1}}\0"
        );
        assert_eq!(
            error_message(&VarlinkError::ExpectedMore.into()),
            b"{\"error\":\"org.varlink.service.ExpectedMore\",\"parameters\":{}}\0"
        );
        assert_eq!(
            error_message(&ErrorReply::invalid_parameter("x")),
            b"{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"x\"}}\0"
        );
    }
}
