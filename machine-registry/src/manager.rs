//! The registry: every machine, its indices, persistence and lifecycle.
//!
//! All state sits behind one mutex held only for short, non-blocking sections (index updates
//! and the state file write on tmpfs), never across an `.await`. Lookups by name, by leader PID
//! and by cgroup are hash lookups. Every leader's pidfd is watched in one epoll instance
//! ([`LeaderWatch`]), which removes a machine the moment its leader exits.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use berth_interfaces::machine::{Address, MachineClass};
use berth_os::proc;
use berth_os::process::ProcessRef;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

use crate::atomic_dir::AtomicDir;
use crate::cgroup::CgroupRoot;
use crate::hosts::{self, HostTable};
use crate::idmap::UserNamespace;
use crate::in_flight::{Claim, InFlight};
use crate::index::Index;
use crate::lifecycle::{self, LeaderWatch, Registrations};
use crate::machine::Machine;
use crate::names::{self, HOST_MACHINE};
use crate::network::{self, NetworkError, Observed};
use crate::state_file;

/// Events a slow subscriber may fall behind by before it is cut off (and resynchronizes).
const EVENT_BACKLOG: usize = 4096;

/// How the registry is set up.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where state files go (`/run/systemd/machines`).
    pub state_dir: PathBuf,
    /// Where the host table goes, if anywhere (`/run/systemd/machine/berth-hosts`).
    pub host_table: Option<PathBuf>,
    /// Where machine cgroups are made, if anywhere.
    pub cgroup_root: Option<CgroupRoot>,
    /// Whether the synthetic `.host` machine exists (system scope).
    pub host_machine: bool,
    /// Most machines overall (bounded by the descriptors the registry may hold).
    pub max_machines: usize,
    /// Most machines one unprivileged user may register.
    pub max_machines_per_user: usize,
    /// How long `Terminate` waits after SIGTERM before it kills the machine.
    pub terminate_timeout: std::time::Duration,
}

/// A change of the registry, for subscribers. Events are sent while the registry is locked, so
/// subscribers see them in the order the changes happened.
#[derive(Debug, Clone)]
pub enum RegistryEvent {
    /// A machine was registered (or restored at startup).
    Added(Arc<Machine>),
    /// A machine changed (e.g. started stopping, or its user namespace maps were written).
    Changed(Arc<Machine>),
    /// A machine went away (its last state).
    Removed(Arc<Machine>),
}

/// Why a machine left the registry; decides what happens to its own cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// `Unregister`: its processes are left alone; the cgroup goes once it is empty.
    Unregistered,
    /// The leader exited: what is left of the machine is killed.
    Ended,
}

/// Registry failures.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The name is taken.
    #[error("A machine named {0} exists already")]
    Exists(String),
    /// Another machine has the same leader.
    #[error("Process {0} leads another machine already")]
    LeaderTaken(u32),
    /// The registry is full.
    #[error("The registry holds the most machines it can watch")]
    Full,
    /// The user registered too many machines.
    #[error("User {0} registered the most machines a user may")]
    UserQuota(u32),
    /// No cgroup could be made for the machine.
    #[error("Cannot create a cgroup for the machine")]
    Cgroup(#[source] io::Error),
    /// The leader cannot be watched.
    #[error("Cannot watch the machine's leader")]
    Watch(#[source] io::Error),
    /// The state file could not be written.
    #[error("Cannot save the machine's state")]
    Persist(#[source] io::Error),
    /// The leader had exited (a zombie) or exited while the machine was being added.
    #[error("The machine's leader has exited")]
    LeaderExited,
}

/// A machine to add; the registry fills in its instance, unit and cgroup.
#[derive(Debug, Clone)]
pub struct NewMachine {
    /// The machine as validated from the request.
    pub machine: Machine,
    /// Where its own cgroup comes from.
    pub cgroup: CgroupPlan,
}

/// Where a new machine's own cgroup comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPlan {
    /// It has none (its processes are found through the leader's process tree).
    None,
    /// The registry makes one and moves the leader into it (`allocateUnit: true`).
    Allocate,
    /// Its supervisor made this one (as `/proc/PID/cgroup` names it) for the leader: adopt
    /// it if the leader is the only process in it.
    Adopt(String),
}

#[derive(Debug, Default)]
struct State {
    index: Index,
    /// Registrations and removals writing their files outside the lock.
    in_flight: InFlight,
    /// Changes waiting for one in flight to end (only then is the end signalled: a signal
    /// nobody waits for still costs a system call).
    waiting: usize,
    /// Every registration (by instance): its name and the tasks watching it.
    registrations: HashMap<u64, Registration>,
}

#[derive(Debug)]
struct Registration {
    name: String,
    watchers: Vec<AbortHandle>,
}

/// The machine registry.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    boot_id: String,
    host: Option<Arc<Machine>>,
    host_table: Option<Arc<HostTable>>,
    /// The state directory (`config.state_dir`), held open.
    state_dir: AtomicDir,
    leaders: LeaderWatch,
    state: Mutex<State>,
    /// Signalled whenever a change in flight ends.
    settled: Condvar,
    events: broadcast::Sender<RegistryEvent>,
    next_instance: AtomicU64,
}

impl Registry {
    /// An empty registry.
    ///
    /// # Errors
    /// The boot ID or (system scope) PID 1 cannot be read, or leaders cannot be watched.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: RegistryConfig) -> io::Result<Arc<Self>> {
        let state_dir = AtomicDir::open(&config.state_dir)?;
        let host = config
            .host_machine
            .then(host_machine)
            .transpose()?
            .map(Arc::new);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let host_table = config.host_table.as_deref().and_then(open_host_table);
        if let (Some(table), Some(host)) = (&host_table, &host) {
            table.put(&host.name, &hosts::entry(host, Observed::Unknown));
        }
        let registry = Arc::new(Self {
            config,
            boot_id: proc::boot_id()?,
            host,
            host_table,
            state_dir,
            leaders: LeaderWatch::new()?,
            state: Mutex::new(State::default()),
            settled: Condvar::new(),
            events,
            next_instance: AtomicU64::new(1),
        });
        let weak = Arc::downgrade(&registry);
        registry.leaders.report_to(move |instance| {
            if let Some(registry) = weak.upgrade() {
                registry.leader_exited(instance);
            }
        });
        Ok(registry)
    }

    /// The configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The state directory, held open.
    pub fn state_dir(&self) -> &AtomicDir {
        &self.state_dir
    }

    /// This boot's ID (32 hex digits), as `ProcessId.bootId` reports it.
    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    /// Subscribes to registry changes and takes a snapshot of every machine (`.host` first)
    /// in one step, so no change falls between the two.
    pub fn subscribe(&self) -> (Vec<Arc<Machine>>, broadcast::Receiver<RegistryEvent>) {
        let state = self.lock();
        (self.snapshot_of(&state), self.events.subscribe())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The machine called `name` (including `.host`).
    pub fn get(&self, name: &str) -> Option<Arc<Machine>> {
        if name == HOST_MACHINE {
            return self.host.clone();
        }
        self.lock().index.get(name).cloned()
    }

    /// Every machine, `.host` first.
    pub fn snapshot(&self) -> Vec<Arc<Machine>> {
        self.snapshot_of(&self.lock())
    }

    fn snapshot_of(&self, state: &State) -> Vec<Arc<Machine>> {
        let machines = state.index.machines().cloned();
        self.host.iter().cloned().chain(machines).collect()
    }

    /// Number of registered machines (without `.host`).
    pub fn len(&self) -> usize {
        self.lock().index.len()
    }

    /// Whether no machine is registered (`.host` does not count).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The machine `pid` belongs to: the one it leads, or whose cgroup or unit holds it, or
    /// the same for its parent, up to PID 1. Never `.host`.
    pub fn find_by_pid(&self, pid: u32) -> Option<Arc<Machine>> {
        let mut current = pid;
        while current > 1 {
            if let Some(machine) = self.machine_of_process(current) {
                return Some(machine);
            }
            current = proc::parent_pid(current)?;
        }
        None
    }

    fn machine_of_process(&self, pid: u32) -> Option<Arc<Machine>> {
        let led = self.lock().index.led_by(pid).cloned();
        if let Some(machine) = led.filter(|m| m.leader.is_alive()) {
            return Some(machine);
        }
        let cgroup = proc::cgroup_path(pid)?;
        self.lock().index.in_cgroup(&cgroup).cloned()
    }

    /// The container that owns host UID `uid` through its user namespace, and the UID inside.
    pub fn uid_owner(&self, uid: u32) -> Option<(Arc<Machine>, u32)> {
        let state = self.lock();
        state
            .index
            .uid_owner(uid)
            .map(|(m, inside)| (Arc::clone(m), inside))
    }

    /// The container that owns host GID `gid` through its user namespace, and the GID inside.
    pub fn gid_owner(&self, gid: u32) -> Option<(Arc<Machine>, u32)> {
        let state = self.lock();
        state
            .index
            .gid_owner(gid)
            .map(|(m, inside)| (Arc::clone(m), inside))
    }

    /// Adds a machine: checks the name and leader are free and the quotas, makes its cgroup
    /// if asked, saves its state file, indexes it and starts watching its leader.
    ///
    /// # Errors
    /// See [`RegistryError`]; nothing is left behind on failure.
    pub fn add(
        self: &Arc<Self>,
        new: NewMachine,
        privileged: bool,
    ) -> Result<Arc<Machine>, RegistryError> {
        self.insert(new.machine, &new.cgroup, privileged)
    }

    /// Puts a machine read back from its state file into the registry (at startup).
    ///
    /// # Errors
    /// As [`Registry::add`].
    pub fn readd(self: &Arc<Self>, machine: Machine) -> Result<Arc<Machine>, RegistryError> {
        self.insert(machine, &CgroupPlan::None, true)
    }

    fn insert(
        self: &Arc<Self>,
        mut machine: Machine,
        cgroup: &CgroupPlan,
        privileged: bool,
    ) -> Result<Arc<Machine>, RegistryError> {
        // Whether a cgroup can be adopted depends on the cgroup alone: asked before locking.
        if let (CgroupPlan::Adopt(name), Some(root)) = (cgroup, &self.config.cgroup_root) {
            machine.cgroup = root.adopt(name, machine.leader.pid());
        }
        let (machine, claim) = self.claim_registration(machine, cgroup, privileged)?;
        let unit_link = claim.unit.is_some();
        // The files are written outside the lock; the claim keeps their name, leader and unit.
        let persisted = self.persist(&machine, unit_link).and_then(|()| {
            // The watch is armed: a leader gone from here on ends the machine as usual. One that
            // is gone already (a zombie) must not be answered with success.
            if machine.leader.is_alive() {
                return Ok(());
            }
            self.unpersist(&machine, unit_link);
            Err(RegistryError::LeaderExited)
        });
        if persisted.is_ok()
            && let Some(table) = &self.host_table
        {
            table.put(&machine.name, &hosts::entry(&machine, Observed::Unknown));
        }
        let mut state = self.lock();
        claim.release(&mut state);
        if let Err(error) = persisted {
            drop(state);
            if *cgroup == CgroupPlan::Allocate {
                release_cgroup(&machine, Removal::Ended);
            }
            return Err(error);
        }
        state.index.insert(&machine, unit_link);
        self.watch(&mut state, &machine);
        let _ = self.events.send(RegistryEvent::Added(Arc::clone(&machine)));
        Ok(machine)
    }

    /// Decides under the lock whether `machine` may be added (waiting for changes in flight
    /// to its name, leader or unit), makes its cgroup if asked, and claims what its files
    /// will name. The claim's unit is set when the machine gets its unit's `unit:` link.
    fn claim_registration(
        &self,
        mut machine: Machine,
        cgroup: &CgroupPlan,
        privileged: bool,
    ) -> Result<(Arc<Machine>, Held<'_>), RegistryError> {
        let mut state = self.lock();
        let leader = machine.leader.pid();
        while state
            .in_flight
            .conflicts(&machine.name, Some(leader), machine.unit.as_deref())
        {
            state = self.wait_for_settling(state);
        }
        self.check_room(&state, &machine, privileged)?;
        machine.instance = self.next_instance.fetch_add(1, Ordering::Relaxed);
        if *cgroup == CgroupPlan::Allocate {
            self.allocate_cgroup(&mut machine)?;
        }
        let unit_link = machine.owns_unit()
            && machine
                .unit
                .as_ref()
                .is_some_and(|unit| !state.index.has_unit(unit));
        let claim = Claim {
            name: machine.name.clone(),
            leader: Some(leader),
            unit: machine.unit.clone().filter(|_| unit_link),
            registering_uid: Some(machine.uid),
        };
        let claim = Held::take(self, &mut state, claim);
        Ok((Arc::new(machine), claim))
    }

    /// Waits until a change in flight ends (the lock is released meanwhile).
    fn wait_for_settling<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.waiting += 1;
        let mut state = self
            .settled
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
        state.waiting -= 1;
        state
    }

    /// Watches the leader and saves the state file; undoes the first if the second fails.
    fn persist(&self, machine: &Machine, unit_link: bool) -> Result<(), RegistryError> {
        let leader = machine.leader.fd().as_fd();
        self.leaders
            .add(leader, machine.instance)
            .map_err(RegistryError::Watch)?;
        self.save(machine, unit_link).map_err(|error| {
            self.leaders.remove(leader);
            RegistryError::Persist(error)
        })
    }

    /// Undoes [`Registry::persist`].
    fn unpersist(&self, machine: &Machine, unit_link: bool) {
        self.leaders.remove(machine.leader.fd().as_fd());
        self.forget(machine);
        if let (true, Some(unit)) = (unit_link, &machine.unit) {
            let _ = self.state_dir.remove(&unit_link_name(unit));
        }
    }

    fn check_room(
        &self,
        state: &State,
        machine: &Machine,
        privileged: bool,
    ) -> Result<(), RegistryError> {
        if state.index.get(&machine.name).is_some() {
            return Err(RegistryError::Exists(machine.name.clone()));
        }
        let leader = machine.leader.pid();
        let other = state.index.led_by(leader);
        if other.is_some_and(|other| other.leader.is_alive()) {
            return Err(RegistryError::LeaderTaken(leader));
        }
        if state.index.len() + state.in_flight.registrations() >= self.config.max_machines {
            return Err(RegistryError::Full);
        }
        let mine =
            state.index.count_of_user(machine.uid) + state.in_flight.registrations_of(machine.uid);
        if !privileged && mine >= self.config.max_machines_per_user {
            return Err(RegistryError::UserQuota(machine.uid));
        }
        Ok(())
    }

    fn allocate_cgroup(&self, machine: &mut Machine) -> Result<(), RegistryError> {
        let root =
            self.config.cgroup_root.as_ref().ok_or_else(|| {
                RegistryError::Cgroup(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
            })?;
        let unit = format!("machine-{}.scope", names::escape_unit_name(&machine.name));
        let cgroup = root
            .create(&unit, &machine.leader)
            .map_err(RegistryError::Cgroup)?;
        machine.unit = Some(unit);
        machine.subgroup = None;
        machine.cgroup = Some(cgroup);
        Ok(())
    }

    fn save(&self, machine: &Machine, unit_link: bool) -> io::Result<()> {
        let dir = &self.state_dir;
        dir.write_atomic(&machine.name, &state_file::format(&machine.state_entries()))?;
        if let (true, Some(unit)) = (unit_link, &machine.unit)
            && let Err(error) = dir.symlink(&machine.name, &unit_link_name(unit))
        {
            // No machine half saved: the state file goes with the failed link.
            let _ = dir.remove(&machine.name);
            return Err(error);
        }
        Ok(())
    }

    /// Records the registration, with the tasks watching its controller and user namespace
    /// (if any; its leader is in the leader watch already).
    fn watch(self: &Arc<Self>, state: &mut State, machine: &Arc<Machine>) {
        let controller = lifecycle::watch_controller(Arc::clone(self), Arc::clone(machine));
        let userns = lifecycle::watch_userns(Arc::clone(self), Arc::clone(machine));
        let registration = Registration {
            name: machine.name.clone(),
            watchers: controller.into_iter().chain(userns).collect(),
        };
        state.registrations.insert(machine.instance, registration);
    }

    /// The leader of registration `instance` exited: the machine ends.
    fn leader_exited(&self, instance: u64) {
        let name = self
            .lock()
            .registrations
            .get(&instance)
            .map(|r| r.name.clone());
        let removal = Removal::Ended;
        if let Some(machine) = name.and_then(|name| self.remove(&name, Some(instance), removal)) {
            let name = &machine.name;
            tracing::info!(machine = %name, ?removal, "Machine {name} gone");
        }
    }

    /// Removes the machine `name` (only the registration `instance`, if given): drops it from
    /// the indices, deletes its state file, stops watching it, and takes care of its cgroup.
    pub fn remove(
        &self,
        name: &str,
        instance: Option<u64>,
        removal: Removal,
    ) -> Option<Arc<Machine>> {
        let mut state = self.lock();
        let machine = Arc::clone(state.index.get(name)?);
        if instance.is_some_and(|i| i != machine.instance) {
            return None;
        }
        let owned_unit = state.index.remove(&machine);
        let registration = state.registrations.remove(&machine.instance);
        for watcher in registration.into_iter().flat_map(|r| r.watchers) {
            watcher.abort();
        }
        // Its files are removed outside the lock; the claim keeps a new machine of the same
        // name, or with the same unit, from writing its own meanwhile.
        let claim = Claim {
            name: machine.name.clone(),
            leader: None,
            unit: owned_unit,
            registering_uid: None,
        };
        let claim = Held::take(self, &mut state, claim);
        let _ = self
            .events
            .send(RegistryEvent::Removed(Arc::clone(&machine)));
        drop(state);
        if let Some(unit) = &claim.unit {
            let _ = self.state_dir.remove(&unit_link_name(unit));
        }
        self.leaders.remove(machine.leader.fd().as_fd());
        self.forget(&machine);
        if let Some(table) = &self.host_table {
            table.remove(&machine.name);
        }
        claim.release(&mut self.lock());
        release_cgroup(&machine, removal);
        Some(machine)
    }

    fn forget(&self, machine: &Machine) {
        if let Err(error) = self.state_dir.remove(&machine.name) {
            tracing::warn!(machine = %machine.name, %error, "Cannot remove state file, ignoring");
        }
    }

    /// Marks the machine as stopping and saves that; returns the updated machine.
    pub fn mark_stopping(&self, name: &str) -> Option<Arc<Machine>> {
        self.update(name, None, |machine| machine.stopping = true)
    }

    /// Records that the user namespace of registration `instance` of `name` now reads `userns`.
    pub fn set_userns(
        &self,
        name: &str,
        instance: u64,
        userns: UserNamespace,
    ) -> Option<Arc<Machine>> {
        self.update(name, Some(instance), |machine| machine.userns = userns)
    }

    /// Changes a machine (only registration `instance`, if given), saves and announces it.
    fn update(
        &self,
        name: &str,
        instance: Option<u64>,
        change: impl FnOnce(&mut Machine),
    ) -> Option<Arc<Machine>> {
        let mut state = self.lock();
        let current = state.index.get(name)?;
        if instance.is_some_and(|i| i != current.instance) {
            return None;
        }
        let mut updated = Machine::clone(current);
        change(&mut updated);
        let updated = Arc::new(updated);
        if let Err(error) = self.save(&updated, false) {
            tracing::warn!(machine = %name, %error, "Cannot save state, ignoring");
        }
        state.index.replace(&updated);
        let _ = self
            .events
            .send(RegistryEvent::Changed(Arc::clone(&updated)));
        Some(updated)
    }
}

impl Registrations for Registry {
    fn is_current(&self, name: &str, instance: u64) -> bool {
        let state = self.lock();
        state
            .index
            .get(name)
            .is_some_and(|m| m.instance == instance)
    }

    fn record_userns(&self, name: &str, instance: u64, userns: UserNamespace) {
        self.set_userns(name, instance, userns);
    }
}

impl Registry {
    /// The machine's addresses (see [`network::addresses`]); the host table follows what
    /// the watch they come from sees.
    ///
    /// # Errors
    /// As [`network::addresses`].
    pub async fn addresses(
        self: &Arc<Self>,
        machine: &Machine,
    ) -> Result<Vec<Address>, NetworkError> {
        let publisher = || -> network::Publish {
            let registry = Arc::downgrade(self);
            let (name, instance) = (machine.name.clone(), machine.instance);
            Box::new(move |observed: Observed<'_>| {
                if let Some(registry) = registry.upgrade() {
                    registry.publish(&name, instance, observed);
                }
            })
        };
        let (cell, leader) = (&machine.network, &machine.leader);
        network::addresses(cell, leader, machine.class, publisher).await
    }

    /// Puts what is known of the addresses of registration `instance` of `name` into the host
    /// table, if that registration is still current.
    fn publish(&self, name: &str, instance: u64, observed: Observed<'_>) {
        let Some(table) = &self.host_table else {
            return;
        };
        let state = self.lock();
        // Only a container's entry depends on its addresses (`.host` is not in the index).
        let current = state
            .index
            .get(name)
            .filter(|m| m.instance == instance && m.class == MachineClass::Container);
        if let Some(machine) = current {
            table.put(name, &hosts::entry(machine, observed));
        }
    }

    /// Vouches for the host table from now on (once the machines of the previous run are back).
    pub fn vouch_for_host_table(&self) {
        if let Some(table) = &self.host_table {
            table.vouch();
        }
    }
}

fn open_host_table(dir: &std::path::Path) -> Option<Arc<HostTable>> {
    match HostTable::open(dir) {
        Ok(table) => Some(Arc::new(table)),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "Cannot keep a host table, lookups ask the registry");
            None
        }
    }
}

/// The name of machined's index of machines by unit: `unit:UNIT`, a symbolic link to the state
/// file of the machine that owns the unit.
fn unit_link_name(unit: &str) -> String {
    format!("unit:{unit}")
}

/// After a machine left: its own cgroup goes, killed first if the machine ended.
fn release_cgroup(machine: &Machine, removal: Removal) {
    let Some(cgroup) = machine.cgroup.clone() else {
        return;
    };
    if removal == Removal::Unregistered && !cgroup.is_owned() {
        // An adopted cgroup stays to its maker, and nothing in it is killed.
        return;
    }
    let name = machine.name.clone();
    tokio::spawn(async move {
        let result = match removal {
            Removal::Ended => cgroup.destroy().await,
            Removal::Unregistered => cgroup.release().await,
        };
        if let Err(error) = result {
            tracing::warn!(machine = %name, %error, "Cannot remove the machine's cgroup, ignoring");
        }
    });
}

/// The synthetic `.host` machine: PID 1, the host's machine ID and os-release, registered by
/// root at boot.
fn host_machine() -> io::Result<Machine> {
    let id = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .and_then(|id| names::parse_id128(id.trim()).ok().flatten());
    Ok(Machine {
        name: HOST_MACHINE.to_owned(),
        instance: 0,
        id,
        class: MachineClass::Host,
        service: None,
        root_directory: Some("/".to_owned()),
        unit: Some("-.slice".to_owned()),
        subgroup: None,
        cgroup: None,
        leader: ProcessRef::open(1)?,
        supervisor: None,
        timestamp: crate::machine::boot_time(),
        netif: Vec::new(),
        vsock_cid: None,
        ssh_address: None,
        ssh_private_key_path: None,
        control_address: None,
        userns: UserNamespace::Host,
        network: Default::default(),
        uid: 0,
        stopping: false,
    })
}

/// A claim in [`InFlight`], taken under the lock and ended by [`Held::release`] under the lock
/// the change commits with, or else when dropped (a panic on the way must not leave a name
/// claimed for good: every later change of it would wait forever).
struct Held<'a> {
    registry: &'a Registry,
    claim: Claim,
    released: bool,
}

impl<'a> Held<'a> {
    fn take(registry: &'a Registry, state: &mut State, claim: Claim) -> Self {
        state.in_flight.claim(&claim);
        Self {
            registry,
            claim,
            released: false,
        }
    }

    /// Ends the claim, waking the changes that wait for it (a signal nobody waits for would
    /// still cost a system call).
    fn release(mut self, state: &mut State) {
        self.release_in(state);
    }

    fn release_in(&mut self, state: &mut State) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        state.in_flight.release(&self.claim);
        if state.waiting > 0 {
            self.registry.settled.notify_all();
        }
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = Claim;

    fn deref(&self) -> &Claim {
        &self.claim
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.released {
            let registry = self.registry;
            self.release_in(&mut registry.lock());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_claim_dropped_by_a_panic_is_released_and_wakes_its_waiters() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(RegistryConfig {
            state_dir: dir.path().join("machines"),
            host_table: None,
            cgroup_root: None,
            host_machine: false,
            max_machines: 8,
            max_machines_per_user: 8,
            terminate_timeout: std::time::Duration::from_secs(1),
        })
        .unwrap();
        let claim = Claim {
            name: "x".to_owned(),
            leader: Some(10),
            unit: Some("x.scope".to_owned()),
            registering_uid: Some(1000),
        };
        let held = Held::take(&registry, &mut registry.lock(), claim);
        let waiter = {
            let registry = Arc::clone(&registry);
            std::thread::spawn(move || {
                let mut state = registry.lock();
                while state.in_flight.conflicts("x", None, None) {
                    state = registry.wait_for_settling(state);
                }
            })
        };
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = held;
            panic!("a bug on the way");
        }));
        assert!(panicked.is_err());
        waiter.join().unwrap();
        let state = registry.lock();
        assert!(!state.in_flight.conflicts("x", Some(10), Some("x.scope")));
        assert_eq!(state.in_flight.registrations(), 0);
    }
}
