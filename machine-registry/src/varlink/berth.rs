//! `io.berth.Registry`: Berth's own extensions for its companions.

use berth_interfaces::machine::MachineClass;
use berth_interfaces::registry::{MachineEvent, MachineSummary, ResolveHostRequest, WatchReply};
use berth_interfaces::service::SystemError;
use berth_service_runtime::varlink::{Call, HandlerResult, Replier};
use tokio::sync::broadcast::error::RecvError;

use super::machine::{MachineService, decode};
use crate::error::Error;
use crate::machine::Machine;
use crate::manager::RegistryEvent;
use crate::{hosts, names};

impl MachineService {
    /// `ResolveHost`: class, and for containers the addresses, from the watched cache.
    pub(super) async fn resolve_host(
        &self,
        call: &Call,
        replier: &mut Replier<'_>,
    ) -> HandlerResult {
        let request: ResolveHostRequest = decode(call)?;
        if !names::is_valid_lookup_name(&request.name) {
            return Err(Error::invalid("name").into());
        }
        let machine = self
            .registry()
            .get(&request.name)
            .ok_or(Error::NoSuchMachine)?;
        let addresses = match machine.class {
            MachineClass::Container => Some(
                self.registry()
                    .addresses(&machine)
                    .await
                    .map_err(Error::from)?,
            ),
            _ => None,
        };
        replier.reply(&hosts::reply(&machine, addresses)).await
    }

    /// `Watch`: the machines present, `synchronized`, then every change until the client hangs
    /// up. A client too slow to keep up is cut off (`ENOBUFS`) and must watch again.
    pub(super) async fn watch(&self, _call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let (machines, mut events) = self.registry().subscribe();
        for machine in &machines {
            replier
                .notify(&reply(MachineEvent::Existing, machine))
                .await?;
        }
        let synchronized = WatchReply {
            event: MachineEvent::Synchronized,
            machine: None,
        };
        replier.notify(&synchronized).await?;
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = replier.closed() => return Err(SystemError::Disconnected.into()),
            };
            let (kind, machine) = match event {
                Ok(RegistryEvent::Added(m)) => (MachineEvent::Added, m),
                Ok(RegistryEvent::Changed(m)) => (MachineEvent::Changed, m),
                Ok(RegistryEvent::Removed(m)) => (MachineEvent::Removed, m),
                Err(RecvError::Lagged(_)) => {
                    return Err(SystemError::System {
                        errno: libc::ENOBUFS,
                    }
                    .into());
                }
                Err(RecvError::Closed) => return Err(SystemError::Disconnected.into()),
            };
            replier.notify(&reply(kind, &machine)).await?;
        }
    }
}

fn reply(event: MachineEvent, machine: &Machine) -> WatchReply {
    WatchReply {
        event,
        machine: Some(summary(machine)),
    }
}

/// The machine as companions see it; maps only for a container's own user namespace.
pub fn summary(machine: &Machine) -> MachineSummary {
    MachineSummary {
        name: machine.name.clone(),
        class: machine.class,
        leader: machine.leader.pid(),
        uid_map: machine.userns.uid_map().map(<[_]>::to_vec),
        gid_map: machine.userns.gid_map().map(<[_]>::to_vec),
    }
}
