//! Watching machines end, and ending them on request.

use std::sync::Arc;
use std::time::Duration;

use berth_os::sys;
use tokio::io::Interest;
use tokio::task::AbortHandle;

use berth_interfaces::client::InstanceAction;

use crate::idmap::UserNamespace;
use crate::machine::Machine;
use crate::manager::{Registry, Removal};
use crate::{control, kill};

/// Removes `machine` from `registry` the moment its leader exits: the leader's pidfd becomes
/// readable then, so this waits in epoll, not in a polling loop.
pub fn watch_leader(registry: Arc<Registry>, machine: Arc<Machine>) -> AbortHandle {
    let pidfd = Arc::clone(machine.leader.fd());
    tokio::spawn(async move {
        match sys::async_shared_fd(pidfd, Interest::READABLE) {
            Ok(watch) => {
                if let Err(error) = watch.readable().await {
                    tracing::warn!(machine = %machine.name, %error, "Watching the leader failed, removing the machine");
                }
            }
            Err(error) => {
                tracing::warn!(machine = %machine.name, %error, "Cannot watch the leader, removing the machine");
            }
        }
        registry.remove(&machine.name, Some(machine.instance), Removal::Ended);
    })
    .abort_handle()
}

/// For a machine with a controller (`controlAddress`): when its supervisor dies while the
/// leader still runs, nobody controls the machine any more, so it is killed (what is left of
/// its cgroup, else its process tree). Machines without a controller keep running: their
/// "supervisor" may just be the short-lived tool that registered them.
pub fn watch_controller(registry: Arc<Registry>, machine: Arc<Machine>) -> Option<AbortHandle> {
    machine.control_address.as_ref()?;
    let pidfd = Arc::clone(machine.supervisor.as_ref()?.fd());
    let task = tokio::spawn(async move {
        if let Ok(watch) = sys::async_shared_fd(pidfd, Interest::READABLE) {
            let _ = watch.readable().await;
        }
        let current = registry.get(&machine.name);
        if current.is_some_and(|m| m.instance == machine.instance && m.leader.is_alive()) {
            tracing::info!(machine = %machine.name, "The machine's supervisor died, killing the machine");
            if let Err(error) = kill::signal_all(&machine, libc::SIGKILL).await {
                tracing::warn!(machine = %machine.name, %error, "Killing failed, ignoring");
            }
        }
    });
    Some(task.abort_handle())
}

/// A container whose leader is in a user namespace of its own whose maps nobody wrote yet
/// (registered a moment too early): reads the maps again, with growing pauses and then once a
/// minute, until they are there, and records them. The kernel tells nobody when a map is
/// written, so this is the one place the registry looks again on a timer; it ends with the
/// machine. Nothing to do for any other machine.
pub fn watch_userns(registry: Arc<Registry>, machine: Arc<Machine>) -> Option<AbortHandle> {
    if !machine.userns.is_pending() {
        return None;
    }
    let task = tokio::spawn(async move {
        let pauses = USERNS_RECHECKS
            .into_iter()
            .chain(std::iter::repeat(USERNS_RECHECK_LATE));
        for pause in pauses {
            tokio::time::sleep(pause).await;
            match UserNamespace::of_process(machine.leader.pid()) {
                Ok(userns) if !userns.is_pending() => {
                    registry.set_userns(&machine.name, machine.instance, userns);
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    Some(task.abort_handle())
}

/// Pauses between the first readings of a pending user namespace's maps (a minute in all)...
const USERNS_RECHECKS: [Duration; 8] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(40),
];
/// ...and between the later ones.
const USERNS_RECHECK_LATE: Duration = Duration::from_secs(60);

/// Asks the machine to end: through its controller's `io.systemd.MachineInstance.Terminate`
/// if it has one, else SIGTERM to its supervisor if that lives, else SIGTERM to all its
/// processes. If it is still registered after the registry's terminate timeout, every process
/// of it is killed.
///
/// # Errors
/// The last fallback, signalling the machine's processes, failed.
pub async fn terminate(registry: &Arc<Registry>, machine: &Arc<Machine>) -> std::io::Result<()> {
    let controller_asked = match control::call(machine, InstanceAction::Terminate).await {
        Ok(()) => true,
        Err(error) if machine.control_address.is_some() => {
            tracing::info!(machine = %machine.name, %error, "The controller did not terminate the machine, signalling instead");
            false
        }
        Err(_) => false,
    };
    let supervisor_asked = controller_asked
        || machine
            .supervisor
            .as_ref()
            .is_some_and(|supervisor| supervisor.signal(libc::SIGTERM).is_ok());
    if !supervisor_asked {
        kill::signal_all(machine, libc::SIGTERM).await?;
    }
    let registry = Arc::clone(registry);
    let machine = Arc::clone(machine);
    let timeout = registry.config().terminate_timeout;
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let still_there = registry
            .get(&machine.name)
            .is_some_and(|current| current.instance == machine.instance);
        if still_there {
            tracing::info!(machine = %machine.name, "Did not stop in time, killing it");
            if let Err(error) = kill::signal_all(&machine, libc::SIGKILL).await {
                tracing::warn!(machine = %machine.name, %error, "Killing failed, ignoring");
            }
        }
    });
    Ok(())
}

/// The default time `Terminate` gives a machine before killing it.
pub const DEFAULT_TERMINATE_TIMEOUT: Duration = Duration::from_secs(10);
