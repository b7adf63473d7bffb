//! One served endpoint: its interfaces, and what becomes of each message a client sends.

use std::sync::Arc;

use berth_interfaces::Methods;
use berth_interfaces::methods::VarlinkMethod;
use berth_interfaces::service::{InfoReply, InterfaceDescriptionReply, VarlinkError};
use serde::Deserialize;

use super::encode::{ErrorReply, encode_parameters, push_error, push_reply};
use super::envelope::{IncomingCall, ProtocolViolation, parse_call};
use super::interfaces::InterfaceSet;
use super::validate::validate_inputs;
use super::{Call, ProtocolError};
use crate::peer::Peer;

/// What `org.varlink.service.GetInfo` reports.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Vendor.
    pub vendor: String,
    /// Product.
    pub product: String,
    /// Version.
    pub version: String,
    /// URL.
    pub url: String,
}

impl ServerInfo {
    /// Berth's info for the product `product` (e.g. "Berth machine registry").
    pub fn berth(product: &str) -> Self {
        Self {
            vendor: "Berth".to_owned(),
            product: product.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            url: "https://example.invalid/berth".to_owned(),
        }
    }
}

/// A received message that is a method call.
#[derive(Debug)]
pub enum Received {
    /// A valid call of one of the service's own methods.
    Call(Call),
    /// A call answered here: `org.varlink.service`, or an error (unknown method, missing
    /// `more`, invalid parameters).
    Answer(Answer),
}

/// The one reply to a call that was answered without the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The reply's parameters (JSON text), or the error.
    pub result: Result<Vec<u8>, ErrorReply>,
    /// The caller asked for no reply.
    pub oneway: bool,
}

impl Answer {
    /// The message to send, unless the call was `oneway`.
    pub fn message(&self) -> Option<Vec<u8>> {
        if self.oneway {
            return None;
        }
        let mut out = Vec::new();
        match &self.result {
            Ok(parameters) => push_reply(&mut out, parameters, false),
            Err(error) => push_error(&mut out, error),
        }
        Some(out)
    }
}

/// The interfaces one socket serves (`org.varlink.service` always among them) and what
/// `GetInfo` says about it.
#[derive(Debug)]
pub struct Endpoint {
    info: ServerInfo,
    interfaces: InterfaceSet,
}

impl Endpoint {
    /// Parses the IDL `texts` (`org.varlink.service` is added).
    ///
    /// # Errors
    /// A text does not parse, or two declare the same interface.
    pub fn new(info: ServerInfo, texts: &[&'static str]) -> Result<Self, ProtocolError> {
        let mut texts = texts.to_vec();
        texts.push(VarlinkMethod::IDL);
        Ok(Self {
            info,
            interfaces: InterfaceSet::new(&texts)?,
        })
    }

    /// The interfaces served.
    pub fn interfaces(&self) -> &InterfaceSet {
        &self.interfaces
    }

    /// Checks that `handled` says yes to every method of every interface served (but
    /// `org.varlink.service`, answered here): meant to run when a server is set up, so a
    /// method without a handler stops the service from starting (and fails its tests).
    ///
    /// # Errors
    /// [`ProtocolError::Unhandled`] naming the first method without a handler.
    pub fn check_handlers(&self, handled: impl Fn(&str) -> bool) -> Result<(), ProtocolError> {
        match self
            .interfaces
            .qualified_methods()
            .filter(|method| VarlinkMethod::from_qualified(method).is_none())
            .find(|method| !handled(method))
        {
            Some(method) => Err(ProtocolError::Unhandled(method)),
            None => Ok(()),
        }
    }

    /// What the message `frame` from `peer` is.
    ///
    /// # Errors
    /// The message is not a method call at all: close the connection, as sd-varlink does.
    pub fn receive(&self, frame: &[u8], peer: &Arc<Peer>) -> Result<Received, ProtocolViolation> {
        let incoming = parse_call(frame)?;
        let oneway = incoming.oneway;
        let answer = |result| Received::Answer(Answer { result, oneway });
        Ok(match self.validate(incoming, peer) {
            Ok(call) => match call.method_of::<VarlinkMethod>() {
                Some(method) => answer(self.introspect(method, &call)),
                None => Received::Call(call),
            },
            Err(error) => answer(Err(error)),
        })
    }

    fn validate(&self, incoming: IncomingCall, peer: &Arc<Peer>) -> Result<Call, ErrorReply> {
        let IncomingCall {
            method,
            mut parameters,
            more,
            oneway,
            defect,
        } = incoming;
        if let Some(field) = defect {
            return Err(VarlinkError::invalid_parameter(field).into());
        }
        let Some(spec) = self.interfaces.method(&method) else {
            return Err(VarlinkError::MethodNotFound { method }.into());
        };
        if spec.requires_more() && !more {
            return Err(VarlinkError::ExpectedMore.into());
        }
        validate_inputs(spec, &mut parameters).map_err(VarlinkError::invalid_parameter)?;
        Ok(Call {
            method,
            parameters,
            more,
            oneway,
            peer: Arc::clone(peer),
        })
    }

    /// `org.varlink.service`.
    fn introspect(&self, method: VarlinkMethod, call: &Call) -> Result<Vec<u8>, ErrorReply> {
        match method {
            VarlinkMethod::GetInfo => encode_parameters(&self.info()),
            VarlinkMethod::GetInterfaceDescription => {
                let request: DescriptionRequest = call.decode()?;
                let interface = self.interfaces.interface(&request.interface).ok_or(
                    VarlinkError::InterfaceNotFound {
                        interface: request.interface,
                    },
                )?;
                encode_parameters(&InterfaceDescriptionReply {
                    description: interface.text.to_owned(),
                })
            }
        }
    }

    fn info(&self) -> InfoReply {
        let info = &self.info;
        InfoReply {
            vendor: info.vendor.clone(),
            product: info.product.clone(),
            version: info.version.clone(),
            url: info.url.clone(),
            interfaces: self.interfaces.names().map(str::to_owned).collect(),
        }
    }
}

#[derive(Deserialize)]
struct DescriptionRequest {
    interface: String,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const IDL: &str = "interface org.example.t

method Get(name: string) -> (value: int)

# [Requires 'more' flag]
method Watch() -> (value: int)
";

    fn endpoint() -> Endpoint {
        Endpoint::new(ServerInfo::berth("test"), &[IDL]).unwrap()
    }

    fn me() -> Arc<Peer> {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        Arc::new(Peer::of_socket(std::os::fd::AsFd::as_fd(&a)).unwrap())
    }

    fn answer(message: Value) -> Value {
        match endpoint()
            .receive(message.to_string().as_bytes(), &me())
            .unwrap()
        {
            Received::Answer(answer) => {
                let bytes = answer.message().expect("not oneway");
                serde_json::from_slice(&bytes[..bytes.len() - 1]).unwrap()
            }
            Received::Call(call) => panic!("a call for the service: {call:?}"),
        }
    }

    #[test]
    fn valid_calls_go_to_the_service() {
        let message = json!({"method": "org.example.t.Get", "parameters": {"name": "x"}});
        let received = endpoint()
            .receive(message.to_string().as_bytes(), &me())
            .unwrap();
        let Received::Call(call) = received else {
            panic!("answered")
        };
        assert_eq!(call.method(), "org.example.t.Get");
        assert_eq!(call.parameters()["name"], "x");
    }

    #[test]
    fn introspection_is_answered_here() {
        let info = answer(json!({"method": "org.varlink.service.GetInfo"}));
        assert_eq!(info["parameters"]["vendor"], "Berth");
        assert_eq!(
            info["parameters"]["interfaces"],
            json!(["org.example.t", "org.varlink.service"])
        );
        let description = answer(
            json!({"method": "org.varlink.service.GetInterfaceDescription",
            "parameters": {"interface": "org.example.t"}}),
        );
        assert_eq!(description["parameters"]["description"], IDL);
        let missing = answer(
            json!({"method": "org.varlink.service.GetInterfaceDescription",
            "parameters": {"interface": "org.example.nope"}}),
        );
        assert_eq!(missing["error"], "org.varlink.service.InterfaceNotFound");
    }

    #[test]
    fn bad_calls_get_sd_varlinks_errors() {
        let unknown = answer(json!({"method": "org.example.t.Nope"}));
        assert_eq!(unknown["error"], "org.varlink.service.MethodNotFound");
        assert_eq!(unknown["parameters"]["method"], "org.example.t.Nope");
        let no_more = answer(json!({"method": "org.example.t.Watch"}));
        assert_eq!(no_more["error"], "org.varlink.service.ExpectedMore");
        let bad = answer(json!({"method": "org.example.t.Get", "parameters": {"name": 1}}));
        assert_eq!(bad["error"], "org.varlink.service.InvalidParameter");
        assert_eq!(bad["parameters"]["parameter"], "name");
    }

    #[test]
    fn oneway_calls_get_no_answer_and_non_calls_are_violations() {
        let message = json!({"method": "org.example.t.Nope", "oneway": true});
        let Received::Answer(answer) = endpoint()
            .receive(message.to_string().as_bytes(), &me())
            .unwrap()
        else {
            panic!("a call")
        };
        assert_eq!(answer.message(), None);
        assert!(endpoint().receive(b"[]", &me()).is_err());
    }

    #[test]
    fn every_method_must_have_a_handler() {
        let endpoint = endpoint();
        endpoint.check_handlers(|_| true).unwrap();
        let missing = endpoint
            .check_handlers(|method| method != "org.example.t.Watch")
            .unwrap_err();
        assert!(matches!(missing, ProtocolError::Unhandled(m) if m == "org.example.t.Watch"));
    }
}
