//! The containers that have users: indexed by name, and by host ID range so that finding the
//! owner of a host UID or GID costs O(log n) however many containers there are.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use berth_interfaces::machine::MachineClass;
use berth_interfaces::registry::{IdMapping, MachineSummary};

use crate::names::Kind;

/// A container with a user namespace of its own and written maps, keeping only the map lines
/// that can give users: those that are not empty and do not start at host ID 0 (there the
/// container shares the host's IDs, so such a line names host users, not its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The machine name.
    pub name: Arc<str>,
    uid_map: Vec<IdMapping>,
    gid_map: Vec<IdMapping>,
}

impl Container {
    /// The container of a registry summary, if it can have users: class `container`, and a
    /// user namespace of its own (maps present) whose UID map is written. A container in the
    /// registry's own user namespace has none: its IDs are the host's.
    pub fn from_summary(summary: &MachineSummary) -> Option<Self> {
        if summary.class != MachineClass::Container {
            return None;
        }
        let uid_map = summary.uid_map.as_deref().filter(|map| !map.is_empty())?;
        Some(Self {
            name: summary.name.as_str().into(),
            uid_map: own_lines(uid_map),
            gid_map: own_lines(summary.gid_map.as_deref().unwrap_or_default()),
        })
    }

    /// The UID or GID map.
    pub fn map(&self, kind: Kind) -> &[IdMapping] {
        match kind {
            Kind::User => &self.uid_map,
            Kind::Group => &self.gid_map,
        }
    }

    /// The host ID of ID `inside` of this container, through whichever map line maps it.
    pub fn to_host(&self, kind: Kind, inside: u32) -> Option<u32> {
        self.map(kind)
            .iter()
            .find_map(|line| line.to_outside(inside))
    }
}

fn own_lines(map: &[IdMapping]) -> Vec<IdMapping> {
    map.iter()
        .filter(|line| line.outside != 0 && line.count != 0)
        .copied()
        .collect()
}

/// Map lines by the host ID they start at.
#[derive(Debug, Default)]
struct RangeMap {
    starts: BTreeMap<u32, Vec<(Arc<str>, IdMapping)>>,
    /// The longest line: how far back from an ID a line containing it may start.
    longest: u32,
}

impl RangeMap {
    /// Adds a container's lines.
    fn insert(&mut self, name: &Arc<str>, map: &[IdMapping]) {
        for line in map {
            let entry = (Arc::clone(name), *line);
            self.starts.entry(line.outside).or_default().push(entry);
            self.longest = self.longest.max(line.count);
        }
    }

    fn remove(&mut self, name: &str, map: &[IdMapping]) {
        let mut shrunk = false;
        for line in map {
            let Some(lines) = self.starts.get_mut(&line.outside) else {
                continue;
            };
            lines.retain(|(n, l)| !(&**n == name && l == line));
            shrunk |= line.count == self.longest;
            if lines.is_empty() {
                self.starts.remove(&line.outside);
            }
        }
        if shrunk {
            self.longest = self.lines().map(|(_, l)| l.count).max().unwrap_or(0);
        }
    }

    fn lines(&self) -> impl Iterator<Item = &(Arc<str>, IdMapping)> {
        self.starts.values().flatten()
    }

    /// The container whose line contains host ID `host`, and the ID inside it. Lines starting
    /// at most `longest` IDs before `host` are looked at, nearest first.
    fn find(&self, host: u32) -> Option<(&Arc<str>, u32)> {
        self.starts
            .range(..=host)
            .rev()
            .take_while(|(start, _)| host - **start < self.longest)
            .flat_map(|(_, lines)| lines)
            .find_map(|(name, line)| line.to_inside(host).map(|inside| (name, inside)))
    }
}

/// Every container that has users, by name and by host ID.
#[derive(Debug, Default)]
pub struct Index {
    containers: HashMap<Arc<str>, Container>,
    uids: RangeMap,
    gids: RangeMap,
}

impl Index {
    /// Records the current state of a machine (added or changed).
    pub fn upsert(&mut self, summary: &MachineSummary) {
        self.remove(&summary.name);
        if let Some(container) = Container::from_summary(summary) {
            self.uids.insert(&container.name, &container.uid_map);
            self.gids.insert(&container.name, &container.gid_map);
            self.containers
                .insert(Arc::clone(&container.name), container);
        }
    }

    /// Forgets a machine.
    pub fn remove(&mut self, name: &str) {
        if let Some(old) = self.containers.remove(name) {
            self.uids.remove(name, &old.uid_map);
            self.gids.remove(name, &old.gid_map);
        }
    }

    /// The container named `name`.
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.get(name)
    }

    /// The container owning host UID or GID `host`, and the ID inside it.
    pub fn owner(&self, kind: Kind, host: u32) -> Option<(&Container, u32)> {
        let ranges = match kind {
            Kind::User => &self.uids,
            Kind::Group => &self.gids,
        };
        let (name, inside) = ranges.find(host)?;
        Some((self.containers.get(name)?, inside))
    }

    /// How many containers have users.
    pub fn len(&self) -> usize {
        self.containers.len()
    }

    /// Whether no container has users.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn line(inside: u32, outside: u32, count: u32) -> IdMapping {
        IdMapping {
            inside,
            outside,
            count,
        }
    }

    pub(crate) fn summary(name: &str, map: Option<Vec<IdMapping>>) -> MachineSummary {
        MachineSummary {
            name: name.into(),
            class: MachineClass::Container,
            leader: 1,
            uid_map: map.clone(),
            gid_map: map,
        }
    }

    #[test]
    fn only_containers_with_written_maps_of_their_own_count() {
        let mut index = Index::default();
        index.upsert(&summary("plain", None));
        index.upsert(&summary("pending", Some(vec![])));
        let mut vm = summary("vm", Some(vec![line(0, 65536, 65536)]));
        vm.class = MachineClass::Vm;
        index.upsert(&vm);
        assert!(index.is_empty());
        index.upsert(&summary("pending", Some(vec![line(0, 65536, 65536)])));
        assert_eq!(index.len(), 1);
        assert_eq!(index.owner(Kind::User, 65536 + 7).unwrap().1, 7);
    }

    #[test]
    fn owners_are_found_by_range_and_forgotten_on_removal() {
        let mut index = Index::default();
        for i in 1..=1000u32 {
            let map = vec![line(0, i * 65536, 65536)];
            index.upsert(&summary(&format!("c{i}"), Some(map)));
        }
        let (owner, inside) = index.owner(Kind::User, 500 * 65536 + 1000).unwrap();
        assert_eq!((&*owner.name, inside), ("c500", 1000));
        let (owner, inside) = index.owner(Kind::Group, 1001 * 65536 - 1).unwrap();
        assert_eq!((&*owner.name, inside), ("c1000", 65535));
        assert!(index.owner(Kind::User, 1001 * 65536).is_none());
        assert!(index.owner(Kind::User, 65535).is_none());
        index.remove("c500");
        assert!(index.owner(Kind::User, 500 * 65536 + 1000).is_none());
        assert_eq!(index.len(), 999);
    }

    #[test]
    fn a_changed_map_replaces_the_old_one() {
        let mut index = Index::default();
        index.upsert(&summary("c", Some(vec![line(0, 131072, 65536)])));
        index.upsert(&summary("c", Some(vec![line(0, 196608, 65536)])));
        assert!(index.owner(Kind::User, 131072).is_none());
        assert_eq!(index.owner(Kind::User, 196608).unwrap().1, 0);
    }

    #[test]
    fn lines_mapping_host_id_zero_own_nothing_and_long_lines_are_found() {
        let mut index = Index::default();
        index.upsert(&summary("zero", Some(vec![line(0, 0, 4_000_000)])));
        assert!(index.owner(Kind::User, 70000).is_none());
        let long = vec![line(0, 100_000, 10_000_000), line(20_000_000, 65536, 10)];
        index.upsert(&summary("long", Some(long)));
        index.upsert(&summary("short", Some(vec![line(0, 5_000_000, 65536)])));
        assert_eq!(
            index
                .owner(Kind::User, 9_000_000)
                .map(|(c, i)| (&*c.name, i)),
            Some(("long", 8_900_000))
        );
        assert_eq!(
            index.owner(Kind::User, 65540).map(|(c, i)| (&*c.name, i)),
            Some(("long", 20_000_004))
        );
        index.remove("long");
        assert!(index.owner(Kind::User, 9_000_000).is_none());
        assert_eq!(index.uids.longest, 65536);
    }

    #[test]
    fn identity_mapped_lines_give_no_users() {
        let c = Container::from_summary(&summary(
            "c",
            Some(vec![line(0, 0, 100_000), line(100_000, 200_000, 10)]),
        ))
        .unwrap();
        assert_eq!(c.to_host(Kind::User, 70_000), None);
        assert_eq!(c.to_host(Kind::User, 100_001), Some(200_001));
    }

    #[test]
    fn translation_into_the_host_uses_any_line() {
        let c = Container::from_summary(&summary(
            "c",
            Some(vec![line(0, 200_000, 1), line(1, 300_000, 65535)]),
        ))
        .unwrap();
        assert_eq!(c.to_host(Kind::User, 0), Some(200_000));
        assert_eq!(c.to_host(Kind::User, 5), Some(300_004));
        assert_eq!(c.to_host(Kind::User, 65536), None);
    }
}
