//! The verbs, one module per group.
//!
//! * [`machines`]: `list`, `status`, `show`.
//! * [`control`]: `terminate`, `kill`, `poweroff`, `reboot`, `pause`, `resume`.
//! * [`watch`]: following the registry live.
//! * [`spawn`]: running a payload as a new supervised machine.
//! * [`enter`]: `shell`, `login`, `copy-to`, `copy-from`, `bind`: into a machine.

pub mod control;
pub mod enter;
pub mod machines;
pub mod spawn;
pub mod watch;

use std::process::ExitCode;

use crate::cli::{Cli, Verb};
use crate::error::Result;

/// Carries out the verb of `cli`.
///
/// # Errors
/// The verb failed.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    let (scope, output) = (&cli.scope, &cli.output);
    match &cli.verb {
        Verb::List { all, json } => machines::list(scope, output, *all, *json),
        Verb::Status { names } => machines::status(scope, output, names),
        Verb::Show { names } => machines::show(scope, output, names),
        Verb::Terminate { names } => control::terminate(scope, names),
        Verb::Kill {
            kill_whom,
            signal,
            names,
        } => control::kill(scope, names, *kill_whom, signal),
        Verb::Poweroff { names } => control::ask(scope, names, control::Ask::PowerOff),
        Verb::Reboot { names } => control::ask(scope, names, control::Ask::Reboot),
        Verb::Pause { names } => control::ask(scope, names, control::Ask::Pause),
        Verb::Resume { names } => control::ask(scope, names, control::Ask::Resume),
        Verb::Shell {
            uid,
            environment,
            name,
            command,
        } => enter::shell(scope, name, uid.as_deref(), environment, command),
        Verb::Login { name } => enter::login(scope, name),
        Verb::CopyTo {
            force,
            name,
            source,
            destination,
        } => enter::copy_to(scope, name, source, destination.as_deref(), *force),
        Verb::CopyFrom {
            force,
            name,
            source,
            destination,
        } => enter::copy_from(scope, name, source, destination.as_deref(), *force),
        Verb::Bind {
            read_only,
            mkdir,
            name,
            source,
            destination,
        } => enter::bind(
            scope,
            name,
            source,
            destination.as_deref(),
            *read_only,
            *mkdir,
        ),
        Verb::Watch => watch::watch(scope),
        Verb::Spawn { name, program } => spawn::spawn(scope, name, program),
    }
    .map(|()| ExitCode::SUCCESS)
}
