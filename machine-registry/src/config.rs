//! Command line and the paths that follow from it.

use std::path::PathBuf;
use std::time::Duration;

use berth_interfaces::hosts;

/// The machine registry daemon.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "berth-machine-registry", version, about)]
pub struct Args {
    /// Serve the calling user's registry under $XDG_RUNTIME_DIR (socket mode 0600) instead of
    /// the system one under /run (mode 0666).
    #[arg(long)]
    pub user: bool,
    /// Put every path under DIR instead of /run (or $XDG_RUNTIME_DIR).
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// cgroup2 directory where machines registered with allocateUnit get their cgroup
    /// (default: the registry's own cgroup).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Seconds Terminate waits after SIGTERM before it kills the machine.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub terminate_timeout: u64,
    /// Most machines one unprivileged user may register.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_machines_per_user: usize,
}

/// Where the registry keeps its socket and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The `io.systemd.Machine` socket.
    pub socket: PathBuf,
    /// The `io.systemd.MachineImage` socket beside it (the same services).
    pub image_socket: PathBuf,
    /// The state file directory.
    pub state_dir: PathBuf,
    /// The `io.systemd.Resolve.Hook` socket (system scope only).
    pub resolve_hook: Option<PathBuf>,
    /// The host table for the NSS module, beside the socket.
    pub host_table: PathBuf,
}

/// Errors working out the paths.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--user` without a runtime directory.
    #[error("--user needs $XDG_RUNTIME_DIR (or --runtime-dir)")]
    NoUserRuntimeDir,
}

impl Args {
    /// The runtime directory: `--runtime-dir`, else `$XDG_RUNTIME_DIR` with `--user`, else `/run`.
    ///
    /// # Errors
    /// [`ConfigError::NoUserRuntimeDir`].
    pub fn runtime_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(dir) = &self.runtime_dir {
            return Ok(dir.clone());
        }
        if self.user {
            return std::env::var_os("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .ok_or(ConfigError::NoUserRuntimeDir);
        }
        Ok(PathBuf::from("/run"))
    }

    /// The socket and state paths below the runtime directory.
    ///
    /// # Errors
    /// As [`Args::runtime_dir`].
    pub fn paths(&self) -> Result<Paths, ConfigError> {
        let systemd = self.runtime_dir()?.join("systemd");
        Ok(Paths {
            socket: systemd.join("machine/io.systemd.Machine"),
            image_socket: systemd.join("machine/io.systemd.MachineImage"),
            host_table: systemd.join("machine").join(hosts::TABLE_DIR),
            state_dir: systemd.join("machines"),
            resolve_hook: (!self.user).then(|| systemd.join("resolve.hook/io.systemd.Machine")),
        })
    }

    /// The socket's permissions.
    pub fn socket_mode(&self) -> u32 {
        if self.user { 0o600 } else { 0o666 }
    }

    /// The terminate timeout.
    pub fn terminate_timeout(&self) -> Duration {
        Duration::from_secs(self.terminate_timeout)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn system_paths_live_under_run_and_runtime_dir_moves_them() {
        let args = Args::parse_from(["x"]);
        assert_eq!(
            args.paths().unwrap(),
            Paths {
                socket: "/run/systemd/machine/io.systemd.Machine".into(),
                image_socket: "/run/systemd/machine/io.systemd.MachineImage".into(),
                state_dir: "/run/systemd/machines".into(),
                resolve_hook: Some("/run/systemd/resolve.hook/io.systemd.Machine".into()),
                host_table: "/run/systemd/machine/berth-hosts".into(),
            }
        );
        assert_eq!(args.socket_mode(), 0o666);
        let args = Args::parse_from(["x", "--user", "--runtime-dir", "/tmp/r"]);
        assert_eq!(
            args.paths().unwrap().socket,
            PathBuf::from("/tmp/r/systemd/machine/io.systemd.Machine")
        );
        assert_eq!(args.socket_mode(), 0o600);
    }
}
