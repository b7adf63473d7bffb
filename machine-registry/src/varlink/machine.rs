//! Handlers of `io.systemd.Machine`: decode, look up, authorize, call the core, reply.

use std::sync::Arc;

use berth_interfaces::Methods;
use berth_interfaces::machine::{
    AcquireMetadata, Address, KillRequest, ListRequest, MachineClass, MachineInfo, MachineLookup,
    ProcessId, RegisterRequest, SignalSpec,
};
use berth_interfaces::methods::{ImageMethod, MachineMethod, RegistryMethod};
use berth_service_runtime::peer::Peer;
use berth_service_runtime::varlink::{Call, HandlerResult, Replier, Service};

use crate::error::Error;
use crate::images::Pool;
use crate::machine::Machine;
use crate::manager::{Registry, Removal};
use crate::{enter, kill, lifecycle, metadata, names, register};

/// `io.systemd.Machine` over the registry.
#[derive(Debug)]
pub struct MachineService {
    registry: Arc<Registry>,
    operations: Arc<enter::Operations>,
    pool: Pool,
}

impl MachineService {
    /// Serves `registry` and the image `pool`.
    pub fn new(registry: Arc<Registry>, pool: Pool) -> Self {
        Self {
            registry,
            operations: Arc::default(),
            pool,
        }
    }

    /// The image pool.
    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The copies running now.
    pub(super) fn operations(&self) -> &Arc<enter::Operations> {
        &self.operations
    }

    /// The registry served.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

/// The registry socket's methods: `io.systemd.Machine` and `io.berth.Registry`.
#[derive(Debug, Clone, Copy)]
pub enum RegistryCall {
    /// A method of `io.systemd.Machine`.
    Machine(MachineMethod),
    /// A method of `io.berth.Registry`.
    Berth(RegistryMethod),
    /// A method of `io.systemd.MachineImage`.
    Image(ImageMethod),
}

impl Service for MachineService {
    type Method = RegistryCall;

    fn route(method: &str) -> Option<RegistryCall> {
        MachineMethod::from_qualified(method)
            .map(RegistryCall::Machine)
            .or_else(|| RegistryMethod::from_qualified(method).map(RegistryCall::Berth))
            .or_else(|| ImageMethod::from_qualified(method).map(RegistryCall::Image))
    }

    async fn handle(
        &self,
        method: RegistryCall,
        call: Call,
        replier: &mut Replier<'_>,
    ) -> HandlerResult {
        let method = match method {
            RegistryCall::Berth(RegistryMethod::Watch) => return self.watch(&call, replier).await,
            RegistryCall::Berth(RegistryMethod::ResolveHost) => {
                return self.resolve_host(&call, replier).await;
            }
            RegistryCall::Image(method) => return self.image(method, &call, replier).await,
            RegistryCall::Machine(method) => method,
        };
        let result = match method {
            MachineMethod::Register => self.register(&call, replier).await,
            MachineMethod::Unregister => self.unregister(&call, replier).await,
            MachineMethod::Terminate => self.terminate(&call).await,
            MachineMethod::Kill => self.kill(&call).await,
            MachineMethod::List => return self.list(&call, replier).await,
            MachineMethod::MapFrom => return self.map_from(&call, replier).await,
            MachineMethod::MapTo => return self.map_to(&call, replier).await,
            MachineMethod::OpenRootDirectory => {
                return self.open_root_directory(&call, replier).await;
            }
            MachineMethod::CopyFrom => self.copy(&call, replier, false).await,
            MachineMethod::CopyTo => self.copy(&call, replier, true).await,
            MachineMethod::BindMount => self.bind_mount(&call).await,
            MachineMethod::Open => return self.open(&call, replier).await,
        };
        if let Err(error) = &result {
            let error_chain = berth_service_runtime::error_chain(error);
            if error.is_internal() {
                tracing::warn!(method = call.method(), uid = call.peer.uid, error = %error_chain, "Call failed");
            } else {
                tracing::debug!(method = call.method(), uid = call.peer.uid, error = %error_chain, "Call failed");
            }
        }
        Ok(result?)
    }
}

impl MachineService {
    /// Answers once the machine is indexed, saved and in the host table (all that a caller
    /// can observe), and logs it after.
    async fn register(&self, call: &Call, replier: &mut Replier<'_>) -> Result<(), Error> {
        let request: RegisterRequest = decode(call)?;
        let new = register::prepare(
            request,
            call.parameters(),
            &call.peer,
            self.registry.boot_id(),
        )?;
        let machine = self.registry.add(new, call.peer.is_privileged())?;
        answer(replier).await;
        let (name, leader) = (&machine.name, machine.leader.pid());
        tracing::info!(machine = %name, leader, "New machine {name}, leader PID {leader}");
        Ok(())
    }

    /// Answers once the machine is out of the index, its state file and the host table; logs
    /// it and closes its pidfds (with the last reference) after.
    async fn unregister(&self, call: &Call, replier: &mut Replier<'_>) -> Result<(), Error> {
        let lookup: MachineLookup = decode(call)?;
        let machine = self.manageable(&lookup, &call.peer)?;
        if machine.class == MachineClass::Host {
            return Ok(());
        }
        let removal = Removal::Unregistered;
        let removed = self
            .registry
            .remove(&machine.name, Some(machine.instance), removal);
        answer(replier).await;
        if let Some(machine) = removed {
            let name = &machine.name;
            tracing::info!(machine = %name, ?removal, "Machine {name} gone");
        }
        Ok(())
    }

    async fn terminate(&self, call: &Call) -> Result<(), Error> {
        let lookup: MachineLookup = decode(call)?;
        let machine = self.manageable(&lookup, &call.peer)?;
        if machine.class == MachineClass::Host {
            return Err(Error::System(std::io::Error::from_raw_os_error(
                libc::EOPNOTSUPP,
            )));
        }
        let machine = self
            .registry
            .mark_stopping(&machine.name)
            .unwrap_or(machine);
        let timeout = self.registry.config().terminate_timeout;
        lifecycle::terminate(&self.registry, &machine, timeout).await?;
        Ok(())
    }

    async fn kill(&self, call: &Call) -> Result<(), Error> {
        let request: KillRequest = decode(call)?;
        let signal = signal_number(&request.signal).ok_or(Error::invalid("signal"))?;
        let machine = self.manageable(&request.lookup, &call.peer)?;
        kill::kill(&machine, request.whom.unwrap_or_default(), signal).await?;
        Ok(())
    }

    async fn list(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let request: ListRequest = decode(call)?;
        let metadata = request.acquire_metadata.unwrap_or_default();
        if request.lookup.name.is_some() || request.lookup.pid.is_some() {
            let machine = self.lookup(&request.lookup, &call.peer)?;
            let info = self.describe(&machine, metadata, &call.peer).await?;
            return replier.reply(&info).await;
        }
        if !call.more {
            return Err(Error::ExpectedMore.into());
        }
        let machines = self.registry.snapshot();
        if machines.is_empty() {
            return Err(Error::NoSuchMachine.into());
        }
        for machine in machines {
            let info = self.describe(&machine, metadata, &call.peer).await?;
            replier.push(&info).await?;
        }
        Ok(())
    }

    /// The machine the lookup fields name; both fields must agree when both are given.
    pub(super) fn lookup(
        &self,
        lookup: &MachineLookup,
        peer: &Peer,
    ) -> Result<Arc<Machine>, Error> {
        let by_name = match &lookup.name {
            Some(name) if !names::is_valid_lookup_name(name) => {
                return Err(Error::invalid("name"));
            }
            Some(name) => Some(self.registry.get(name).ok_or(Error::NoSuchMachine)?),
            None => None,
        };
        let by_pid = match &lookup.pid {
            Some(pid) => Some(self.machine_of_process(pid, peer)?),
            None => None,
        };
        match (by_name, by_pid) {
            (Some(a), Some(b)) if a.name != b.name || a.instance != b.instance => {
                Err(Error::NoSuchMachine)
            }
            (Some(machine), _) | (None, Some(machine)) => Ok(machine),
            (None, None) => Err(Error::NoSuchMachine),
        }
    }

    /// `{"pid": 0}` alone means the caller's own process.
    fn machine_of_process(&self, pid: &ProcessId, peer: &Peer) -> Result<Arc<Machine>, Error> {
        let automatic = pid.pid == 0 && pid.pidfd_id.is_none() && pid.boot_id.is_none();
        let pid = match (automatic, pid.pid) {
            (true, _) => peer.pid.ok_or(Error::NoSuchMachine)?,
            (false, 0) => return Err(Error::invalid("pid")),
            (false, pid) => pid,
        };
        self.registry.find_by_pid(pid).ok_or(Error::NoSuchMachine)
    }

    /// Looks up a machine the caller may unregister, terminate or kill: root and the service's
    /// own user may touch any; others only the machines they registered.
    fn manageable(&self, lookup: &MachineLookup, peer: &Peer) -> Result<Arc<Machine>, Error> {
        let machine = self.lookup(lookup, peer)?;
        let owner = machine.class != MachineClass::Host && machine.uid == peer.uid;
        if !(peer.is_privileged() || owner) {
            return Err(Error::PermissionDenied);
        }
        Ok(machine)
    }

    /// The `List` reply, with the metadata asked for. Metadata is read only for root, the
    /// machine's owner, and anyone for `.host`, and then with the caller's own rights.
    async fn describe(
        &self,
        machine: &Arc<Machine>,
        metadata: AcquireMetadata,
        peer: &Peer,
    ) -> Result<MachineInfo, Error> {
        let mut info = machine.info(self.registry.boot_id());
        if metadata == AcquireMetadata::No {
            return Ok(info);
        }
        let graceful = metadata == AcquireMetadata::Graceful;
        let may_inspect =
            peer.is_privileged() || machine.class == MachineClass::Host || machine.uid == peer.uid;
        if !may_inspect {
            return if graceful {
                Ok(info)
            } else {
                Err(Error::PermissionDenied)
            };
        }
        info.addresses = keep(graceful, addresses(&self.registry, machine).await)?;
        let (target, reader) = (Arc::clone(machine), peer.identity());
        let os_release =
            tokio::task::spawn_blocking(move || metadata::os_release(&target, &reader))
                .await
                .map_err(|e| Error::System(std::io::Error::other(e)))?;
        info.os_release = keep(graceful, os_release)?;
        info.uid_shift = keep(graceful, uid_shift(machine))?;
        Ok(info)
    }
}

/// The empty reply of a method without output, sent before the rest of the handler's work.
async fn answer(replier: &mut Replier<'_>) {
    // A failed write marks the connection broken: it is closed once the handler returns.
    let _ = replier.reply(&serde_json::Map::new()).await;
}

/// A metadata value, or — when graceful — nothing instead of the error.
fn keep<T, E: Into<Error>>(graceful: bool, value: Result<T, E>) -> Result<Option<T>, Error> {
    match value {
        Ok(value) => Ok(Some(value)),
        Err(_) if graceful => Ok(None),
        Err(error) => Err(error.into()),
    }
}

async fn addresses(registry: &Arc<Registry>, machine: &Machine) -> Result<Vec<Address>, Error> {
    match machine.class {
        MachineClass::Vm => Err(metadata::MetadataError::NotAvailable.into()),
        _ => Ok(registry.addresses(machine).await?),
    }
}

fn uid_shift(machine: &Machine) -> Result<u32, Error> {
    match machine.class {
        MachineClass::Host => Ok(0),
        MachineClass::Vm => Err(metadata::MetadataError::NotAvailable.into()),
        MachineClass::Container => machine.userns.uid_shift().ok_or(Error::NoUidShift),
    }
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(call: &Call) -> Result<T, Error> {
    call.decode().map_err(|reply| {
        let field = reply.parameters.get("parameter").and_then(|p| p.as_str());
        Error::invalid(field.unwrap_or("parameters"))
    })
}

/// The signal a `Kill` call names, by number or by name (`SIGTERM`, `RTMIN+4`, …).
fn signal_number(spec: &SignalSpec) -> Option<i32> {
    match spec {
        SignalSpec::Number(number) => berth_os::signal::from_number(*number),
        SignalSpec::Name(name) => berth_os::signal::parse(name),
    }
}
