//! The control socket: accepting clients, reading their calls, writing replies and event
//! streams, all without ever blocking the supervisor.
//!
//! Messages are cut, checked against the IDL and answered where the service is not needed by
//! the protocol core all Berth endpoints share (`berth_service_runtime::protocol`).
//!
//! * [`connection`]: one client's buffers and subscriptions.
//! * [`methods`]: the served methods and their routes to the supervisor's handlers.

pub mod connection;
pub mod methods;

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use berth_os::socket::{self, BindError};
use berth_service_runtime::peer::Peer;
use berth_service_runtime::protocol::{Endpoint, ServerInfo};

use crate::error::Error;
use crate::poller::{self, Poller};
use connection::{Connection, Input, Next};

/// At most this many clients at once; more are turned away at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Tokens of connections start here (lower ones are the supervisor's own descriptors).
pub const FIRST_CONNECTION: u64 = 16;

/// The listening socket and its clients.
#[derive(Debug)]
pub struct Server {
    endpoint: Endpoint,
    listener: UnixListener,
    path: PathBuf,
    connections: BTreeMap<u64, Connection>,
    next: u64,
}

impl Server {
    /// Binds `path` (mode 0600), unless a live process serves it already.
    ///
    /// # Errors
    /// [`Error::InUse`], or [`Error::Bind`].
    pub fn bind(path: &Path) -> Result<Self, Error> {
        let endpoint = Endpoint::new(ServerInfo::berth("supervise"), &methods::INTERFACES)
            .and_then(|endpoint| {
                endpoint.check_handlers(|method| methods::Method::route(method).is_some())?;
                Ok(endpoint)
            })
            .map_err(|e| Error::setup("the control interfaces")(io::Error::other(e)))?;
        let listener = socket::bind_unix(path, 0o600).map_err(|error| match error {
            BindError::InUse(path) => Error::InUse(path),
            BindError::Io { path, source } => Error::Bind { path, source },
        })?;
        Ok(Self {
            endpoint,
            listener,
            path: path.to_owned(),
            connections: BTreeMap::new(),
            next: FIRST_CONNECTION,
        })
    }

    /// The listening socket, to watch.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Accepts every waiting client.
    pub fn accept(&mut self, poller: &Poller) {
        while let Ok((stream, _)) = self.listener.accept() {
            if self.connections.len() >= MAX_CONNECTIONS || stream.set_nonblocking(true).is_err() {
                continue;
            }
            let Ok(peer) = Peer::of_socket(stream.as_fd()) else {
                continue;
            };
            let token = self.next;
            if poller.add(&stream, token, poller::READ).is_err() {
                continue;
            }
            self.next += 1;
            let connection = Connection::new(stream, peer);
            self.connections.insert(token, connection);
        }
    }

    /// The next message of the client `token`, unless it waits for a call in progress.
    pub fn next_call(&mut self, token: u64) -> Option<Next> {
        self.connections.get_mut(&token)?.next_call(&self.endpoint)
    }

    /// The client behind `token`.
    pub fn get(&mut self, token: u64) -> Option<&mut Connection> {
        self.connections.get_mut(&token)
    }

    /// Reads from the client `token`; `false` when it is gone (and dropped).
    pub fn read(&mut self, token: u64, poller: &Poller) -> bool {
        let Some(conn) = self.connections.get_mut(&token) else {
            return false;
        };
        if conn.read() == Input::Closed {
            self.close(token, poller);
            return false;
        }
        true
    }

    /// Sends `message` to the client `token`, dropping it if it cannot keep up.
    pub fn send(&mut self, token: u64, message: &[u8], poller: &Poller) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if conn.send(message).is_err() {
            self.close(token, poller);
            return;
        }
        let flags = if conn.has_backlog() {
            poller::READ_WRITE
        } else {
            poller::READ
        };
        let _ = poller.modify(conn.stream(), token, flags);
    }

    /// Writes the backlog of the client `token` once its socket takes more.
    pub fn writable(&mut self, token: u64, poller: &Poller) {
        self.send(token, &[], poller);
    }

    /// Sends `message` to every client `wants` picks.
    pub fn broadcast(
        &mut self,
        wants: impl Fn(&Connection) -> bool,
        message: &[u8],
        poller: &Poller,
    ) {
        let tokens: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| wants(c))
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            self.send(token, message, poller);
        }
    }

    /// Drops the client `token`.
    pub fn close(&mut self, token: u64, poller: &Poller) {
        if let Some(conn) = self.connections.remove(&token) {
            poller.remove(conn.stream());
        }
    }

    /// Writes every backlog with blocking writes, all within `timeout`, then drops every
    /// client: the supervisor is about to exit.
    pub fn shut_down(&mut self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        for conn in self.connections.values_mut() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let stream = conn.stream();
            if !left.is_zero()
                && stream.set_nonblocking(false).is_ok()
                && stream.set_write_timeout(Some(left)).is_ok()
            {
                let _ = conn.flush();
            }
        }
        self.connections.clear();
    }
}

impl Drop for Server {
    /// The socket file goes with the listener (a socket another process serves was never
    /// bound, see [`Server::bind`]).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
