//! Stop requests: SIGTERM and SIGINT.

use std::io;

use tokio::signal::unix::{SignalKind, signal};

/// Installs the SIGTERM/SIGINT handlers now (so a stop request right after `READY=1` cannot
/// kill the process); the future completes on the first of them.
///
/// # Errors
/// A handler cannot be installed.
pub fn shutdown_requested() -> io::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM, shutting down"),
            _ = int.recv() => tracing::info!("SIGINT, shutting down"),
        }
    })
}
