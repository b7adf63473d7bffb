//! Everything `main` sets up before serving: sockets, descriptor limit, registry configuration.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_service_runtime::activation::{self, PassedSockets};
use tokio::net::UnixListener;

use crate::cgroup::CgroupRoot;
use crate::config::{Args, Paths};
use crate::manager::RegistryConfig;

/// Descriptors kept free beyond the connections' for files, sockets and the runtime.
const SPARE_FDS: u64 = 1024;
/// The most connections ever served at once (sd-varlink's default).
const MAX_CONNECTIONS: u64 = 4096;
/// Descriptors one machine may hold: leader pidfd, supervisor pidfd, address watch.
const FDS_PER_MACHINE: u64 = 3;

/// How the descriptor budget is shared: connections (each a socket and a peer pidfd) get an
/// eighth of the limit, up to sd-varlink's 4096; machines (each a leader and a supervisor
/// pidfd, and the netlink socket watching its addresses once they are looked up) get what is
/// left after a spare for everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// Most connections at once.
    pub connections: usize,
    /// Most machines.
    pub machines: usize,
}

impl FdBudget {
    /// The budget for a descriptor limit of `limit`.
    pub fn for_limit(limit: u64) -> Self {
        let connections = (limit / 8).clamp(64, MAX_CONNECTIONS);
        let machines = limit.saturating_sub(2 * connections + SPARE_FDS) / FDS_PER_MACHINE;
        Self {
            connections: usize::try_from(connections).unwrap_or(usize::MAX),
            machines: usize::try_from(machines.max(64)).unwrap_or(usize::MAX),
        }
    }
}

/// The listening sockets: passed by the service manager, else bound here.
#[derive(Debug)]
pub struct Listeners {
    /// `io.systemd.Machine` (LISTEN_FDNAMES `varlink`).
    pub machine: UnixListener,
    /// `io.systemd.MachineImage`, the same services (bound here; under socket activation
    /// the socket unit makes it a symlink to the first).
    pub image: Option<UnixListener>,
    /// `io.systemd.Resolve.Hook` (`resolve-hook`; system scope only).
    pub resolve_hook: Option<UnixListener>,
    /// Sockets bound here, to remove again at exit.
    pub bound: Vec<PathBuf>,
}

/// Takes the sockets the service manager passed, binding the missing ones.
///
/// # Errors
/// An unexpected or broken passed socket, or a socket that cannot be bound.
pub fn listeners(args: &Args, paths: &Paths) -> anyhow::Result<Listeners> {
    let mut passed = PassedSockets::from_env()?;
    let activated = !passed.is_empty();
    let mut bound = Vec::new();
    let machine = match passed.take("varlink")? {
        Some(listener) => listener,
        None if activated => anyhow::bail!("The service manager passed no socket named 'varlink'"),
        None => bind(&paths.socket, args.socket_mode(), &mut bound)?,
    };
    let image = match activated {
        true => None,
        false => Some(bind(&paths.image_socket, args.socket_mode(), &mut bound)?),
    };
    let resolve_hook = match (passed.take("resolve-hook")?, &paths.resolve_hook) {
        (Some(listener), _) => Some(listener),
        (None, Some(path)) => Some(bind(path, 0o666, &mut bound)?),
        (None, None) => None,
    };
    passed.finish()?;
    Ok(Listeners {
        machine,
        image,
        resolve_hook,
        bound,
    })
}

fn bind(path: &Path, mode: u32, bound: &mut Vec<PathBuf>) -> anyhow::Result<UnixListener> {
    let listener = activation::bind(path, mode)?;
    bound.push(path.to_owned());
    Ok(listener)
}

/// The registry's configuration from the command line and the descriptor limit.
///
/// # Errors
/// `--cgroup-root` is not on the cgroup2 hierarchy.
pub fn registry_config(
    args: &Args,
    paths: &Paths,
    budget: FdBudget,
) -> anyhow::Result<RegistryConfig> {
    let cgroup_root = match &args.cgroup_root {
        Some(dir) => Some(CgroupRoot::at(dir).context("Invalid --cgroup-root")?),
        None => CgroupRoot::detect(),
    };
    Ok(RegistryConfig {
        state_dir: paths.state_dir.clone(),
        host_table: Some(paths.host_table.clone()),
        cgroup_root,
        host_machine: !args.user,
        max_machines: budget.machines,
        max_machines_per_user: args.max_machines_per_user,
        terminate_timeout: args.terminate_timeout(),
    })
}

/// Raises the soft descriptor limit as far as allowed (root may raise the hard one up to
/// `fs.nr_open`); returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if let Some(nr_open) = nr_open {
        let raised = Rlimit {
            current: Some(nr_open),
            maximum: Some(nr_open),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return nr_open;
        }
    }
    let wanted = Rlimit {
        current: current.maximum,
        maximum: current.maximum,
    };
    if setrlimit(Resource::Nofile, wanted).is_err() {
        tracing::warn!("Cannot raise the descriptor limit, ignoring");
        return current.current.unwrap_or(1024);
    }
    wanted.current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_budget_scales_with_the_limit() {
        assert_eq!(
            FdBudget::for_limit(20_000),
            FdBudget {
                connections: 2500,
                machines: 4658
            }
        );
        let large = FdBudget::for_limit(1 << 20);
        assert_eq!(large.connections, 4096);
        assert!(large.machines > 300_000);
        assert_eq!(FdBudget::for_limit(256).machines, 64);
    }
}
