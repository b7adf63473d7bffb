//! `terminate`, `kill`, and asking a machine's controller to power off, reboot, pause or resume.

use berth_interfaces::machine::KillWhom;

use crate::cli::{self, Scope};
use crate::client::{self, Registry};
use crate::error::{Error, Result};

/// What a machine's controller (`io.systemd.MachineInstance` at its `controlAddress`) is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `PowerOff`.
    PowerOff,
    /// `Reboot`.
    Reboot,
    /// `Pause`.
    Pause,
    /// `Resume`.
    Resume,
}

impl Ask {
    fn member(self) -> &'static str {
        match self {
            Self::PowerOff => "PowerOff",
            Self::Reboot => "Reboot",
            Self::Pause => "Pause",
            Self::Resume => "Resume",
        }
    }

    fn doing(self) -> &'static str {
        match self {
            Self::PowerOff => "power off",
            Self::Reboot => "reboot",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }
}

/// `terminate NAME…`: the registry's `Terminate` (through the controller if there is one).
///
/// # Errors
/// The first machine that could not be terminated.
pub fn terminate(scope: &Scope, names: &[String]) -> Result<()> {
    let mut registry = Registry::connect(scope)?;
    names.iter().try_for_each(|name| registry.terminate(name))
}

/// `kill [--kill-whom=] [--signal=] NAME…`.
///
/// # Errors
/// The first machine that could not be signalled.
pub fn kill(scope: &Scope, names: &[String], whom: cli::KillWhom, signal: &str) -> Result<()> {
    let whom = match whom {
        cli::KillWhom::Leader => KillWhom::Leader,
        cli::KillWhom::Supervisor => KillWhom::Supervisor,
        cli::KillWhom::All => KillWhom::All,
    };
    let mut registry = Registry::connect(scope)?;
    names
        .iter()
        .try_for_each(|name| registry.kill(name, whom, signal))
}

/// `poweroff`, `reboot`, `pause`, `resume NAME…`: through each machine's controller.
///
/// # Errors
/// [`Error::NoController`] for a machine without a control address, else the first failure.
pub fn ask(scope: &Scope, names: &[String], what: Ask) -> Result<()> {
    let mut registry = Registry::connect(scope)?;
    for name in names {
        let machine = registry.get(name)?;
        let address = machine
            .control_address
            .ok_or(Error::NoController(name.clone(), what.doing()))?;
        client::call_controller(&address, what.member(), name)?;
    }
    Ok(())
}
