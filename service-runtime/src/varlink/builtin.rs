//! `io.systemd.service`, which every server answers itself (`org.varlink.service` is answered
//! by the protocol core).

use berth_interfaces::methods::ServiceMethod;
use berth_interfaces::service::{EnvironmentReply, SetLogLevelRequest, VarlinkError};

use super::config::Shared;
use super::service::Service;
use super::{Call, HandlerResult, Replier};

pub(crate) async fn handle<S: Service>(
    shared: &Shared<S>,
    method: ServiceMethod,
    call: &Call,
    replier: &mut Replier<'_>,
) -> HandlerResult {
    match method {
        ServiceMethod::Ping | ServiceMethod::Reload => Ok(()),
        ServiceMethod::SetLogLevel => set_log_level(shared, call),
        ServiceMethod::GetEnvironment => get_environment(call, replier).await,
    }
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
