//! `berthctl`: inspects and controls the machines of Berth's registry, the way `machinectl`
//! does for systemd-machined, speaking only Varlink.
//!
//! * [`cli`]: the command line (clap; also the source of the man page and completions).
//! * [`client`]: where the registry's socket is, and the calls made to it and to machines'
//!   controllers (the blocking client of `berth_interfaces`).
//! * [`format`](mod@format): tables, addresses, timestamps, and the pager, for a terminal or a script.
//! * [`verbs`]: one module per group of verbs.
//! * [`terminal`]: our terminal relayed to a machine's pty (`shell`, `login`).
//! * [`error`]: what can go wrong, and the exit code of each.
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod error;
pub mod format;
pub mod terminal;
pub mod verbs;

use std::process::ExitCode;

pub use error::{Error, Result};

/// Carries out the command line.
///
/// # Errors
/// The verb failed; see [`Error`].
pub fn run(cli: &cli::Cli) -> Result<ExitCode> {
    verbs::run(cli)
}
