//! The supervisor's errors: why `supervise` could not start or go on supervising.

use std::fmt;
use std::io;
use std::path::PathBuf;

use berth_interfaces::blocking::CallError;

/// Why `supervise` failed (the payload's own failures are its exit status, not errors).
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong.
    Usage(String),
    /// A system resource of the supervisor itself could not be set up.
    Setup {
        /// What was being set up.
        what: &'static str,
        /// The system error.
        source: io::Error,
    },
    /// The control socket could not be bound.
    Bind {
        /// Its path.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Another live process serves the control socket path.
    InUse(PathBuf),
    /// The payload could not be started.
    Spawn {
        /// The program.
        program: String,
        /// The system error.
        source: io::Error,
    },
    /// The registry refused the machine or could not be reached.
    Register {
        /// The registry socket.
        registry: PathBuf,
        /// The call's failure.
        source: CallError,
    },
    /// Waiting for events failed.
    Poll(io::Error),
}

/// The supervisor's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::Setup`] for `what`.
    pub fn setup(what: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Setup { what, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(what) => write!(f, "Invalid command line: {what}"),
            Self::Setup { what, .. } => write!(f, "Cannot set up {what}"),
            Self::Bind { path, .. } => {
                write!(f, "Cannot bind the control socket {}", path.display())
            }
            Self::InUse(path) => write!(
                f,
                "The control socket {} is served by another process",
                path.display()
            ),
            Self::Spawn { program, .. } => write!(f, "Cannot start the payload {program}"),
            Self::Register { registry, .. } => {
                write!(f, "Cannot register the machine with {}", registry.display())
            }
            Self::Poll(_) => write!(f, "Waiting for events failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Usage(_) | Self::InUse(_) => None,
            Self::Setup { source, .. } | Self::Bind { source, .. } | Self::Spawn { source, .. } => {
                Some(source)
            }
            Self::Register { source, .. } => Some(source),
            Self::Poll(source) => Some(source),
        }
    }
}
