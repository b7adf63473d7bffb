//! Properties of what an endpoint makes of a message, shared by the `envelope` and `validate`
//! targets.

use berth_interfaces::{image, instance, machine, registry, resolve, service, supervisor, userdb};
use berth_service_runtime::protocol::{Answer, Call, Endpoint, Received};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::served::peer;

const INVALID_PARAMETER: &str = "org.varlink.service.InvalidParameter";

/// The message a client sends for a call.
pub fn message(method: &str, parameters: &Map<String, Value>, more: bool, oneway: bool) -> Vec<u8> {
    let mut message = Map::new();
    message.insert("method".into(), method.into());
    message.insert("parameters".into(), Value::Object(parameters.clone()));
    if more {
        message.insert("more".into(), true.into());
    }
    if oneway {
        message.insert("oneway".into(), true.into());
    }
    serde_json::to_vec(&message).expect("a map serializes")
}

/// An answer is one NUL-terminated JSON object (none for `oneway`): a reply with parameters,
/// or an error with a name and parameters; `InvalidParameter` names a parameter.
///
/// Returns the error name and the parameter it names, if any.
pub fn answer(answer: &Answer) -> Option<(String, Option<String>)> {
    let message = answer.message();
    assert_eq!(
        message.is_none(),
        answer.oneway,
        "a oneway call was answered"
    );
    let message = message?;
    let (body, nul) = message.split_at(message.len() - 1);
    assert_eq!(nul, b"\0", "an answer is NUL-terminated");
    assert!(!body.contains(&0), "an answer holds one message");
    let value: Value = serde_json::from_slice(body).expect("an answer is JSON");
    let object = value.as_object().expect("an answer is an object");
    assert!(object["parameters"].is_object(), "{object:?}");
    let error = object.get("error")?;
    let name = error.as_str().expect("an error has a name").to_owned();
    let parameter = (name == INVALID_PARAMETER).then(|| {
        object["parameters"]["parameter"]
            .as_str()
            .expect("InvalidParameter names the parameter")
            .to_owned()
    });
    Some((name, parameter))
}

/// A call handed to a service: one of its own methods (never `org.varlink.service`), and its
/// parameters, sent again, are accepted again unchanged (validation is idempotent: what it
/// normalizes, such as numeric strings in `int` fields, stays valid).
pub fn call(endpoint: &Endpoint, call: &Call) {
    assert!(
        !call.method().starts_with("org.varlink.service."),
        "introspection went to the service"
    );
    assert!(
        !(call.more && call.oneway),
        "a call with both 'more' and 'oneway'"
    );
    let again = message(call.method(), call.parameters(), call.more, call.oneway);
    match endpoint.receive(&again, peer()) {
        Ok(Received::Call(second)) => {
            assert_eq!(second.method(), call.method());
            assert_eq!(
                second.parameters(),
                call.parameters(),
                "validation changed accepted parameters"
            );
            assert_eq!((second.more, second.oneway), (call.more, call.oneway));
        }
        Ok(Received::Answer(answer)) => {
            panic!("accepted parameters are refused when sent again: {answer:?}")
        }
        Err(violation) => panic!("a call sent again is a protocol violation: {violation}"),
    }
}

/// Decodes an accepted call into the typed request its service decodes it into, and checks
/// that result (see [`typed`]).
pub fn decode(endpoint: &Endpoint, call: &Call) {
    match call.method() {
        "io.systemd.Machine.Register" => typed::<machine::RegisterRequest>(endpoint, call),
        "io.systemd.Machine.Unregister" | "io.systemd.Machine.Terminate" => {
            typed::<machine::MachineLookup>(endpoint, call)
        }
        "io.systemd.Machine.Kill" => typed::<machine::KillRequest>(endpoint, call),
        "io.systemd.Machine.List" => typed::<machine::ListRequest>(endpoint, call),
        "io.systemd.Machine.MapFrom" => typed::<machine::MapFromRequest>(endpoint, call),
        "io.systemd.Machine.MapTo" => typed::<machine::MappedIds>(endpoint, call),
        "io.systemd.Machine.OpenRootDirectory" => typed::<machine::MachineLookup>(endpoint, call),
        "io.systemd.Machine.Open" => typed::<machine::OpenRequest>(endpoint, call),
        "io.systemd.Machine.BindMount" => typed::<machine::BindMountRequest>(endpoint, call),
        "io.systemd.Machine.CopyFrom" | "io.systemd.Machine.CopyTo" => {
            typed::<machine::CopyRequest>(endpoint, call)
        }
        "io.systemd.MachineImage.List" => typed::<image::ImageListRequest>(endpoint, call),
        "io.systemd.MachineImage.Update" => typed::<image::UpdateRequest>(endpoint, call),
        "io.systemd.MachineImage.Clone" => typed::<image::CloneRequest>(endpoint, call),
        "io.systemd.MachineImage.Remove" => typed::<image::RemoveRequest>(endpoint, call),
        "io.systemd.MachineImage.SetPoolLimit" => {
            typed::<image::SetPoolLimitRequest>(endpoint, call)
        }
        "io.systemd.MachineImage.CleanPool" => typed::<image::CleanPoolRequest>(endpoint, call),
        "io.berth.Registry.ResolveHost" => typed::<registry::ResolveHostRequest>(endpoint, call),
        "io.systemd.Resolve.Hook.ResolveRecord" => {
            typed::<resolve::ResolveRecordRequest>(endpoint, call)
        }
        "io.systemd.UserDatabase.GetUserRecord" => {
            typed::<userdb::UserRecordRequest>(endpoint, call)
        }
        "io.systemd.UserDatabase.GetGroupRecord" => {
            typed::<userdb::GroupRecordRequest>(endpoint, call)
        }
        "io.systemd.UserDatabase.GetMemberships" => {
            typed::<userdb::MembershipsRequest>(endpoint, call)
        }
        "io.systemd.MachineInstance.SubscribeEvents" => {
            typed::<instance::SubscribeEventsRequest>(endpoint, call)
        }
        "io.berth.Supervisor.Kill" => typed::<supervisor::KillRequest>(endpoint, call),
        "io.systemd.service.SetLogLevel" => typed::<service::SetLogLevelRequest>(endpoint, call),
        _ => {}
    }
}

/// The typed request of a valid call either decodes, and then, encoded again, is a valid call
/// that decodes to the same request; or it fails with `InvalidParameter` naming a parameter
/// the caller sent (never the catch-all "parameters": the IDL and the Rust type agree on which
/// fields exist).
pub fn typed<T>(endpoint: &Endpoint, call: &Call)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    match call.decode::<T>() {
        Ok(request) => {
            let Value::Object(parameters) =
                serde_json::to_value(&request).expect("a request serializes")
            else {
                panic!("a request is not an object: {request:?}")
            };
            let again = message(call.method(), &parameters, call.more, call.oneway);
            match endpoint.receive(&again, peer()) {
                Ok(Received::Call(second)) => {
                    assert_eq!(second.decode::<T>().ok().as_ref(), Some(&request))
                }
                other => panic!("{request:?}, encoded again, is refused: {other:?}"),
            }
        }
        Err(error) => {
            assert_eq!(error.name, INVALID_PARAMETER);
            let parameter = error.parameters["parameter"].as_str().unwrap_or_default();
            assert!(
                call.parameters().contains_key(parameter),
                "decoding {} blames {parameter:?}, which was not sent: {:?}",
                call.method(),
                call.parameters()
            );
        }
    }
}
