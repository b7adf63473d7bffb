//! Stop requests: SIGTERM and SIGINT, caught from the start of the process.

use std::io;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Installs the SIGTERM and SIGINT handlers now (so a stop request right after `READY=1` can
/// not kill the process uncleanly) and returns a flag that turns true on the first of them.
///
/// # Errors
/// The handlers cannot be installed.
///
/// # Panics
/// Outside a tokio runtime.
pub fn requested() -> io::Result<watch::Receiver<bool>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM, shutting down"),
            _ = int.recv() => tracing::info!("SIGINT, shutting down"),
        }
        let _ = stop.send(true);
    });
    Ok(stopped)
}

/// Completes once `stopped` is true.
pub async fn wait(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
