//! `berth-machine-registry`: wires sockets, logging and signals around the registry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use berth_interfaces::idl;
use berth_machine_registry::config::Args;
use berth_machine_registry::images::Pool;
use berth_machine_registry::manager::Registry;
use berth_machine_registry::restore;
use berth_machine_registry::startup::{FdBudget, listeners, raise_fd_limit, registry_config};
use berth_machine_registry::varlink::{HookService, MachineService};
use berth_service_runtime::logging::{self, LogControl};
use berth_service_runtime::varlink::{Server, ServerConfig, ServerInfo};
use berth_service_runtime::{notify, shutdown};
use clap::Parser;

fn main() -> ExitCode {
    let args = Args::parse();
    // Files are created with the mode they are meant to have (state files and host table
    // entries 0644), without a chmod each; machined sets the same umask.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let log = logging::init("info");
    let budget = FdBudget::for_limit(raise_fd_limit());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = runtime
        .context("Cannot start the async runtime")
        .and_then(|rt| rt.block_on(serve(args, log, budget)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("berth-machine-registry: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args, log: Option<LogControl>, budget: FdBudget) -> anyhow::Result<()> {
    let stopped = shutdown::requested().context("Cannot handle SIGTERM/SIGINT")?;
    let paths = args.paths()?;
    let listeners = listeners(&args, &paths)?;
    let registry = Registry::new(registry_config(&args, &paths, budget)?)
        .context("Cannot set up the registry")?;
    let report = restore::restore(&registry);
    registry.vouch_for_host_table();
    tracing::info!(restored = report.restored, dropped = report.dropped, socket = %paths.socket.display(), "Serving");

    let mut config = server_config("", registry_interfaces(), budget);
    config.log = log;
    let pool = Pool::new(args.user, &args.runtime_dir()?);
    let machines = Server::new(MachineService::new(Arc::clone(&registry), pool), config)?;
    let config = server_config(": resolve hook", vec![idl::IO_SYSTEMD_RESOLVE_HOOK], budget);
    let hook = Server::new(HookService::new(Arc::clone(&registry)), config)?;
    notify::ready(&format!("Serving {} machines", registry.len()));
    notify::spawn_watchdog();
    let hook_listener = listeners.resolve_hook;
    tokio::join!(
        machines.run(
            std::iter::once(listeners.machine)
                .chain(listeners.image)
                .collect(),
            shutdown::wait(stopped.clone())
        ),
        hook.run(
            hook_listener.into_iter().collect(),
            shutdown::wait(stopped.clone())
        ),
    );
    notify::stopping("Shutting down");
    for path in listeners.bound {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn registry_interfaces() -> Vec<&'static str> {
    vec![
        idl::IO_BERTH_REGISTRY,
        idl::IO_SYSTEMD,
        idl::IO_SYSTEMD_MACHINE,
        idl::IO_SYSTEMD_MACHINE_IMAGE,
        idl::IO_SYSTEMD_SERVICE,
    ]
}

fn server_config(role: &str, interfaces: Vec<&'static str>, budget: FdBudget) -> ServerConfig {
    let info = ServerInfo::berth(&format!("Berth machine registry{role}"));
    let mut config = ServerConfig::new(info, interfaces);
    config.max_connections = budget.connections;
    config.max_connections_per_uid = budget.connections / 4;
    config
}
