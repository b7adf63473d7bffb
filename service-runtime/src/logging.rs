//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG`, adjustable at runtime through
//! `io.systemd.service.SetLogLevel`.
//!
//! Level policy: libraries log at `debug` at most and return errors; handlers and `main` log
//! once at the boundary. Non-fatal problems are `warn` and end in ", ignoring".

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Changes the log level of the running process.
#[derive(Debug, Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogControl {
    /// Sets the maximum level from a BSD syslog level (0 emerg … 7 debug).
    pub fn set_syslog_level(&self, level: u8) {
        let directive = match level {
            0..=3 => "error",
            4 => "warn",
            5 | 6 => "info",
            _ => "debug",
        };
        if let Err(error) = self.handle.reload(EnvFilter::new(directive)) {
            tracing::warn!(%error, "Changing the log level failed, ignoring");
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` if set, else `default` (e.g. `"info"`).
///
/// Returns `None` if a subscriber was installed already (e.g. by a test harness).
pub fn init(default: &str) -> Option<LogControl> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .ok()?;
    Some(LogControl { handle })
}
