//! The Varlink side of the control socket: message envelopes, the served methods and their
//! parameters, and encoded replies.

use berth_interfaces::WireError;
use berth_interfaces::service::VarlinkError;
use berth_interfaces::supervisor::Whom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::params::{self, Field, Kind, optional, required};

/// The interfaces served on the control socket, sorted.
pub const INTERFACES: &[&str] = &[
    "io.berth.Supervisor",
    "io.systemd.MachineInstance",
    "org.varlink.service",
];

/// A method call as it arrived.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The qualified method name.
    pub method: String,
    /// Its parameters.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The caller wants more than one reply.
    #[serde(default)]
    pub more: bool,
    /// The caller wants no reply.
    #[serde(default)]
    pub oneway: bool,
    /// Protocol upgrades are not offered.
    #[serde(default)]
    pub upgrade: bool,
}

/// Decodes one message; `None` for anything that is not a method call, which closes the
/// connection as sd-varlink does.
pub fn parse_call(bytes: &[u8]) -> Option<Call> {
    let call: Call = serde_json::from_slice(bytes).ok()?;
    let violates = call.upgrade || (call.more && call.oneway);
    (!violates).then_some(call)
}

/// A valid request for one of the served methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `org.varlink.service.GetInfo`.
    GetInfo,
    /// `org.varlink.service.GetInterfaceDescription`.
    GetInterfaceDescription(String),
    /// `io.systemd.MachineInstance.Terminate`.
    Terminate,
    /// `io.systemd.MachineInstance.PowerOff`.
    PowerOff,
    /// `io.systemd.MachineInstance.Reboot`.
    Reboot,
    /// `io.systemd.MachineInstance.Pause`.
    Pause,
    /// `io.systemd.MachineInstance.Resume`.
    Resume,
    /// `io.systemd.MachineInstance.Describe`.
    Describe,
    /// `io.systemd.MachineInstance.SubscribeEvents`, with its filter.
    SubscribeEvents(Option<Vec<String>>),
    /// `AddStorage`, `RemoveStorage`, `ReplaceStorage`: not supported.
    Storage,
    /// `io.berth.Supervisor.Kill`.
    Kill {
        /// Whom.
        whom: Whom,
        /// The signal.
        signal: i32,
    },
    /// `io.berth.Supervisor.SubscribeChildren`.
    SubscribeChildren,
}

const INSTANCE: &str = "io.systemd.MachineInstance.";
const INT: Kind = Kind::Int;
const STR: Kind = Kind::Str;

/// The request `call` makes, or the error sd-varlink would answer it with.
///
/// # Errors
/// `MethodNotFound`, `InvalidParameter` naming the field, or `ExpectedMore`.
pub fn request(call: &Call) -> Result<Request, VarlinkError> {
    let parameters = call.parameters.clone().unwrap_or_default();
    let check = |fields: &[Field]| params::check(parameters.clone(), fields);
    let method = call.method.as_str();
    let request = match method {
        "org.varlink.service.GetInfo" => check(&[]).map(|_| Request::GetInfo)?,
        "org.varlink.service.GetInterfaceDescription" => {
            let value = check(&[required("interface", STR)])?;
            Request::GetInterfaceDescription(string_field(&value, "interface"))
        }
        "io.berth.Supervisor.Kill" => kill(check(&KILL)?)?,
        "io.berth.Supervisor.SubscribeChildren" => {
            check(&[])?;
            more(call, Request::SubscribeChildren)?
        }
        "io.systemd.MachineInstance.SubscribeEvents" => {
            let value = check(&[optional("filter", Kind::StrList)])?;
            let filter = serde_json::from_value(value["filter"].clone()).unwrap_or(None);
            more(call, Request::SubscribeEvents(filter))?
        }
        _ if method.starts_with(INSTANCE) => instance(method, check)?,
        _ => return Err(not_found(method)),
    };
    Ok(request)
}

const KILL: [Field; 2] = [
    required("whom", Kind::Enum(&["leader", "all"])),
    required("signal", INT),
];

fn instance(
    method: &str,
    check: impl Fn(&[Field]) -> Result<Value, VarlinkError>,
) -> Result<Request, VarlinkError> {
    let storage_fields: &[Field] = match &method[INSTANCE.len()..] {
        "Terminate" => return check(&[]).map(|_| Request::Terminate),
        "PowerOff" => return check(&[]).map(|_| Request::PowerOff),
        "Reboot" => return check(&[]).map(|_| Request::Reboot),
        "Pause" => return check(&[]).map(|_| Request::Pause),
        "Resume" => return check(&[]).map(|_| Request::Resume),
        "Describe" => return check(&[]).map(|_| Request::Describe),
        "AddStorage" => &[
            required("fileDescriptorIndex", INT),
            required("name", STR),
            optional("config", STR),
        ],
        "RemoveStorage" => &[required("name", STR)],
        "ReplaceStorage" => &[required("fileDescriptorIndex", INT), required("name", STR)],
        _ => return Err(not_found(method)),
    };
    check(storage_fields).map(|_| Request::Storage)
}

fn kill(value: Value) -> Result<Request, VarlinkError> {
    let whom = serde_json::from_value(value["whom"].clone())
        .map_err(|_| VarlinkError::invalid_parameter("whom"))?;
    let signal = value["signal"]
        .as_i64()
        .and_then(|s| i32::try_from(s).ok())
        .filter(|&s| berth_os::signal::is_valid(s))
        .ok_or_else(|| VarlinkError::invalid_parameter("signal"))?;
    Ok(Request::Kill { whom, signal })
}

fn string_field(value: &Value, name: &str) -> String {
    value[name].as_str().unwrap_or_default().to_owned()
}

fn more(call: &Call, request: Request) -> Result<Request, VarlinkError> {
    if call.more {
        Ok(request)
    } else {
        Err(VarlinkError::ExpectedMore)
    }
}

fn not_found(method: &str) -> VarlinkError {
    VarlinkError::MethodNotFound {
        method: method.to_owned(),
    }
}

#[derive(Serialize)]
struct ReplyMessage<'a, P> {
    parameters: &'a P,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    continues: bool,
}

#[derive(Serialize)]
struct ErrorMessage<'a> {
    error: &'a str,
    parameters: Map<String, Value>,
}

/// A reply message with its NUL terminator.
pub fn reply<P: Serialize>(parameters: &P, continues: bool) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&ReplyMessage {
        parameters,
        continues,
    })
    .unwrap_or_else(|_| b"{\"parameters\":{}}".to_vec());
    bytes.push(0);
    bytes
}

/// An error reply message with its NUL terminator.
pub fn error(error: &dyn WireError) -> Vec<u8> {
    let message = ErrorMessage {
        error: error.name(),
        parameters: error.parameters(),
    };
    let mut bytes = serde_json::to_vec(&message).unwrap_or_default();
    bytes.push(0);
    bytes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(message: Value) -> Result<Request, VarlinkError> {
        let call = parse_call(message.to_string().as_bytes()).expect("a call");
        request(&call)
    }

    #[test]
    fn the_served_methods_decode() {
        let kill = json!({"method": "io.berth.Supervisor.Kill",
            "parameters": {"whom": "all", "signal": "15"}});
        assert_eq!(
            call(kill),
            Ok(Request::Kill {
                whom: Whom::All,
                signal: 15
            })
        );
        let subscribe = json!({"method": "io.systemd.MachineInstance.SubscribeEvents",
            "parameters": {"filter": ["exited"]}, "more": true});
        assert_eq!(
            call(subscribe),
            Ok(Request::SubscribeEvents(Some(vec!["exited".into()])))
        );
        let terminate = json!({"method": "io.systemd.MachineInstance.Terminate"});
        assert_eq!(call(terminate), Ok(Request::Terminate));
        let storage = json!({"method": "io.systemd.MachineInstance.RemoveStorage",
            "parameters": {"name": "x"}});
        assert_eq!(call(storage), Ok(Request::Storage));
    }

    #[test]
    fn bad_calls_get_sd_varlinks_errors() {
        let unknown = json!({"method": "io.systemd.MachineInstance.Explode"});
        assert!(
            matches!(call(unknown), Err(VarlinkError::MethodNotFound { method }) if method.ends_with("Explode"))
        );
        let extra = json!({"method": "io.systemd.MachineInstance.Pause", "parameters": {"x": 1}});
        assert_eq!(call(extra), Err(VarlinkError::invalid_parameter("x")));
        let signal = json!({"method": "io.berth.Supervisor.Kill",
            "parameters": {"whom": "all", "signal": 99}});
        assert_eq!(call(signal), Err(VarlinkError::invalid_parameter("signal")));
        let no_more = json!({"method": "io.systemd.MachineInstance.SubscribeEvents"});
        assert_eq!(call(no_more), Err(VarlinkError::ExpectedMore));
    }

    #[test]
    fn envelopes_that_are_not_calls_are_refused() {
        for bad in [
            &b"{nope"[..],
            b"[]",
            b"{}",
            br#"{"method": 1}"#,
            br#"{"method": "a.b", "upgrade": true}"#,
            br#"{"method": "a.b", "more": true, "oneway": true}"#,
            br#"{"method": "a.b", "bogus": 1}"#,
        ] {
            assert!(
                parse_call(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn replies_and_errors_are_nul_terminated_json() {
        assert_eq!(
            reply(&json!({}), true),
            b"{\"parameters\":{},\"continues\":true}\0"
        );
        let e = error(&VarlinkError::ExpectedMore);
        assert_eq!(
            e,
            b"{\"error\":\"org.varlink.service.ExpectedMore\",\"parameters\":{}}\0"
        );
    }
}
