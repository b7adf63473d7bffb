//! The methods every server answers itself: `org.varlink.service` and `io.systemd.service`.

use berth_interfaces::service::{
    EnvironmentReply, InfoReply, InterfaceDescriptionReply, SetLogLevelRequest, VarlinkError,
};
use serde::Deserialize;

use super::server::Shared;
use super::{Call, HandlerResult, Replier, Service};

/// Interfaces whose methods are answered here rather than by the service.
pub(crate) fn is_builtin(interface: &str) -> bool {
    matches!(interface, "org.varlink.service" | "io.systemd.service")
}

pub(crate) async fn handle<S: Service>(
    shared: &Shared<S>,
    call: Call,
    replier: &mut Replier<'_>,
) -> HandlerResult {
    match call.method() {
        "org.varlink.service.GetInfo" => get_info(shared, replier).await,
        "org.varlink.service.GetInterfaceDescription" => {
            get_interface_description(shared, &call, replier).await
        }
        "io.systemd.service.Ping" | "io.systemd.service.Reload" => Ok(()),
        "io.systemd.service.SetLogLevel" => set_log_level(shared, &call),
        "io.systemd.service.GetEnvironment" => get_environment(&call, replier).await,
        other => Err(VarlinkError::MethodNotImplemented {
            method: other.to_owned(),
        }
        .into()),
    }
}

async fn get_info<S: Service>(shared: &Shared<S>, replier: &mut Replier<'_>) -> HandlerResult {
    let info = &shared.config.info;
    let reply = InfoReply {
        vendor: info.vendor.clone(),
        product: info.product.clone(),
        version: info.version.clone(),
        url: info.url.clone(),
        interfaces: shared.interfaces.names().map(str::to_owned).collect(),
    };
    replier.reply(&reply).await
}

#[derive(Deserialize)]
struct DescriptionRequest {
    interface: String,
}

async fn get_interface_description<S: Service>(
    shared: &Shared<S>,
    call: &Call,
    replier: &mut Replier<'_>,
) -> HandlerResult {
    let request: DescriptionRequest = call.decode()?;
    let Some(interface) = shared.interfaces.interface(&request.interface) else {
        return Err(VarlinkError::InterfaceNotFound {
            interface: request.interface,
        }
        .into());
    };
    let reply = InterfaceDescriptionReply {
        description: interface.text.to_owned(),
    };
    replier.reply(&reply).await
}

fn set_log_level<S: Service>(shared: &Shared<S>, call: &Call) -> HandlerResult {
    if !call.peer.is_privileged() {
        return Err(VarlinkError::PermissionDenied.into());
    }
    let request: SetLogLevelRequest = call.decode()?;
    let level = request
        .level
        .and_then(|level| u8::try_from(level).ok())
        .filter(|level| *level <= 7)
        .ok_or_else(|| VarlinkError::invalid_parameter("level"))?;
    if let Some(log) = &shared.config.log {
        log.set_syslog_level(level);
    }
    Ok(())
}

async fn get_environment(call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
    if !call.peer.is_privileged() {
        return Err(VarlinkError::PermissionDenied.into());
    }
    let environment = std::env::vars_os()
        .map(|(key, value)| format!("{}={}", key.to_string_lossy(), value.to_string_lossy()))
        .collect();
    let reply = EnvironmentReply {
        environment: Some(environment),
    };
    replier.reply(&reply).await
}
