//! The registry's host table: what `io.berth.Registry.ResolveHost` answers for each machine
//! name, published as files so that the NSS module answers most lookups without asking.
//!
//! The table is a directory beside the registry's socket ([`table_dir`]):
//!
//! * `NAME` holds one [`HostEntry`] as JSON for each machine (and `.host`), replaced atomically
//!   (written aside, then renamed) whenever the answer changes. No file: no such machine.
//! * [`LOCK_FILE`] carries a write lock, held by the registry (an open file description lock)
//!   for as long as it keeps the table current. Only a writer of that file (the registry's user)
//!   can take a write lock, so a reader trusts the table only while taking a read lock of its
//!   own fails: then the registry lives and vouches for every entry. A registry that is gone
//!   (its lock went with it), one still filling the table, and one that could not write an
//!   entry all leave the lock free, and readers ask the registry instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::registry::ResolveHostReply;

/// The table's directory name, beside the registry's socket.
pub const TABLE_DIR: &str = "berth-hosts";

/// The lock file in the table's directory (not a valid machine name, so never an entry).
pub const LOCK_FILE: &str = ".lock";

/// The table of the registry listening on `socket`.
pub fn table_dir(socket: &Path) -> Option<PathBuf> {
    Some(socket.parent()?.join(TABLE_DIR))
}

/// What the table says about one machine name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HostEntry {
    /// `ResolveHost` replies this.
    Reply(ResolveHostReply),
    /// `ResolveHost` fails with `io.systemd.Machine.NoPrivateNetworking`.
    NoPrivateNetworking,
    /// The registry does not know yet (a container whose addresses nobody asked for): ask it.
    Ask,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Address, MachineClass};

    #[test]
    fn entries_are_small_json_documents() {
        let reply = HostEntry::Reply(ResolveHostReply {
            class: MachineClass::Container,
            addresses: Some(vec![Address {
                ifindex: Some(2),
                family: 2,
                address: vec![198, 51, 100, 7],
            }]),
            if_indices: None,
        });
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            text,
            r#"{"reply":{"class":"container","addresses":[{"ifindex":2,"family":2,"address":[198,51,100,7]}]}}"#
        );
        assert_eq!(serde_json::from_str::<HostEntry>(&text).unwrap(), reply);
        for entry in [HostEntry::Ask, HostEntry::NoPrivateNetworking] {
            let text = serde_json::to_string(&entry).unwrap();
            assert_eq!(serde_json::from_str::<HostEntry>(&text).unwrap(), entry);
        }
        assert_eq!(
            table_dir(Path::new("/run/systemd/machine/io.systemd.Machine")),
            Some(PathBuf::from("/run/systemd/machine/berth-hosts"))
        );
    }
}
