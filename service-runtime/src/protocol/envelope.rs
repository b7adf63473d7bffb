//! Decoding one incoming message into a method call, with sd-varlink's protocol rules.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::json::{Fields, NotAnObject, strict_value};

/// A method call as read off the wire, before validation against the IDL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IncomingCall {
    pub(crate) method: String,
    pub(crate) parameters: Map<String, Value>,
    pub(crate) more: bool,
    pub(crate) oneway: bool,
    /// A field that sd-json would not read (given twice, or holding a number out of range):
    /// the call fails with `InvalidParameter` naming it.
    pub(crate) defect: Option<String>,
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
    let fields = Fields::parse(bytes).map_err(|error| match error {
        NotAnObject::Syntax(error) => ProtocolViolation::Json(error),
        NotAnObject::OtherValue => ProtocolViolation::NotAnObject,
    })?;
    let mut call = IncomingCall {
        method: String::new(),
        parameters: Map::new(),
        more: false,
        oneway: false,
        defect: fields.duplicate,
    };
    let mut method = None;
    for (key, raw) in fields.entries {
        match key.as_str() {
            "method" => method = Some(envelope_field::<String>(&key, raw)?),
            "parameters" if raw.get() == "null" => {}
            "parameters" => parameters(raw, &mut call)?,
            "more" => call.more = envelope_field(&key, raw)?,
            "oneway" => call.oneway = envelope_field(&key, raw)?,
            // Protocol upgrades are not offered; a client that does not ask for one is fine.
            "upgrade" if !envelope_field::<bool>(&key, raw)? => {}
            _ => return Err(ProtocolViolation::BadField(key)),
        }
    }
    call.method = method.ok_or(ProtocolViolation::NoMethod)?;
    if call.more && call.oneway {
        return Err(ProtocolViolation::MoreAndOneway);
    }
    Ok(call)
}

/// A field of the envelope as the type it must have.
fn envelope_field<T: DeserializeOwned>(key: &str, raw: &RawValue) -> Result<T, ProtocolViolation> {
    serde_json::from_str(raw.get()).map_err(|_| ProtocolViolation::BadField(key.to_owned()))
}

/// The parameters object, each field read on its own so that a defect names its field.
fn parameters(raw: &RawValue, call: &mut IncomingCall) -> Result<(), ProtocolViolation> {
    let fields = Fields::parse(raw.get().as_bytes())
        .map_err(|_| ProtocolViolation::BadField("parameters".to_owned()))?;
    let mut defect = fields.duplicate;
    for (key, raw) in fields.entries {
        match strict_value(raw) {
            Ok(value) => {
                call.parameters.insert(key, value);
            }
            Err(_) => {
                defect.get_or_insert(key);
            }
        }
    }
    if call.defect.is_none() {
        call.defect = defect;
    }
    Ok(())
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

    #[test]
    fn duplicate_keys_and_numbers_out_of_range_name_their_field() {
        let defect = |message: &[u8]| parse_call(message).unwrap().defect;
        assert_eq!(defect(br#"{"method":"a.b","parameters":{"n":1}}"#), None);
        assert_eq!(
            defect(br#"{"method":"a.b","parameters":{"name":"x","name":"y"}}"#),
            Some("name".into())
        );
        assert_eq!(
            defect(br#"{"method":"a.b","method":"a.c"}"#),
            Some("method".into())
        );
        assert_eq!(
            defect(br#"{"method":"a.b","parameters":{"ok":1,"pid":1e999999}}"#),
            Some("pid".into())
        );
        assert_eq!(
            defect(br#"{"method":"a.b","parameters":{"pid":{"pid":-1e400}}}"#),
            Some("pid".into())
        );
        assert_eq!(
            defect(br#"{"method":"a.b","parameters":{"x":{"a":1,"a":2}}}"#),
            Some("x".into())
        );
    }
}
