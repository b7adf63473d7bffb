//! `berth-userdb-bridge`: wires the socket, logging and signals around the bridge.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use berth_interfaces::idl;
use berth_service_runtime::activation::{self, PassedSockets};
use berth_service_runtime::logging::{self, LogControl};
use berth_service_runtime::varlink::{Server, ServerConfig, ServerInfo};
use berth_service_runtime::{notify, shutdown};
use berth_userdb_bridge::cache::Cache;
use berth_userdb_bridge::config::{Args, SOCKET_MODE};
use berth_userdb_bridge::varlink::UserDatabaseService;
use berth_userdb_bridge::{watcher, xattr};
use clap::Parser;
use tokio::net::UnixListener;

fn main() -> ExitCode {
    let args = Args::parse();
    let log = logging::init("info");
    // One thread: every call is answered from memory at once, and a lookup that stays on one
    // thread wakes no other (in the benchmark, about 20 µs less per lookup than two workers).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = runtime
        .context("Cannot start the async runtime")
        .and_then(|rt| rt.block_on(serve(args, log)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("berth-userdb-bridge: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args, log: Option<LogControl>) -> anyhow::Result<()> {
    let stopped = shutdown::requested().context("Cannot handle SIGTERM and SIGINT")?;
    let paths = args.paths();
    let mut passed = PassedSockets::from_env()?;
    let activated = !passed.is_empty();
    let listener = match passed.take("userdb")? {
        Some(listener) => listener,
        None if activated => anyhow::bail!("The service manager passed no socket named 'userdb'"),
        None => activation::bind(&paths.socket, SOCKET_MODE)?,
    };
    passed.finish()?;
    set_routing_hints(&listener);

    let cache = Arc::new(Cache::default());
    let mut config = ServerConfig::new(
        ServerInfo::berth("Berth userdb bridge"),
        // What machined 257's userdb socket serves: the interface, and io.systemd's errors.
        vec![idl::IO_SYSTEMD, idl::IO_SYSTEMD_USER_DATABASE],
    );
    config.log = log;
    let server = Server::new(UserDatabaseService::new(Arc::clone(&cache)), config)?;
    tracing::info!(socket = %paths.socket.display(), registry = %paths.registry.display(), "Serving");
    notify::ready("Waiting for the first lookup of a container's user");
    notify::spawn_watchdog();
    // After READY=1, so that the watcher's status lines come after it. It connects to the
    // registry at the first lookup that could name a container user.
    let watcher = tokio::spawn(watcher::follow(cache, paths.registry.clone()));
    server.run(vec![listener], shutdown::wait(stopped)).await;
    notify::stopping("Shutting down");
    watcher.abort();
    if !activated {
        let _ = std::fs::remove_file(&paths.socket);
    }
    Ok(())
}

/// The hints go on whatever path the socket is bound to (ours, or the socket unit's).
fn set_routing_hints(listener: &UnixListener) {
    match listener
        .local_addr()
        .map(|a| a.as_pathname().map(ToOwned::to_owned))
    {
        Ok(Some(path)) => xattr::set_routing_hints(&path),
        _ => tracing::debug!("The socket has no path, no routing hints"),
    }
}
