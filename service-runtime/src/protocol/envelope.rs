//! Decoding one incoming message into a method call, with sd-varlink's protocol rules.

use serde_json::{Map, Value};

/// A method call as read off the wire, before validation against the IDL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IncomingCall {
    pub(crate) method: String,
    pub(crate) parameters: Map<String, Value>,
    pub(crate) more: bool,
    pub(crate) oneway: bool,
}

/// Why a message is not a method call at all. The connection is closed, as sd-varlink does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolViolation {
    /// Not JSON.
    #[error("Message is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("Message is not a JSON object")]
    NotAnObject,
    /// No `method`.
    #[error("Message has no method name")]
    NoMethod,
    /// A field that is not part of a call, or of the wrong type.
    #[error("Message field {0:?} is not allowed or has the wrong type")]
    BadField(String),
    /// `more` and `oneway` together.
    #[error("Message asks for both 'more' and 'oneway'")]
    MoreAndOneway,
}

/// Parses the bytes of one message (without its NUL terminator).
pub(crate) fn parse_call(bytes: &[u8]) -> Result<IncomingCall, ProtocolViolation> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ProtocolViolation::Json(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(ProtocolViolation::NotAnObject);
    };
    let mut call = IncomingCall {
        method: String::new(),
        parameters: Map::new(),
        more: false,
        oneway: false,
    };
    let mut method = None;
    for (key, value) in object {
        match (key.as_str(), value) {
            ("method", Value::String(name)) => method = Some(name),
            ("parameters", Value::Object(params)) => call.parameters = params,
            ("parameters", Value::Null) => {}
            ("more", Value::Bool(more)) => call.more = more,
            ("oneway", Value::Bool(oneway)) => call.oneway = oneway,
            // Protocol upgrades are not offered; a client that does not ask for one is fine.
            ("upgrade", Value::Bool(false)) => {}
            (other, _) => return Err(ProtocolViolation::BadField(other.to_owned())),
        }
    }
    call.method = method.ok_or(ProtocolViolation::NoMethod)?;
    if call.more && call.oneway {
        return Err(ProtocolViolation::MoreAndOneway);
    }
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_call_parses() {
        let call = parse_call(br#"{"method":"a.b.C","parameters":{"x":1},"more":true}"#).unwrap();
        assert_eq!(call.method, "a.b.C");
        assert_eq!(call.parameters["x"], 1);
        assert!(call.more && !call.oneway);
        let call = parse_call(br#"{"method":"a.b.C","parameters":null}"#).unwrap();
        assert!(call.parameters.is_empty());
    }

    #[test]
    fn violations_are_told_apart() {
        assert!(matches!(
            parse_call(b"{nope"),
            Err(ProtocolViolation::Json(_))
        ));
        assert_eq!(parse_call(b"[1]"), Err(ProtocolViolation::NotAnObject));
        assert_eq!(parse_call(b"{}"), Err(ProtocolViolation::NoMethod));
        assert_eq!(
            parse_call(br#"{"method":1}"#),
            Err(ProtocolViolation::BadField("method".into()))
        );
        assert_eq!(
            parse_call(br#"{"method":"a.b","parameters":[]}"#),
            Err(ProtocolViolation::BadField("parameters".into()))
        );
        assert_eq!(
            parse_call(br#"{"method":"a.b","upgrade":true}"#),
            Err(ProtocolViolation::BadField("upgrade".into()))
        );
        assert_eq!(
            parse_call(br#"{"method":"a.b","more":true,"oneway":true}"#),
            Err(ProtocolViolation::MoreAndOneway)
        );
    }
}
