//! Keeps the cache current from the registry's `io.berth.Registry.Watch` stream, from the
//! first lookup that could name a container user on (see [`Cache`]): the listing is built aside and installed on `synchronized`; every later event is applied at once. When
//! the stream ends the cache is cleared and the watcher reconnects with a bounded backoff.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_interfaces::client::Watch;
use berth_interfaces::registry::{MachineEvent, MachineSummary};
use berth_interfaces::service::SystemError;
use berth_service_runtime::notify;

use crate::cache::Cache;
use crate::index::Index;

/// The first pause before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why a watch ended.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The registry socket did not answer, or the connection broke.
    #[error("Connection to the registry failed: {0}")]
    Transport(#[from] zlink::Error),
    /// The registry ended the stream with an error.
    #[error("The registry ended the watch with {0}")]
    Reply(#[from] SystemError),
}

/// How a watch went, for the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It never got the full listing.
    Failed,
    /// It was synchronized for a while.
    WasSynchronized,
}

/// Follows the registry at `socket` into `cache` for as long as the task runs, from the first
/// lookup that wants the listing on.
///
/// # Cancel safety
/// Cancel safe: aborting leaves the cache as it was at the last applied event.
pub async fn follow(cache: Arc<Cache>, socket: PathBuf) {
    cache.wanted().await;
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut outcome = Outcome::Failed;
        let Err(error) = watch(&cache, &socket, &mut outcome).await;
        cache.clear();
        if outcome == Outcome::WasSynchronized {
            backoff = MIN_BACKOFF;
            tracing::warn!(%error, "Lost the machine registry; answering from nothing until it is back");
            notify::status("Waiting for the machine registry");
        } else {
            tracing::debug!(%error, "No watch on the machine registry yet");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One watch: connect, read the listing, install it, apply events until the stream ends.
async fn watch(
    cache: &Cache,
    socket: &Path,
    outcome: &mut Outcome,
) -> Result<Infallible, WatchError> {
    let conn = zlink::tokio::unix::connect(socket).await?;
    let mut watch = Watch::start(conn).await?;
    let mut listing = Some(Index::default());
    loop {
        let reply = watch.next().await??;
        match (reply.event, reply.machine) {
            (MachineEvent::Synchronized, _) => {
                if let Some(index) = listing.take() {
                    synchronized(cache, index);
                    *outcome = Outcome::WasSynchronized;
                }
            }
            (event, Some(machine)) => match listing.as_mut() {
                Some(index) => apply(index, event, &machine),
                None => cache.update(|index| apply(index, event, &machine)),
            },
            (_, None) => {}
        }
    }
}

fn synchronized(cache: &Cache, index: Index) {
    let containers = index.len();
    cache.install(index);
    tracing::info!(containers, "Following the machine registry");
    notify::status("Following the machine registry");
}

fn apply(index: &mut Index, event: MachineEvent, machine: &MachineSummary) {
    match event {
        MachineEvent::Removed => index.remove(&machine.name),
        _ => index.upsert(machine),
    }
}
