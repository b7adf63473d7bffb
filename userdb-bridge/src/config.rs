//! Command line and the paths that follow from it.

use std::path::PathBuf;

/// The userdb bridge daemon (system scope only, as machined's).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "berth-userdb-bridge", version, about)]
pub struct Args {
    /// Put every path under DIR instead of /run.
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// The machine registry's socket (default: systemd/machine/io.systemd.Machine below the
    /// runtime directory).
    #[arg(long, value_name = "PATH")]
    pub registry: Option<PathBuf>,
}

/// Where the bridge listens and whom it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The `io.systemd.UserDatabase` socket, named after the service.
    pub socket: PathBuf,
    /// The registry's `io.systemd.Machine` socket, which also serves `io.berth.Registry`.
    pub registry: PathBuf,
}

/// The socket's permissions: every user may look users up.
pub const SOCKET_MODE: u32 = 0o666;

impl Args {
    /// The socket paths.
    pub fn paths(&self) -> Paths {
        let systemd = self
            .runtime_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/run"))
            .join("systemd");
        Paths {
            socket: systemd.join("userdb/io.systemd.Machine"),
            registry: self
                .registry
                .clone()
                .unwrap_or_else(|| systemd.join("machine/io.systemd.Machine")),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn paths_live_under_run_and_move_with_the_runtime_dir() {
        let paths = Args::parse_from(["x"]).paths();
        assert_eq!(
            paths,
            Paths {
                socket: "/run/systemd/userdb/io.systemd.Machine".into(),
                registry: "/run/systemd/machine/io.systemd.Machine".into(),
            }
        );
        let paths = Args::parse_from(["x", "--runtime-dir", "/tmp/r"]).paths();
        assert_eq!(
            paths.socket,
            PathBuf::from("/tmp/r/systemd/userdb/io.systemd.Machine")
        );
        assert_eq!(
            paths.registry,
            PathBuf::from("/tmp/r/systemd/machine/io.systemd.Machine")
        );
        let paths = Args::parse_from(["x", "--registry", "/tmp/reg.sock"]).paths();
        assert_eq!(paths.registry, PathBuf::from("/tmp/reg.sock"));
    }
}
