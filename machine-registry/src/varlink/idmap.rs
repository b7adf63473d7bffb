//! `MapFrom` and `MapTo`: translating IDs between containers' user namespaces and the host.

use berth_interfaces::machine::{MachineClass, MapFromRequest, MapToReply, MappedIds};
use berth_service_runtime::varlink::{Call, HandlerResult, Replier};

use std::sync::Arc;

use super::machine::{MachineService, decode};
use crate::error::Error;
use crate::machine::Machine;

/// IDs below this are the host's own; no container owns them.
const HOST_RANGE_END: u32 = 0x10000;

impl MachineService {
    pub(super) async fn map_from(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let request: MapFromRequest = decode(call)?;
        check_id(request.uid, "uid")?;
        check_id(request.gid, "gid")?;
        let machine = self.lookup(&request.lookup, &call.peer)?;
        if machine.class != MachineClass::Container {
            return Err(Error::NotSupported.into());
        }
        let userns = &machine.userns;
        let reply = MappedIds {
            uid: request
                .uid
                .map(|uid| userns.uid_to_host(uid).ok_or(Error::NoSuchUser))
                .transpose()?,
            gid: request
                .gid
                .map(|gid| userns.gid_to_host(gid).ok_or(Error::NoSuchGroup))
                .transpose()?,
        };
        replier.reply(&reply).await
    }

    pub(super) async fn map_to(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let request: MappedIds = decode(call)?;
        check_id(request.uid, "uid")?;
        check_id(request.gid, "gid")?;
        let registry = self.registry();
        let user = request
            .uid
            .map(|uid| {
                owner(
                    uid,
                    Error::UserInHostRange,
                    Error::NoSuchUser,
                    registry.uid_owner(uid),
                )
            })
            .transpose()?;
        let group = request
            .gid
            .map(|gid| {
                owner(
                    gid,
                    Error::GroupInHostRange,
                    Error::NoSuchGroup,
                    registry.gid_owner(gid),
                )
            })
            .transpose()?;
        let machine_name = match (&user, &group) {
            (Some((a, _)), Some((b, _))) if a.name != b.name => {
                return Err(Error::NoSuchMachine.into());
            }
            (Some((machine, _)), _) | (None, Some((machine, _))) => Some(machine.name.clone()),
            (None, None) => None,
        };
        let reply = MapToReply {
            uid: user.map(|(_, inside)| inside),
            gid: group.map(|(_, inside)| inside),
            machine_name,
        };
        replier.reply(&reply).await
    }
}

/// The live container that owns host ID `id`, and the ID inside it.
fn owner(
    id: u32,
    in_host_range: Error,
    missing: Error,
    found: Option<(Arc<Machine>, u32)>,
) -> Result<(Arc<Machine>, u32), Error> {
    if id < HOST_RANGE_END {
        return Err(in_host_range);
    }
    found
        .filter(|(machine, _)| machine.leader.is_alive())
        .ok_or(missing)
}

/// systemd's `uid_is_valid`: not `(uid_t) -1` and not the 16-bit `-1`, 65535.
fn check_id(id: Option<u32>, field: &str) -> Result<(), Error> {
    match id {
        Some(u32::MAX | 65535) => Err(Error::invalid(field)),
        _ => Ok(()),
    }
}
