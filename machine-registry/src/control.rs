//! Calls to a machine's controller: the `io.systemd.MachineInstance` server at its
//! `controlAddress`.
//!
//! The address comes from whoever registered the machine, possibly an unprivileged user, so the
//! registry only talks to it if the process serving it is the machine's own supervisor (checked
//! through the socket's peer pidfd); otherwise it would call somebody else's machine on that
//! user's behalf.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use berth_interfaces::client::{InstanceAction, InstanceProxy};
use berth_os::process::ProcessRef;
use berth_os::sys;

use crate::machine::Machine;

/// How long a controller may take to answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the machine's controller, if its supervisor serves it: then the supervisor is
/// a real one (`supervise`, or whatever VMM or container manager runs the machine and
/// registered it), not a tool that registered the machine on somebody's behalf.
///
/// # Errors
/// `ENOENT` when the machine has no controller, `EPERM` when the socket is not served by the
/// machine's supervisor, or the connection's error.
pub async fn connect(machine: &Machine) -> io::Result<tokio::net::UnixStream> {
    let (Some(address), Some(supervisor)) = (&machine.control_address, &machine.supervisor) else {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    };
    let stream = tokio::net::UnixStream::connect(address).await?;
    let server = ProcessRef::from_pidfd(sys::peer_pidfd(stream.as_fd())?)?;
    if !server.same_process(supervisor) {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(stream)
}

/// Calls `method` on the machine's controller.
///
/// # Errors
/// `ENOENT` when the machine has no controller, `EPERM` when the socket is not served by the
/// machine's supervisor, `ETIMEDOUT`, or the connection's or the controller's error.
pub async fn call(machine: &Machine, method: InstanceAction) -> io::Result<()> {
    let attempt = async {
        let stream = connect(machine).await?;
        let stream = zlink::tokio::unix::Stream::try_from(stream).map_err(io::Error::other)?;
        let mut conn = zlink::Connection::new(stream);
        match conn.instance_call(method).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(io::Error::other(error)),
            Err(error) => Err(io::Error::other(error)),
        }
    };
    tokio::time::timeout(CONTROL_TIMEOUT, attempt)
        .await
        .map_err(|_| io::Error::from_raw_os_error(libc::ETIMEDOUT))?
}
