//! `berth-machine-registry`: wires sockets, logging and signals around the registry.

use std::process::ExitCode;

use anyhow::Context;
use berth_interfaces::idl;
use berth_machine_registry::cgroup::CgroupRoot;
use berth_machine_registry::config::Args;
use berth_machine_registry::manager::{Registry, RegistryConfig};
use berth_machine_registry::{restore, varlink::MachineService};
use berth_service_runtime::activation::{self, PassedSockets};
use berth_service_runtime::logging::{self, LogControl};
use berth_service_runtime::notify;
use berth_service_runtime::varlink::{Server, ServerConfig, ServerInfo};
use clap::Parser;

/// Descriptors kept free for connections, their peer pidfds and files.
const RESERVED_FDS: u64 = 16 * 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    let log = logging::init("info");
    let fd_limit = raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = runtime
        .context("Cannot start the async runtime")
        .and_then(|rt| rt.block_on(serve(args, log, fd_limit)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("berth-machine-registry: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args, log: Option<LogControl>, fd_limit: u64) -> anyhow::Result<()> {
    // Catch SIGTERM/SIGINT from the start: a stop request right after READY=1 must not kill us.
    let shutdown = berth_service_runtime::signals::shutdown_requested()
        .context("Cannot handle SIGTERM and SIGINT")?;
    let paths = args.paths()?;
    let mut passed = PassedSockets::from_env()?;
    let activated = !passed.is_empty();
    let listener = match passed.take("varlink")? {
        Some(listener) => listener,
        None if activated => anyhow::bail!("The service manager passed no socket named 'varlink'"),
        None => activation::bind(&paths.socket, args.socket_mode())?,
    };
    passed.finish()?;

    let registry = Registry::new(registry_config(&args, &paths.state_dir, fd_limit)?)
        .context("Cannot set up the registry")?;
    let report = restore::restore(&registry);
    tracing::info!(restored = report.restored, dropped = report.dropped, socket = %paths.socket.display(), "Serving");

    let mut config = ServerConfig::new(
        ServerInfo::berth("Berth machine registry"),
        vec![
            idl::IO_BERTH_REGISTRY,
            idl::IO_SYSTEMD,
            idl::IO_SYSTEMD_MACHINE,
            idl::IO_SYSTEMD_SERVICE,
        ],
    );
    config.log = log;
    let server = Server::new(MachineService::new(registry), config)?;
    notify::ready(&format!(
        "Serving {} machines",
        server.service().registry().len()
    ));
    notify::spawn_watchdog();
    server.run(vec![listener], shutdown).await;
    notify::stopping("Shutting down");
    if !activated {
        let _ = std::fs::remove_file(&paths.socket);
    }
    Ok(())
}

fn registry_config(
    args: &Args,
    state_dir: &std::path::Path,
    fd_limit: u64,
) -> anyhow::Result<RegistryConfig> {
    let cgroup_root = match &args.cgroup_root {
        Some(dir) => Some(CgroupRoot::at(dir).context("Invalid --cgroup-root")?),
        None => CgroupRoot::detect(),
    };
    // Each machine holds a leader and maybe a supervisor pidfd.
    let max_machines =
        usize::try_from(fd_limit.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX);
    Ok(RegistryConfig {
        state_dir: state_dir.to_owned(),
        cgroup_root,
        host_machine: !args.user,
        max_machines: max_machines.max(64),
        max_machines_per_user: args.max_machines_per_user,
        terminate_timeout: args.terminate_timeout(),
    })
}

/// Raises the soft descriptor limit as far as allowed (root may raise the hard one up to
/// `fs.nr_open`); returns the limit in force.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut wanted = current;
    wanted.current = current.maximum;
    if let Some(nr_open) = nr_open {
        let raised = rustix::process::Rlimit {
            current: Some(nr_open),
            maximum: Some(nr_open),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return nr_open;
        }
    }
    if setrlimit(Resource::Nofile, wanted).is_err() {
        tracing::warn!("Cannot raise the descriptor limit, ignoring");
        return current.current.unwrap_or(1024);
    }
    wanted.current.unwrap_or(u64::MAX)
}
