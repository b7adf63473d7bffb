//! What can go wrong, and how it shows: a message on stderr and an exit code a script can rely
//! on (1: the registry or machine refused or failed; 2: the command line is wrong (clap's own);
//! 3: the registry cannot be reached; 4: no such machine or image).

use std::io;
use std::path::PathBuf;

use berth_interfaces::blocking::CallError;

/// `berthctl`'s errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry's socket cannot be reached.
    #[error("Cannot reach the machine registry at {path}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No machine of that name.
    #[error("No machine '{0}' known")]
    NoSuchMachine(String),
    /// No image of that name.
    #[error("No image '{0}' known")]
    NoSuchImage(String),
    /// The machine has no controller to ask.
    #[error("Machine '{0}' has no control address, so it cannot be asked to {1}")]
    NoController(String, &'static str),
    /// A call failed.
    #[error("{what} failed")]
    Call {
        /// What was asked.
        what: String,
        /// The failure.
        #[source]
        source: CallError,
    },
    /// Something else went wrong locally.
    #[error("{what}")]
    Local {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// `berthctl`'s result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Connect { .. } => 3,
            Self::NoSuchMachine(_) | Self::NoSuchImage(_) => 4,
            Self::NoController(..) | Self::Call { .. } | Self::Local { .. } => 1,
        }
    }

    /// A [`Error::Call`] for `what`.
    pub fn call(what: impl Into<String>) -> impl FnOnce(CallError) -> Self {
        let what = what.into();
        move |source| Self::Call { what, source }
    }

    /// A [`Error::Local`] for `what`.
    pub fn local(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Local { what, source }
    }
}

/// `error` and its sources, as one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
