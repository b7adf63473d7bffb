//! Logging setup: `tracing`, filtered by `RUST_LOG`, adjustable at runtime through
//! `io.systemd.service.SetLogLevel`. Under systemd, when standard error is the journal
//! (`JOURNAL_STREAM`), events go to journald in its native protocol with their fields; else
//! they are lines on standard error.
//!
//! Level policy: libraries log at `debug` at most and return errors; handlers and `main` log
//! once at the boundary. Non-fatal problems are `warn` and end in ", ignoring".
//!
//! Journal fields: each field of an event becomes a journal field of its own, its name in
//! upper case (`machine = %name` is `MACHINE=demo`, `uid` is `UID=`, `error` is `ERROR=`), the
//! message is `MESSAGE=`, levels map to syslog priorities as systemd's own `log_*()` do (error 3,
//! warn 4, info 6, debug 7), and `SYSLOG_IDENTIFIER=` is the program's name. README's
//! "Journal fields" lists the fields Berth's services write.

use std::io::IsTerminal;

use berth_os::journal;
use tracing_journald::{Priority, PriorityMappings};
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
    let journal = journal::stderr_is_journal().then(journald).flatten();
    let fmt = journal.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journal)
        .with(fmt)
        .try_init()
        .ok()?;
    Some(LogControl { handle })
}

/// The journald layer: fields under their own names (no prefix), syslog priorities.
fn journald() -> Option<tracing_journald::Layer> {
    let layer = tracing_journald::layer().ok()?;
    Some(
        layer
            .with_field_prefix(None)
            .with_priority_mappings(PriorityMappings {
                error: Priority::Error,
                warn: Priority::Warning,
                info: Priority::Informational,
                debug: Priority::Debug,
                trace: Priority::Debug,
            }),
    )
}
