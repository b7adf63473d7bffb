//! Lookups: a UID/GID or a name to the container user or group it stands for, and the records
//! machined emits for them (spec §3.2–3.4), with one deliberate fix: host IDs below 65536 are
//! never answered, also not through a name (machined maps `vu-NAME-0` of a container without
//! a user namespace to host root).

use berth_interfaces::userdb::{GroupRecord, UserRecord};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::names::{self, Kind};

/// The service name, the base name of the socket.
pub const SERVICE: &str = "io.systemd.Machine";

/// Host IDs below this belong to the host; no container user ever has one.
pub const HOST_RANGE_END: u32 = 0x10000;

/// The primary GID of every container user: `nobody`'s.
const GID_NOBODY: u32 = 65534;

/// The shell of container users (machined's build-time `NOLOGIN` on Debian).
const NOLOGIN: &str = "/usr/sbin/nologin";

/// What is asked: by ID, by name, or both (then they must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// User or group.
    pub kind: Kind,
    /// The host UID/GID.
    pub id: Option<u32>,
    /// The user/group name.
    pub name: Option<&'a str>,
}

/// A container user or group that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its name, `vu-MACHINE-ID` or `vg-MACHINE-ID`.
    pub name: String,
    /// The host ID.
    pub host: u32,
    /// The ID inside the container.
    pub inside: u32,
    /// The container.
    pub machine: String,
}

impl Query<'_> {
    /// Whether the bridge could ever answer this: an ID outside the host range, else a name of
    /// the `vu-`/`vg-` form. Anything else is `NoRecordFound` even while the registry is down.
    pub fn could_match(&self) -> bool {
        match (self.id, self.name) {
            (Some(id), _) => id >= HOST_RANGE_END,
            (None, Some(name)) => names::parse(self.kind, name).is_some(),
            (None, None) => false,
        }
    }

    /// Looks the query up: by ID if one is given, else by name; a name given next to the ID
    /// must be the found one's.
    ///
    /// # Errors
    /// [`Error::EnumerationNotSupported`] without ID and name, [`Error::NoRecordFound`],
    /// [`Error::ConflictingRecordFound`].
    pub fn resolve(&self, index: &Index) -> Result<Found> {
        let found = match (self.id, self.name) {
            (Some(id), _) => by_id(index, self.kind, id),
            (None, Some(name)) => by_name(index, self.kind, name),
            (None, None) => return Err(Error::EnumerationNotSupported),
        };
        let found = found.ok_or(Error::NoRecordFound)?;
        if self.name.is_some_and(|name| name != found.name) {
            return Err(Error::ConflictingRecordFound);
        }
        Ok(found)
    }
}

fn by_id(index: &Index, kind: Kind, host: u32) -> Option<Found> {
    if host < HOST_RANGE_END {
        return None;
    }
    let (container, inside) = index.owner(kind, host)?;
    Some(Found {
        name: names::synthesize(kind, &container.name, inside)?,
        host,
        inside,
        machine: container.name.to_string(),
    })
}

fn by_name(index: &Index, kind: Kind, name: &str) -> Option<Found> {
    let (machine, inside) = names::parse(kind, name)?;
    let container = index.container(machine)?;
    let host = container
        .to_host(kind, inside)
        .filter(|&host| host >= HOST_RANGE_END)?;
    Some(Found {
        name: name.to_owned(),
        host,
        inside,
        machine: machine.to_owned(),
    })
}

/// The user record of a container user (machined's `build_user_json`). The GECOS field is
/// always valid: a strictly valid name has neither `:` nor control characters.
pub fn user_record(found: Found) -> UserRecord {
    UserRecord {
        real_name: Some(format!(
            "UID {} of Container {}",
            found.inside, found.machine
        )),
        user_name: found.name,
        uid: Some(found.host),
        gid: Some(GID_NOBODY),
        home_directory: Some("/".to_owned()),
        shell: Some(NOLOGIN.to_owned()),
        locked: Some(true),
        service: Some(SERVICE.to_owned()),
        disposition: Some("container".to_owned()),
    }
}

/// The group record of a container group (machined's `build_group_json`).
pub fn group_record(found: Found) -> GroupRecord {
    GroupRecord {
        description: Some(format!(
            "GID {} of Container {}",
            found.inside, found.machine
        )),
        group_name: found.name,
        gid: Some(found.host),
        service: Some(SERVICE.to_owned()),
        disposition: Some("container".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::{line, summary};

    fn index() -> Index {
        let mut index = Index::default();
        index.upsert(&summary("foo", Some(vec![line(0, 131072, 65536)])));
        index.upsert(&summary("my-box", Some(vec![line(0, 196608, 65536)])));
        index.upsert(&summary("host-ids", Some(vec![line(0, 1000, 65536)])));
        index.upsert(&summary("plain", None));
        index
    }

    fn user(id: Option<u32>, name: Option<&str>) -> Result<Found> {
        Query {
            kind: Kind::User,
            id,
            name,
        }
        .resolve(&index())
    }

    #[test]
    fn users_are_found_by_uid_and_by_name() {
        let found = user(Some(131072 + 1000), None).unwrap();
        assert_eq!(
            found,
            Found {
                name: "vu-foo-1000".into(),
                host: 132072,
                inside: 1000,
                machine: "foo".into()
            }
        );
        assert_eq!(user(None, Some("vu-foo-1000")).unwrap(), found);
        assert_eq!(
            user(None, Some("vu-my-box-0")).unwrap().host,
            196608,
            "the machine name may contain dashes"
        );
        let group = Query {
            kind: Kind::Group,
            id: None,
            name: Some("vg-foo-5"),
        };
        assert_eq!(group.resolve(&index()).unwrap().host, 131077);
    }

    #[test]
    fn host_ids_are_never_answered() {
        assert_eq!(user(None, Some("vu-host-ids-0")), Err(Error::NoRecordFound));
        assert_eq!(user(Some(1000), None), Err(Error::NoRecordFound));
        assert_eq!(user(None, Some("vu-plain-0")), Err(Error::NoRecordFound));
        assert_eq!(
            user(None, Some("vu-host-ids-64536")).unwrap().host,
            65536,
            "the part of a map above the host range is answered"
        );
    }

    #[test]
    fn mismatches_and_misses_are_told_apart() {
        assert_eq!(
            user(Some(132072), Some("vu-foo-1001")),
            Err(Error::ConflictingRecordFound)
        );
        assert_eq!(
            user(Some(132072), Some("vu-foo-1000")).unwrap().inside,
            1000
        );
        assert_eq!(user(Some(5_000_000), None), Err(Error::NoRecordFound));
        assert_eq!(user(None, Some("vu-nope-0")), Err(Error::NoRecordFound));
        assert_eq!(user(None, Some("alice")), Err(Error::NoRecordFound));
        assert_eq!(user(None, None), Err(Error::EnumerationNotSupported));
    }

    /// Found by fuzzing (`userdb`): host UID 131072 + 65535 of a container mapping 0…65535
    /// was answered as `vu-foo-65535`, a name that does not look up (65535 is no valid UID,
    /// so no name spells it); now neither the ID nor the name is a user.
    #[test]
    fn fuzz_an_id_whose_name_does_not_look_up_is_no_user() {
        assert_eq!(user(Some(131072 + 65535), None), Err(Error::NoRecordFound));
        assert_eq!(user(None, Some("vu-foo-65535")), Err(Error::NoRecordFound));
        assert_eq!(
            user(Some(131072 + 65534), None).unwrap().name,
            "vu-foo-65534"
        );
    }

    #[test]
    fn only_possible_queries_wait_for_the_registry() {
        let query = |id, name| Query {
            kind: Kind::User,
            id,
            name,
        };
        assert!(query(Some(65536), None).could_match());
        assert!(!query(Some(65535), Some("vu-a-0")).could_match());
        assert!(query(None, Some("vu-a-0")).could_match());
        assert!(!query(None, Some("vg-a-0")).could_match());
        assert!(!query(None, Some("root")).could_match());
    }

    #[test]
    fn records_are_machineds() {
        let found = user(Some(132072), None).unwrap();
        let text = serde_json::to_string(&user_record(found.clone())).unwrap();
        assert_eq!(
            text,
            r#"{"userName":"vu-foo-1000","uid":132072,"gid":65534,"realName":"UID 1000 of Container foo","homeDirectory":"/","shell":"/usr/sbin/nologin","locked":true,"service":"io.systemd.Machine","disposition":"container"}"#
        );
        let group = Found {
            name: "vg-foo-1000".into(),
            ..found
        };
        let text = serde_json::to_string(&group_record(group)).unwrap();
        assert_eq!(
            text,
            r#"{"groupName":"vg-foo-1000","gid":132072,"description":"GID 1000 of Container foo","service":"io.systemd.Machine","disposition":"container"}"#
        );
    }
}
