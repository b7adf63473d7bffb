//! The verbs, one module per group.
//!
//! * [`machines`]: `list`, `status`, `show`.
//! * [`control`]: `terminate`, `kill`, `poweroff`, `reboot`, `pause`, `resume`.
//! * [`watch`]: following the registry live.
//! * [`spawn`]: running a payload as a new supervised machine.
//! * [`enter`]: `shell`, `login`, `copy-to`, `copy-from`, `bind`: into a machine.
//! * [`images`]: the image pool.

pub mod control;
pub mod enter;
pub mod images;
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
        Verb::ListImages { all } => images::list(scope, output, *all),
        Verb::ImageStatus { names } => images::status(scope, output, names),
        Verb::Clone {
            read_only,
            name,
            new_name,
        } => images::clone(scope, name, new_name, *read_only),
        Verb::Rename { name, new_name } => images::update(scope, name, Some(new_name), None),
        Verb::ReadOnly { name, read_only } => images::update(scope, name, None, Some(*read_only)),
        Verb::Remove { names } => images::remove(scope, names),
        Verb::SetLimit { args } => set_limit(scope, args),
        Verb::Clean { all } => images::clean(scope, output, *all),
        Verb::Watch => watch::watch(scope),
        Verb::Spawn { name, program } => spawn::spawn(scope, name, program),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// `set-limit [NAME] BYTES`.
fn set_limit(scope: &crate::cli::Scope, args: &[String]) -> Result<()> {
    let (name, limit) = match args {
        [limit] => (None, limit),
        [name, limit] => (Some(name.as_str()), limit),
        _ => {
            let usage = std::io::Error::new(std::io::ErrorKind::InvalidInput, "[NAME] BYTES");
            return Err(crate::error::Error::local("set-limit takes [NAME] BYTES")(
                usage,
            ));
        }
    };
    let limit = limit.parse::<u64>().map_err(|e| {
        crate::error::Error::local(format!("Invalid limit '{limit}'"))(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            e,
        ))
    })?;
    images::set_limit(scope, name, limit)
}
