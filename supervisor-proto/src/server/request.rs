//! The control socket's methods as the supervisor handles them: a validated [`Call`] (the
//! protocol core has checked its envelope and parameters against the IDL) becomes a
//! [`Request`], by an exhaustive `match` on the methods of each served interface.

use berth_interfaces::idl;
use berth_interfaces::instance::SubscribeEventsRequest;
use berth_interfaces::methods::{InstanceMethod, SupervisorMethod};
use berth_interfaces::service::VarlinkError;
use berth_interfaces::supervisor::{KillRequest, Whom};
use berth_service_runtime::protocol::{Call, ErrorReply};

/// The interface definitions served on the control socket (with `org.varlink.service`,
/// which the protocol core adds).
pub const INTERFACES: [&str; 2] = [idl::IO_BERTH_SUPERVISOR, idl::IO_SYSTEMD_MACHINE_INSTANCE];

/// A method of the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `io.systemd.MachineInstance`.
    Instance(InstanceMethod),
    /// `io.berth.Supervisor`.
    Supervisor(SupervisorMethod),
}

impl Method {
    /// The method `qualified` names, if the control socket serves it.
    pub fn route(qualified: &str) -> Option<Self> {
        use berth_interfaces::Methods;
        InstanceMethod::from_qualified(qualified)
            .map(Self::Instance)
            .or_else(|| SupervisorMethod::from_qualified(qualified).map(Self::Supervisor))
    }
}

/// A valid request for one of the served methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
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

/// The request `call` makes.
///
/// # Errors
/// `InvalidParameter` naming a field whose value the supervisor cannot take (a signal out of
/// range), or `MethodNotImplemented` for a method the socket does not serve.
pub fn request(call: &Call) -> Result<Request, ErrorReply> {
    let Some(method) = Method::route(call.method()) else {
        return Err(VarlinkError::MethodNotImplemented {
            method: call.method().to_owned(),
        }
        .into());
    };
    Ok(match method {
        Method::Instance(method) => instance(method, call)?,
        Method::Supervisor(SupervisorMethod::Kill) => kill(call.decode()?)?,
        Method::Supervisor(SupervisorMethod::SubscribeChildren) => Request::SubscribeChildren,
    })
}

fn instance(method: InstanceMethod, call: &Call) -> Result<Request, ErrorReply> {
    Ok(match method {
        InstanceMethod::Terminate => Request::Terminate,
        InstanceMethod::PowerOff => Request::PowerOff,
        InstanceMethod::Reboot => Request::Reboot,
        InstanceMethod::Pause => Request::Pause,
        InstanceMethod::Resume => Request::Resume,
        InstanceMethod::Describe => Request::Describe,
        InstanceMethod::SubscribeEvents => {
            let request: SubscribeEventsRequest = call.decode()?;
            Request::SubscribeEvents(request.filter)
        }
        InstanceMethod::AddStorage
        | InstanceMethod::RemoveStorage
        | InstanceMethod::ReplaceStorage => Request::Storage,
    })
}

fn kill(request: KillRequest) -> Result<Request, ErrorReply> {
    let signal = berth_os::signal::from_number(request.signal)
        .ok_or_else(|| ErrorReply::invalid_parameter("signal"))?;
    Ok(Request::Kill {
        whom: request.whom,
        signal,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::sync::Arc;

    use berth_service_runtime::peer::Peer;
    use berth_service_runtime::protocol::{Endpoint, Received, ServerInfo};
    use serde_json::{Value, json};

    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new(ServerInfo::berth("supervise"), &INTERFACES).unwrap()
    }

    fn call(message: Value) -> Result<Request, Value> {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = Arc::new(Peer::of_socket(a.as_fd()).unwrap());
        let received = endpoint()
            .receive(message.to_string().as_bytes(), &peer)
            .expect("a call");
        match received {
            Received::Call(call) => request(&call).map_err(|e| json!(e.name)),
            Received::Answer(answer) => {
                let bytes = answer.message().unwrap();
                Err(serde_json::from_slice(&bytes[..bytes.len() - 1]).unwrap())
            }
        }
    }

    #[test]
    fn every_served_method_has_a_request() {
        endpoint()
            .check_handlers(|method| Method::route(method).is_some())
            .unwrap();
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
        let unknown = call(json!({"method": "io.systemd.MachineInstance.Explode"})).unwrap_err();
        assert_eq!(unknown["error"], "org.varlink.service.MethodNotFound");
        let extra = call(json!({"method": "io.systemd.MachineInstance.Pause",
            "parameters": {"x": 1}}))
        .unwrap_err();
        assert_eq!(extra["parameters"]["parameter"], "x");
        let signal = call(json!({"method": "io.berth.Supervisor.Kill",
            "parameters": {"whom": "all", "signal": 99}}));
        assert_eq!(signal, Err(json!("org.varlink.service.InvalidParameter")));
        let no_more = call(json!({"method": "io.systemd.MachineInstance.SubscribeEvents"}));
        assert_eq!(
            no_more.unwrap_err()["error"],
            "org.varlink.service.ExpectedMore"
        );
    }
}
