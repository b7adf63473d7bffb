//! `io.systemd.Resolve.Hook`: machine names for systemd-resolved, on a socket of its own.

use std::sync::Arc;

use berth_interfaces::Methods;
use berth_interfaces::machine::MachineClass;
use berth_interfaces::methods::HookMethod;
use berth_interfaces::resolve::{
    Answer, CLASS_IN, QueryFilterReply, RCODE_NXDOMAIN, RCODE_SUCCESS, ResolveRecordReply,
    ResolveRecordRequest, ResourceKey, TYPE_A, TYPE_AAAA,
};
use berth_interfaces::service::SystemError;
use berth_service_runtime::varlink::{Call, HandlerResult, Replier, Service};

use super::machine::decode;
use crate::error::Error;
use crate::machine::Machine;
use crate::manager::{Registry, RegistryEvent};
use crate::network::NetworkError;
use crate::{dns, names};

/// The resolve hook over the registry.
#[derive(Debug)]
pub struct HookService {
    registry: Arc<Registry>,
}

impl HookService {
    /// Serves `registry`'s machine names.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl Service for HookService {
    type Method = HookMethod;

    fn route(method: &str) -> Option<HookMethod> {
        HookMethod::from_qualified(method)
    }

    async fn handle(
        &self,
        method: HookMethod,
        call: Call,
        replier: &mut Replier<'_>,
    ) -> HandlerResult {
        match method {
            HookMethod::QueryFilter => self.query_filter(&call, replier).await,
            HookMethod::ResolveRecord => self.resolve_record(&call, replier).await,
        }
    }
}

impl HookService {
    /// The names of all machines but `.host`; with `more`, again whenever one comes or goes.
    async fn query_filter(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let (machines, mut events) = self.registry.subscribe();
        let mut names: Vec<String> = machines.iter().filter_map(|m| domain(m)).collect();
        if !call.more {
            return replier.reply(&filter(&names)).await;
        }
        replier.notify(&filter(&names)).await?;
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = replier.closed() => return Err(SystemError::Disconnected.into()),
            };
            let changed = match event {
                Ok(RegistryEvent::Added(m)) => domain(&m).map(|name| names.push(name)).is_some(),
                Ok(RegistryEvent::Removed(m)) => {
                    let before = names.len();
                    names.retain(|name| *name != m.name);
                    names.len() != before
                }
                Ok(RegistryEvent::Changed(_)) => false,
                Err(_) => {
                    // Fell behind: start over from the registry as it is now.
                    names = self
                        .registry
                        .snapshot()
                        .iter()
                        .filter_map(|m| domain(m))
                        .collect();
                    true
                }
            };
            if changed {
                replier.notify(&filter(&names)).await?;
            }
        }
    }

    /// Address records for names that are machines; NXDOMAIN below a machine's name; else
    /// nothing, so the lookup goes on elsewhere.
    async fn resolve_record(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let request: ResolveRecordRequest = decode(call)?;
        if request.question.is_empty() {
            return Err(Error::invalid("question").into());
        }
        let (mut found, mut below_machine, mut answer) = (false, false, Vec::new());
        for question in &request.question {
            let key = &question.key;
            if let Some(machine) = self.machine(&key.name) {
                found = true;
                if let Some(family) = address_family(key) {
                    answer.extend(records(&self.registry, &machine, family).await?);
                }
            }
            below_machine |= dns::parents(&key.name).any(|parent| self.machine(parent).is_some());
        }
        let reply = match (found, below_machine) {
            (true, _) => ResolveRecordReply {
                rcode: Some(RCODE_SUCCESS),
                answer: Some(answer),
            },
            (false, true) => ResolveRecordReply {
                rcode: Some(RCODE_NXDOMAIN),
                answer: None,
            },
            (false, false) => ResolveRecordReply::default(),
        };
        replier.reply(&reply).await
    }

    fn machine(&self, name: &str) -> Option<Arc<Machine>> {
        let name = name.trim_end_matches('.');
        if !names::is_valid_machine_name(name) {
            return None;
        }
        self.registry.get(name)
    }
}

/// A machine's name as a domain, for every machine but `.host`.
fn domain(machine: &Machine) -> Option<String> {
    (machine.class != MachineClass::Host).then(|| machine.name.clone())
}

fn filter(names: &[String]) -> QueryFilterReply {
    QueryFilterReply {
        filter_domains: Some(names.to_vec()),
    }
}

/// The address family an A or AAAA key of class IN asks for.
fn address_family(key: &ResourceKey) -> Option<i32> {
    if key.class.is_some_and(|class| class != CLASS_IN) {
        return None;
    }
    match key.rr_type {
        TYPE_A => Some(libc::AF_INET),
        TYPE_AAAA => Some(libc::AF_INET6),
        _ => None,
    }
}

/// A container's addresses of `family` as answer records. VMs and containers without a network
/// namespace of their own have no addresses: their name exists, with no records of this type.
async fn records(
    registry: &Arc<Registry>,
    machine: &Machine,
    family: i32,
) -> Result<Vec<Answer>, Error> {
    if machine.class != MachineClass::Container {
        return Ok(Vec::new());
    }
    let addresses = match registry.addresses(machine).await {
        Ok(addresses) => addresses,
        Err(NetworkError::NoPrivateNetworking) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    Ok(addresses
        .iter()
        .filter(|a| a.family == family)
        .filter_map(|a| dns::answer(&machine.name, a))
        .collect())
}
