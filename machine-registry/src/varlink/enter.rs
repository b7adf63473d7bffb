//! Handlers of the `io.systemd.Machine` methods that go into a machine: `OpenRootDirectory`,
//! `Open`, `BindMount`, `CopyFrom`, `CopyTo`.

use std::sync::Arc;

use berth_interfaces::machine::{MachineClass, MachineLookup, OpenRootDirectoryReply};
use berth_service_runtime::peer::Peer;
use berth_service_runtime::varlink::{Call, HandlerResult, Replier};

use super::machine::{MachineService, decode};
use crate::enter;
use crate::error::Error;
use crate::machine::Machine;

impl MachineService {
    /// `OpenRootDirectory`.
    pub(super) async fn open_root_directory(
        &self,
        call: &Call,
        replier: &mut Replier<'_>,
    ) -> HandlerResult {
        let lookup: MachineLookup = decode(call)?;
        let machine = self.enterable(&lookup, &call.peer)?;
        let caller = call.peer.identity();
        let root = tokio::task::spawn_blocking(move || enter::root::open(&machine, &caller))
            .await
            .map_err(|e| Error::System(std::io::Error::other(e)))??;
        let reply = OpenRootDirectoryReply { file_descriptor: 0 };
        replier.reply_with_fds(&reply, vec![root.into()]).await
    }

    /// Looks up a machine the caller may go into: root and the service's own user may go into
    /// any; others only into machines they registered whose leader runs as them or in a user
    /// namespace they own (checked again now: it may have changed since).
    pub(super) fn enterable(
        &self,
        lookup: &MachineLookup,
        peer: &Peer,
    ) -> Result<Arc<Machine>, Error> {
        let machine = self.lookup(lookup, peer)?;
        if peer.is_privileged() {
            return Ok(machine);
        }
        let owner = machine.class != MachineClass::Host && machine.uid == peer.uid;
        if !owner || !machine.leader.is_owned_by(peer.uid)? {
            return Err(Error::PermissionDenied);
        }
        Ok(machine)
    }
}
