//! Accepting connections: limits, one task per connection, shutdown.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use berth_interfaces::Methods;
use berth_interfaces::methods::ServiceMethod;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::admission::Admission;
use super::config::{ServerConfig, Shared};
use super::connection::serve_connection;
use super::service::Service;
use super::trim::Trimmer;
use crate::peer::Peer;
use crate::protocol::{Endpoint, ProtocolError};

/// A Varlink server for the service `S`.
pub struct Server<S> {
    shared: Arc<Shared<S>>,
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("interfaces", self.shared.endpoint.interfaces())
            .finish_non_exhaustive()
    }
}

impl<S: Service> Server<S> {
    /// Builds a server; parses every interface text and checks that every method served has
    /// a handler.
    ///
    /// # Errors
    /// An interface text does not parse or is given twice, or a method has no handler.
    pub fn new(service: S, config: ServerConfig) -> Result<Self, ProtocolError> {
        let endpoint = Endpoint::new(config.info.clone(), &config.interfaces)?;
        endpoint.check_handlers(|method| {
            ServiceMethod::from_qualified(method).is_some() || S::route(method).is_some()
        })?;
        let admission = Arc::new(Admission::new(
            config.max_connections,
            config.max_connections_per_uid,
        ));
        Ok(Self {
            shared: Arc::new(Shared {
                service,
                config,
                endpoint,
                admission,
                trimmer: Trimmer::default(),
            }),
        })
    }

    /// The service behind this server.
    pub fn service(&self) -> &S {
        &self.shared.service
    }

    /// Serves the listeners until `shutdown` completes, then lets every connection finish its
    /// current call (up to the configured grace time) and returns.
    pub async fn run(&self, listeners: Vec<UnixListener>, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let accepting: Vec<_> = listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(accept_loop(
                    listener,
                    Arc::clone(&self.shared),
                    stopped.clone(),
                ))
            })
            .collect();
        tokio::select! {
            () = shutdown => {}
            () = self.shared.trimmer.run() => {}
        }
        let _ = stop.send(true);
        for task in accepting {
            let _ = task.await;
        }
        let all = u32::try_from(self.shared.config.max_connections).unwrap_or(u32::MAX);
        let drained = self.shared.admission.all().acquire_many(all);
        if tokio::time::timeout(self.shared.config.shutdown_grace, drained)
            .await
            .is_err()
        {
            tracing::warn!("Connections still busy at shutdown, closing them");
        }
    }
}

async fn accept_loop<S: Service>(
    listener: UnixListener,
    shared: Arc<Shared<S>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, _)) => admit(stream, &shared, &stopped),
            Err(error) => {
                // Typically EMFILE: back off instead of spinning on a ready listener.
                tracing::warn!(%error, "Accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Starts serving a new connection, unless a limit is reached: then the client is told why
/// (if its socket takes the error reply right away) and the connection is closed.
fn admit<S: Service>(stream: UnixStream, shared: &Arc<Shared<S>>, stopped: &watch::Receiver<bool>) {
    let peer = match Peer::of_socket(stream.as_fd()) {
        Ok(peer) => Arc::new(peer),
        Err(error) => {
            tracing::debug!(%error, "No credentials for a new connection, refusing it");
            return;
        }
    };
    let ticket = match shared.admission.admit(&peer) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            let _ = stream.try_write(&refusal.message());
            return;
        }
    };
    let stopped = stopped.clone();
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        serve_connection(stream, peer, Arc::clone(&shared), stopped).await;
        drop(ticket);
        shared.trimmer.request();
    });
}
