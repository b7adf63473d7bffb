//! Handlers of the `io.systemd.Machine` methods that go into a machine: `OpenRootDirectory`,
//! `Open`, `BindMount`, `CopyFrom`, `CopyTo`.

use std::sync::Arc;

use berth_interfaces::helper::Job;
use berth_interfaces::machine::{
    BindMountRequest, CopyRequest, MachineClass, MachineLookup, OpenMode, OpenReply, OpenRequest,
    OpenRootDirectoryReply,
};
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

    /// `Open`: a pty of the machine, and a shell or login prompt on it, from the helper.
    pub(super) async fn open(&self, call: &Call, replier: &mut Replier<'_>) -> HandlerResult {
        let request: OpenRequest = decode(call)?;
        let job = open_job(
            request.mode,
            request.user,
            request.path,
            request.args,
            request.environment,
        )?;
        let machine = self.enterable(&request.lookup, &call.peer)?;
        if machine.class == MachineClass::Vm {
            return Err(Error::NotSupported.into());
        }
        let caller = call.peer.identity();
        let opened = run_job(&machine, job, &caller).await?;
        let Some((pty_path, master)) = opened else {
            return Err(Error::System(std::io::Error::other("no pty")).into());
        };
        let reply = OpenReply {
            pty_file_descriptor: 0,
            pty_path,
        };
        replier.reply_with_fds(&reply, vec![master]).await
    }

    /// `BindMount`: root only (mounting needs it); the helper mounts.
    pub(super) async fn bind_mount(&self, call: &Call) -> Result<(), Error> {
        let request: BindMountRequest = decode(call)?;
        if !enter::is_absolute_normalized(&request.source) {
            return Err(Error::invalid("source"));
        }
        let destination = request
            .destination
            .unwrap_or_else(|| request.source.clone());
        if !enter::is_absolute_normalized(&destination) {
            return Err(Error::invalid("destination"));
        }
        let machine = self.enterable(&request.lookup, &call.peer)?;
        if machine.class != MachineClass::Container {
            return Err(Error::NotSupported);
        }
        if call.peer.uid != 0 {
            return Err(Error::PermissionDenied);
        }
        let job = Job::BindMount {
            source: request.source,
            destination,
            read_only: request.read_only.unwrap_or(false),
            mkdir: request.mkdir.unwrap_or(false),
        };
        run_job(&machine, job, &call.peer.identity())
            .await
            .map(drop)
    }

    /// `CopyFrom` and `CopyTo`: the helper copies; the caller hanging up cancels the copy
    /// (nothing is left at the destination).
    pub(super) async fn copy(
        &self,
        call: &Call,
        replier: &mut Replier<'_>,
        to_machine: bool,
    ) -> Result<(), Error> {
        let _operation = self.operations().start()?;
        let request: CopyRequest = decode(call)?;
        let job = copy_job(
            request.source,
            request.destination,
            request.replace,
            to_machine,
        )?;
        let machine = self.enterable(&request.lookup, &call.peer)?;
        if machine.class != MachineClass::Container {
            return Err(Error::NotSupported);
        }
        let caller = call.peer.identity();
        tokio::select! {
            copied = enter::jobs::run(&machine, job, &caller) => {
                copied.map(drop).map_err(permission_errors)
            }
            // Dropping the job closes the helper's channel: it stops and cleans up.
            () = replier.closed() => Err(Error::System(std::io::Error::from_raw_os_error(
                libc::ECANCELED,
            ))),
        }
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
    to_machine: bool,
) -> Result<Job, Error> {
    if !enter::is_absolute_normalized(&source) {
        return Err(Error::invalid("source"));
    }
    let destination = destination.unwrap_or_else(|| source.clone());
    if !enter::is_absolute_normalized(&destination) {
        return Err(Error::invalid("destination"));
    }
    Ok(Job::Copy {
        to_machine,
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

async fn run_job(
    machine: &Machine,
    job: Job,
    caller: &berth_os::identity::Identity,
) -> Result<enter::jobs::Opened, Error> {
    enter::jobs::run(machine, job, caller)
        .await
        .map_err(permission_errors)
}

/// The largest job (as JSON) for the helper: it goes in one datagram, which the socket's
/// send buffer (about 200 KiB by default) must hold.
const MAX_JOB: usize = 160 * 1024;

fn total_len<'a>(strings: impl Iterator<Item = &'a String>) -> usize {
    strings.map(|s| s.len() + 1).sum()
}

fn open_job(
    mode: OpenMode,
    user: Option<String>,
    path: Option<String>,
    args: Option<Vec<String>>,
    environment: Option<Vec<String>>,
) -> Result<Job, Error> {
    let user = user.unwrap_or_else(|| "root".to_owned());
    if !enter::is_valid_user_name(&user) {
        return Err(Error::invalid("user"));
    }
    if path
        .as_ref()
        .is_some_and(|p| !p.starts_with('/') || p.contains('\0'))
    {
        return Err(Error::invalid("path"));
    }
    if args.iter().flatten().any(|arg| arg.contains('\0')) {
        return Err(Error::invalid("args"));
    }
    let environment = environment.unwrap_or_default();
    if !environment.iter().all(|e| enter::is_valid_assignment(e)) {
        return Err(Error::invalid("environment"));
    }
    let larger = match total_len(environment.iter()) > total_len(args.iter().flatten()) {
        true => "environment",
        false => "args",
    };
    let job = Job::Open {
        mode,
        user,
        path,
        args,
        environment,
    };
    let size = serde_json::to_vec(&job).map_or(usize::MAX, |text| text.len());
    if size > MAX_JOB {
        return Err(Error::invalid(larger));
    }
    Ok(job)
}
