//! `watch`: machines coming, changing and going, one line each, as they happen.

use std::io::Write;

use berth_interfaces::registry::{MachineEvent, WatchReply};

use crate::cli::Scope;
use crate::client::Watch;
use crate::error::{Error, Result};

/// Prints the machines there are, then every change, until interrupted.
///
/// # Errors
/// The registry cannot be reached, or the stream broke.
pub fn watch(scope: &Scope) -> Result<()> {
    let mut watch = Watch::start(scope)?;
    let mut out = std::io::stdout();
    while let Some(event) = watch.next_event()? {
        if let Some(line) = describe(&event) {
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(Error::local("Writing to standard output"))?;
        }
    }
    Ok(())
}

/// One event as a line (`added demo container leader 1234`); nothing for `synchronized`.
fn describe(event: &WatchReply) -> Option<String> {
    let machine = event.machine.as_ref()?;
    let what = match event.event {
        MachineEvent::Existing => "existing",
        MachineEvent::Added => "added",
        MachineEvent::Changed => "changed",
        MachineEvent::Removed => "removed",
        MachineEvent::Synchronized => return None,
    };
    Some(format!(
        "{what} {} {} leader {}",
        machine.name,
        machine.class.as_str(),
        machine.leader
    ))
}
