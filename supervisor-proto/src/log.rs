//! What `supervise` tells about its machine: each boot's registration and start, the end of
//! the machine and its exit status, and the problems it works around.
//!
//! When standard error is the journal (`JOURNAL_STREAM`, as under a systemd unit), each line
//! is a journal entry in journald's native protocol, with `MACHINE=` and the line's own fields
//! (`LEADER=`, `BOOT=`, `REGISTRY=`, `REASON=`, `EXIT_CODE=`, `EXIT_STATUS=`) beside `MESSAGE=`,
//! `PRIORITY=` and `SYSLOG_IDENTIFIER=supervise`; else it is a line on standard error. One
//! datagram per line, no thread, no buffer kept: logging costs `supervise` no resident memory
//! to speak of.

use std::sync::OnceLock;

use berth_os::journal::{self, Journal};

static SINK: OnceLock<Sink> = OnceLock::new();

#[derive(Debug)]
struct Sink {
    journal: Option<Journal>,
    machine: String,
}

/// How much a line matters, as syslog numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `supervise` failed.
    Error = 3,
    /// Something was worked around.
    Warning = 4,
    /// The machine's life.
    Info = 6,
}

/// Starts logging for the machine `machine`: to the journal if standard error is the journal.
/// Only the first call counts.
pub fn open(machine: &str) {
    let journal = journal::stderr_is_journal()
        .then(|| Journal::connect().ok())
        .flatten();
    let _ = SINK.set(Sink {
        journal,
        machine: machine.to_owned(),
    });
}

/// Logs `message` with `fields` (journal field names) at `priority`.
pub fn log(priority: Priority, message: &str, fields: &[(&str, &str)]) {
    if let Some(Sink {
        journal: Some(journal),
        machine,
    }) = SINK.get()
    {
        let priority = (priority as u8).to_string();
        let mut entry = vec![
            ("MESSAGE", message),
            ("PRIORITY", priority.as_str()),
            ("SYSLOG_IDENTIFIER", "supervise"),
            ("MACHINE", machine.as_str()),
        ];
        entry.extend_from_slice(fields);
        if journal.send(&entry).is_ok() {
            return;
        }
    }
    eprintln!("supervise: {message}");
}

/// Logs the machine's life.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(Priority::Info, message, fields);
}

/// Logs something `supervise` works around (`message` ends in ", ignoring").
pub fn warning(message: &str) {
    log(Priority::Warning, message, &[]);
}

/// Logs `supervise`'s own failure.
pub fn error(message: &str) {
    log(Priority::Error, message, &[]);
}
