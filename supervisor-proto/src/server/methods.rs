//! The control socket's methods: the interfaces served and the route from a qualified method
//! name to the supervisor's handler, dispatched with an exhaustive `match` on the method enums
//! of `berth_interfaces::methods` (checked against the IDL there).

use berth_interfaces::Methods;
use berth_interfaces::idl;
use berth_interfaces::methods::{InstanceMethod, SupervisorMethod};
use berth_interfaces::supervisor::{KillRequest, Whom};
use berth_service_runtime::protocol::{Call, ErrorReply};

/// The interface definitions served on the control socket (with `org.varlink.service`,
/// which the protocol core adds and answers).
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
        InstanceMethod::from_qualified(qualified)
            .map(Self::Instance)
            .or_else(|| SupervisorMethod::from_qualified(qualified).map(Self::Supervisor))
    }
}

/// Whom `io.berth.Supervisor.Kill` signals, and with which signal.
///
/// # Errors
/// `InvalidParameter` naming the field that does not fit (a signal outside 1…64).
pub fn kill_request(call: &Call) -> Result<(Whom, i32), ErrorReply> {
    let request: KillRequest = call.decode()?;
    let signal = berth_os::signal::from_number(request.signal)
        .ok_or_else(|| ErrorReply::invalid_parameter("signal"))?;
    Ok((request.whom, signal))
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

    /// The call `message` makes, or the answer the protocol core gave it.
    fn receive(message: Value) -> Result<Call, Value> {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = Arc::new(Peer::of_socket(a.as_fd()).unwrap());
        match endpoint().receive(message.to_string().as_bytes(), &peer) {
            Ok(Received::Call(call)) => Ok(call),
            Ok(Received::Answer(answer)) => {
                let bytes = answer.message().unwrap();
                Err(serde_json::from_slice(&bytes[..bytes.len() - 1]).unwrap())
            }
            Err(violation) => panic!("{violation}"),
        }
    }

    #[test]
    fn every_served_method_has_a_handler() {
        endpoint()
            .check_handlers(|method| Method::route(method).is_some())
            .unwrap();
        assert_eq!(
            Method::route("io.systemd.MachineInstance.PowerOff"),
            Some(Method::Instance(InstanceMethod::PowerOff))
        );
        assert_eq!(Method::route("io.systemd.Machine.List"), None);
    }

    #[test]
    fn kill_takes_signal_numbers_and_numeric_strings_in_range() {
        let kill = |parameters: Value| {
            let message = json!({"method": "io.berth.Supervisor.Kill", "parameters": parameters});
            kill_request(&receive(message).unwrap())
        };
        assert_eq!(
            kill(json!({"whom": "all", "signal": "15"})),
            Ok((Whom::All, 15))
        );
        assert_eq!(
            kill(json!({"whom": "leader", "signal": 9})),
            Ok((Whom::Leader, 9))
        );
        assert_eq!(
            kill(json!({"whom": "all", "signal": 99})),
            Err(ErrorReply::invalid_parameter("signal"))
        );
    }

    #[test]
    fn bad_calls_get_sd_varlinks_errors() {
        let unknown = receive(json!({"method": "io.systemd.MachineInstance.Explode"}));
        assert_eq!(
            unknown.unwrap_err()["error"],
            "org.varlink.service.MethodNotFound"
        );
        let extra = receive(json!({"method": "io.systemd.MachineInstance.Pause",
            "parameters": {"x": 1}}));
        assert_eq!(extra.unwrap_err()["parameters"]["parameter"], "x");
        let no_more = receive(json!({"method": "io.systemd.MachineInstance.SubscribeEvents"}));
        assert_eq!(
            no_more.unwrap_err()["error"],
            "org.varlink.service.ExpectedMore"
        );
        let bad_whom = receive(json!({"method": "io.berth.Supervisor.Kill",
            "parameters": {"whom": "them", "signal": 9}}));
        assert_eq!(bad_whom.unwrap_err()["parameters"]["parameter"], "whom");
    }
}
