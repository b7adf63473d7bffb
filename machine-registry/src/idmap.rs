//! User namespaces of machines: their UID/GID maps, the UID shift, and ID translation.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

use berth_interfaces::registry::IdMapping;

/// The user namespace a leader lives in, as seen from the registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UserNamespace {
    /// The registry's own: the machine's IDs are host IDs.
    #[default]
    Host,
    /// A namespace of its own, with its maps (empty until someone writes them).
    Own {
        /// `/proc/PID/uid_map`.
        uid_map: Vec<IdMapping>,
        /// `/proc/PID/gid_map`.
        gid_map: Vec<IdMapping>,
    },
}

impl UserNamespace {
    /// Reads the user namespace of `pid`.
    ///
    /// # Errors
    /// `/proc/PID` is gone or unreadable.
    pub fn of_process(pid: u32) -> io::Result<Self> {
        // The links name the namespace's inode on nsfs (`user:[4026531837]`); reading one is
        // cheaper than a stat, which makes an nsfs inode.
        let theirs = fs::read_link(format!("/proc/{pid}/ns/user"))?;
        if theirs == *own_user_namespace()? {
            return Ok(Self::Host);
        }
        Ok(Self::Own {
            uid_map: read_map(pid, "uid_map")?,
            gid_map: read_map(pid, "gid_map")?,
        })
    }

    /// Whether it is a namespace of its own whose maps are not written yet.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Own { uid_map, .. } if uid_map.is_empty())
    }

    /// The UID map, for a namespace of its own.
    pub fn uid_map(&self) -> Option<&[IdMapping]> {
        match self {
            Self::Host => None,
            Self::Own { uid_map, .. } => Some(uid_map),
        }
    }

    /// The GID map, for a namespace of its own.
    pub fn gid_map(&self) -> Option<&[IdMapping]> {
        match self {
            Self::Host => None,
            Self::Own { gid_map, .. } => Some(gid_map),
        }
    }

    /// machined's UID shift: 0 in the host's namespace; else the host start of the one line
    /// that maps machine ID 0 onward for at least 65534 IDs, with an identical GID map.
    pub fn uid_shift(&self) -> Option<u32> {
        match self {
            Self::Host => Some(0),
            Self::Own { uid_map, gid_map } => match uid_map.as_slice() {
                [line] if line.inside == 0 && line.count >= 65534 && uid_map == gid_map => {
                    Some(line.outside)
                }
                _ => None,
            },
        }
    }

    /// The host UID of machine UID `uid` (identity in the host's namespace).
    pub fn uid_to_host(&self, uid: u32) -> Option<u32> {
        self.uid_map()
            .map_or(Some(uid), |map| translate(map, uid, IdMapping::to_outside))
    }

    /// The host GID of machine GID `gid`.
    pub fn gid_to_host(&self, gid: u32) -> Option<u32> {
        self.gid_map()
            .map_or(Some(gid), |map| translate(map, gid, IdMapping::to_outside))
    }
}

fn translate(
    map: &[IdMapping],
    id: u32,
    direction: fn(&IdMapping, u32) -> Option<u32>,
) -> Option<u32> {
    map.iter().find_map(|line| direction(line, id))
}

/// The registry's own user namespace link, read once (a process never changes it).
fn own_user_namespace() -> io::Result<&'static PathBuf> {
    static OWN: OnceLock<PathBuf> = OnceLock::new();
    if let Some(own) = OWN.get() {
        return Ok(own);
    }
    let own = fs::read_link("/proc/self/ns/user")?;
    Ok(OWN.get_or_init(|| own))
}

fn read_map(pid: u32, file: &str) -> io::Result<Vec<IdMapping>> {
    Ok(parse_map(&fs::read_to_string(format!(
        "/proc/{pid}/{file}"
    ))?))
}

pub use berth_interfaces::registry::parse_id_map as parse_map;

#[cfg(test)]
mod tests {
    use super::*;

    fn own(uid: &str, gid: &str) -> UserNamespace {
        UserNamespace::Own {
            uid_map: parse_map(uid),
            gid_map: parse_map(gid),
        }
    }

    #[test]
    fn maps_parse_like_the_kernel_writes_them() {
        let map = parse_map("         0     131072      65536\n");
        assert_eq!(
            map,
            [IdMapping {
                inside: 0,
                outside: 131072,
                count: 65536
            }]
        );
        assert!(parse_map("").is_empty());
    }

    #[test]
    fn the_uid_shift_needs_one_full_line_from_zero_and_equal_gid_map() {
        assert_eq!(UserNamespace::Host.uid_shift(), Some(0));
        assert_eq!(
            own("0 131072 65536", "0 131072 65536").uid_shift(),
            Some(131072)
        );
        assert_eq!(
            own("0 131072 65534", "0 131072 65534").uid_shift(),
            Some(131072)
        );
        assert_eq!(own("0 131072 1000", "0 131072 1000").uid_shift(), None);
        assert_eq!(own("1 131072 65536", "1 131072 65536").uid_shift(), None);
        assert_eq!(own("0 131072 65536", "0 196608 65536").uid_shift(), None);
        assert_eq!(
            own("0 131072 1\n1 200000 65535", "0 131072 1\n1 200000 65535").uid_shift(),
            None
        );
        assert_eq!(own("", "").uid_shift(), None);
    }

    #[test]
    fn translation_uses_whichever_line_maps_the_id() {
        let ns = own("0 131072 1\n1 200000 65535", "0 131072 65536");
        assert_eq!(ns.uid_to_host(0), Some(131072));
        assert_eq!(ns.uid_to_host(5), Some(200004));
        assert_eq!(ns.uid_to_host(65536), None);
        assert_eq!(UserNamespace::Host.uid_to_host(1000), Some(1000));
    }

    #[test]
    fn our_own_process_is_in_the_host_namespace() {
        assert_eq!(
            UserNamespace::of_process(std::process::id()).unwrap(),
            UserNamespace::Host
        );
    }
}
