//! Wire types of `io.berth.Registry` (`idl/io.berth.Registry.varlink`), Berth's extensions of
//! the machine registry.

use serde::{Deserialize, Serialize};

pub use crate::machine::{Address, MachineClass};

/// One line of a user namespace's UID or GID map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdMapping {
    /// First ID inside the machine.
    pub inside: u32,
    /// First ID on the host.
    pub outside: u32,
    /// Number of IDs.
    pub count: u32,
}

/// Parses the lines of `/proc/PID/uid_map` or `gid_map` (`inside outside count` each);
/// lines that do not parse are skipped.
pub fn parse_id_map(text: &str) -> Vec<IdMapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::parse::<u32>);
            Some(IdMapping {
                inside: fields.next()?.ok()?,
                outside: fields.next()?.ok()?,
                count: fields.next()?.ok()?,
            })
        })
        .collect()
}

impl IdMapping {
    /// The host ID of `inside`, if this line maps it.
    pub fn to_outside(&self, inside: u32) -> Option<u32> {
        let offset = inside
            .checked_sub(self.inside)
            .filter(|&o| o < self.count)?;
        self.outside.checked_add(offset)
    }

    /// The machine ID of host ID `outside`, if this line maps it.
    pub fn to_inside(&self, outside: u32) -> Option<u32> {
        let offset = outside
            .checked_sub(self.outside)
            .filter(|&o| o < self.count)?;
        self.inside.checked_add(offset)
    }
}

/// What happened to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineEvent {
    /// Registered before the `Watch` call.
    Existing,
    /// The initial listing is complete.
    Synchronized,
    /// Registered.
    Added,
    /// Changed.
    Changed,
    /// Left the registry.
    Removed,
}

/// A machine as Berth's companions see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineSummary {
    /// Name.
    pub name: String,
    /// Class.
    pub class: MachineClass,
    /// Leader PID.
    pub leader: u32,
    /// UID map of the leader's user namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_map: Option<Vec<IdMapping>>,
    /// GID map of the leader's user namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_map: Option<Vec<IdMapping>>,
}

/// Parameters of `ResolveHost`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveHostRequest {
    /// Machine name.
    pub name: String,
}

/// Reply of `ResolveHost`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolveHostReply {
    /// The class.
    pub class: MachineClass,
    /// Container addresses, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<Address>>,
    /// Host-side interface indices registered with the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_indices: Option<Vec<i32>>,
}

/// One reply of `Watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchReply {
    /// What happened.
    pub event: MachineEvent,
    /// To which machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_translate_both_ways_within_their_range_only() {
        let line = IdMapping {
            inside: 0,
            outside: 65536,
            count: 65536,
        };
        assert_eq!(line.to_outside(1000), Some(66536));
        assert_eq!(line.to_outside(65536), None);
        assert_eq!(line.to_inside(66536), Some(1000));
        assert_eq!(line.to_inside(65535), None);
        assert_eq!(line.to_inside(131072), None);
    }
}
