//! Watching machines end, and ending them on request.

use std::sync::Arc;
use std::time::Duration;

use berth_service_runtime::sys;
use tokio::io::Interest;
use tokio::task::AbortHandle;

use crate::kill;
use crate::machine::Machine;
use crate::manager::{Registry, Removal};

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

/// Asks the machine to end: SIGTERM to its supervisor when it has a live one, else to all
/// its processes; if it is still registered after the registry's terminate timeout, every
/// process of it is killed.
///
/// # Errors
/// The first signal could not be sent.
pub async fn terminate(registry: &Arc<Registry>, machine: &Arc<Machine>) -> std::io::Result<()> {
    let supervisor_asked = machine
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
