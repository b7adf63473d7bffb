//! Handlers of the `io.systemd.Machine` methods that go into a machine: `OpenRootDirectory`,
//! `Open`, `BindMount`, `CopyFrom`, `CopyTo`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_interfaces::machine::{CopyRequest, MachineClass, MachineLookup, OpenRootDirectoryReply};
use berth_service_runtime::peer::Peer;
use berth_service_runtime::varlink::{Call, HandlerResult, Replier};

use super::machine::{MachineService, decode};
use crate::enter;
use crate::enter::copy::{CopyJob, Direction};
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

    /// `CopyFrom` and `CopyTo`: the copy runs on a blocking thread; the caller hanging up
    /// cancels it (nothing is left at the destination).
    pub(super) async fn copy(
        &self,
        call: &Call,
        replier: &mut Replier<'_>,
        direction: Direction,
    ) -> Result<(), Error> {
        let operation = self.operations().start()?;
        let request: CopyRequest = decode(call)?;
        let job = copy_job(
            request.source,
            request.destination,
            request.replace,
            direction,
        )?;
        let machine = self.enterable(&request.lookup, &call.peer)?;
        let caller = call.peer.identity();
        let cancel = Arc::new(AtomicBool::new(false));
        let copying = {
            let cancel = Arc::clone(&cancel);
            tokio::task::spawn_blocking(move || {
                let _operation = operation;
                enter::copy::run(&machine, &job, &caller, &cancel)
            })
        };
        tokio::pin!(copying);
        let finished = tokio::select! {
            finished = &mut copying => finished,
            () = replier.closed() => {
                cancel.store(true, Ordering::Relaxed);
                copying.await
            }
        };
        finished
            .map_err(|e| Error::System(std::io::Error::other(e)))?
            .map_err(permission_errors)
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

fn copy_job(
    source: String,
    destination: Option<String>,
    replace: Option<bool>,
    direction: Direction,
) -> Result<CopyJob, Error> {
    if !enter::is_absolute_normalized(&source) {
        return Err(Error::invalid("source"));
    }
    let destination = destination.unwrap_or_else(|| source.clone());
    if !enter::is_absolute_normalized(&destination) {
        return Err(Error::invalid("destination"));
    }
    Ok(CopyJob {
        direction,
        source,
        destination,
        replace: replace.unwrap_or(false),
    })
}

/// The kernel refusing the caller (`EACCES`, `EPERM`) is `PermissionDenied`, as machined
/// answers it.
fn permission_errors(error: Error) -> Error {
    match error {
        Error::System(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            Error::PermissionDenied
        }
        error => error,
    }
}
