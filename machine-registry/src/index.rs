//! The registry's indices: every lookup the methods need is a hash or ordered-map lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use berth_interfaces::machine::MachineClass;
use berth_interfaces::registry::IdMapping;

use crate::machine::{self, Machine};

/// Machines by name, leader PID, cgroup, exclusive unit, owner UID, and host ID range.
#[derive(Debug, Default)]
pub struct Index {
    machines: HashMap<String, Arc<Machine>>,
    by_leader: HashMap<u32, String>,
    by_cgroup: HashMap<String, String>,
    by_unit: HashMap<String, String>,
    per_uid: HashMap<u32, usize>,
    uid_ranges: IdRanges,
    gid_ranges: IdRanges,
}

/// Host ID ranges of user namespaces: (first host ID, machine) → the map line.
type IdRanges = BTreeMap<(u32, String), IdMapping>;

impl Index {
    /// The machine called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Machine>> {
        self.machines.get(name)
    }

    /// Every machine.
    pub fn machines(&self) -> impl Iterator<Item = &Arc<Machine>> {
        self.machines.values()
    }

    /// Number of machines.
    pub fn len(&self) -> usize {
        self.machines.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// The machine led by `pid`.
    pub fn led_by(&self, pid: u32) -> Option<&Arc<Machine>> {
        self.machines.get(self.by_leader.get(&pid)?)
    }

    /// The machine whose own cgroup, or exclusive unit, is the cgroup `path`.
    pub fn in_cgroup(&self, path: &str) -> Option<&Arc<Machine>> {
        let name = self.by_cgroup.get(path).or_else(|| {
            let (unit, _) = machine::unit_of_cgroup(path);
            self.by_unit.get(&unit?)
        })?;
        self.machines.get(name)
    }

    /// Whether `unit` belongs to a machine already.
    pub fn has_unit(&self, unit: &str) -> bool {
        self.by_unit.contains_key(unit)
    }

    /// How many machines `uid` registered.
    pub fn count_of_user(&self, uid: u32) -> usize {
        self.per_uid.get(&uid).copied().unwrap_or(0)
    }

    /// The container whose user namespace maps host UID `uid`, and the UID inside it.
    pub fn uid_owner(&self, uid: u32) -> Option<(&Arc<Machine>, u32)> {
        self.id_owner(&self.uid_ranges, uid)
    }

    /// The container whose user namespace maps host GID `gid`, and the GID inside it.
    pub fn gid_owner(&self, gid: u32) -> Option<(&Arc<Machine>, u32)> {
        self.id_owner(&self.gid_ranges, gid)
    }

    fn id_owner(&self, ranges: &IdRanges, id: u32) -> Option<(&Arc<Machine>, u32)> {
        let upper = (id, String::from("\u{10ffff}"));
        ranges.range(..=upper).rev().find_map(|((_, name), line)| {
            let inside = line.to_inside(id)?;
            Some((self.machines.get(name)?, inside))
        })
    }

    /// Adds `machine`; `owns_unit` says whether it gets its unit's `unit:` link.
    pub fn insert(&mut self, machine: &Arc<Machine>, owns_unit: bool) {
        let name = machine.name.clone();
        self.machines.insert(name.clone(), Arc::clone(machine));
        self.by_leader.insert(machine.leader.pid(), name.clone());
        if let Some(cgroup) = &machine.cgroup {
            self.by_cgroup
                .insert(cgroup.name().to_owned(), name.clone());
        }
        if let (true, Some(unit)) = (owns_unit, &machine.unit) {
            self.by_unit.insert(unit.clone(), name);
        }
        *self.per_uid.entry(machine.uid).or_insert(0) += 1;
        self.insert_ranges(machine);
    }

    /// Removes `machine`; returns the unit whose `unit:` link it owned.
    pub fn remove(&mut self, machine: &Machine) -> Option<String> {
        self.machines.remove(&machine.name);
        if self.by_leader.get(&machine.leader.pid()) == Some(&machine.name) {
            self.by_leader.remove(&machine.leader.pid());
        }
        if let Some(cgroup) = &machine.cgroup {
            self.by_cgroup.remove(cgroup.name());
        }
        if let Some(count) = self.per_uid.get_mut(&machine.uid) {
            *count -= 1;
            if *count == 0 {
                self.per_uid.remove(&machine.uid);
            }
        }
        self.remove_ranges(machine);
        let unit = machine.unit.as_ref()?;
        (self.by_unit.get(unit) == Some(&machine.name)).then(|| {
            self.by_unit.remove(unit);
            unit.clone()
        })
    }

    /// Replaces a machine by a changed version of itself (same name, leader, cgroup, unit).
    pub fn replace(&mut self, machine: &Arc<Machine>) {
        if let Some(old) = self
            .machines
            .insert(machine.name.clone(), Arc::clone(machine))
        {
            self.remove_ranges(&old);
        }
        self.insert_ranges(machine);
    }

    fn insert_ranges(&mut self, machine: &Machine) {
        let (uid, gid) = range_lines(machine);
        for line in uid {
            self.uid_ranges
                .insert((line.outside, machine.name.clone()), line);
        }
        for line in gid {
            self.gid_ranges
                .insert((line.outside, machine.name.clone()), line);
        }
    }

    fn remove_ranges(&mut self, machine: &Machine) {
        let (uid, gid) = range_lines(machine);
        for line in uid {
            self.uid_ranges
                .remove(&(line.outside, machine.name.clone()));
        }
        for line in gid {
            self.gid_ranges
                .remove(&(line.outside, machine.name.clone()));
        }
    }
}

/// The UID and GID map lines a machine contributes to the ranges: only a container's namespace
/// of its own, and no line that maps onto host ID 0.
fn range_lines(machine: &Machine) -> (Vec<IdMapping>, Vec<IdMapping>) {
    let container = machine.class == MachineClass::Container;
    let lines = |map: Option<&[IdMapping]>| -> Vec<IdMapping> {
        let map = map.filter(|_| container).unwrap_or_default();
        map.iter().copied().filter(|l| l.outside != 0).collect()
    };
    (
        lines(machine.userns.uid_map()),
        lines(machine.userns.gid_map()),
    )
}
