//! One control connection: its calls (cut and checked by the protocol core), a bounded output
//! buffer written without blocking, and what the client subscribed to.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use berth_service_runtime::peer::Peer;
use berth_service_runtime::protocol::{Endpoint, FrameBuffer, Received};

/// Largest backlog of replies for a client that does not read; past it the client is dropped
/// rather than holding the supervisor's memory.
pub const MAX_BACKLOG: usize = 1024 * 1024;

/// What reading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Read what there was; the connection stays.
    Open,
    /// The client hung up.
    Closed,
}

/// What the next message of a client is.
#[derive(Debug)]
pub enum Next {
    /// A call, answered or for the supervisor.
    Received(Received),
    /// Too large, or not a call at all: close the connection, as sd-varlink does.
    Broken,
}

/// A `SubscribeEvents` subscription and its filter (`None`: every event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(pub Option<Vec<String>>);

impl EventFilter {
    /// Whether the event `name` passes.
    pub fn wants(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

/// One client of the control socket.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    input: FrameBuffer,
    output: Vec<u8>,
    /// The client.
    pub peer: Arc<Peer>,
    /// A call waits for its reply or streams replies: later calls wait in the input buffer,
    /// so replies keep the order of the calls.
    pub busy: bool,
    /// Its `SubscribeEvents`, if any.
    pub events: Option<EventFilter>,
    /// Whether it called `SubscribeChildren`.
    pub children: bool,
}

impl Connection {
    /// Wraps an accepted (non-blocking) stream.
    pub fn new(stream: UnixStream, peer: Peer) -> Self {
        Self {
            stream,
            input: FrameBuffer::new(),
            output: Vec::new(),
            peer: Arc::new(peer),
            busy: false,
            events: None,
            children: false,
        }
    }

    /// The socket.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Reads what is there without blocking.
    pub fn read(&mut self) -> Input {
        match self.input.read_from(&mut self.stream) {
            Ok(true) => Input::Open,
            Ok(false) | Err(_) => Input::Closed,
        }
    }

    /// The next complete message, as `endpoint` makes of it, unless a call is in progress.
    pub fn next_call(&mut self, endpoint: &Endpoint) -> Option<Next> {
        if self.busy {
            return None;
        }
        match self.input.next_frame() {
            Ok(Some(frame)) => Some(
                endpoint
                    .receive(frame, &self.peer)
                    .map_or(Next::Broken, Next::Received),
            ),
            Ok(None) => None,
            Err(_) => Some(Next::Broken),
        }
    }

    /// Queues `message` and writes what the socket takes now.
    ///
    /// # Errors
    /// The client is gone, or its backlog went past [`MAX_BACKLOG`]: drop it.
    pub fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.output.extend_from_slice(message);
        self.flush()?;
        if self.output.len() > MAX_BACKLOG {
            return Err(io::Error::other("The client does not read its replies"));
        }
        Ok(())
    }

    /// Writes as much of the backlog as the socket takes.
    ///
    /// # Errors
    /// The client is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.output.is_empty() && self.output.capacity() > 64 * 1024 {
            self.output = Vec::new();
        }
        Ok(())
    }

    /// Whether replies wait to be written.
    pub fn has_backlog(&self) -> bool {
        !self.output.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::fd::AsFd;

    use berth_service_runtime::protocol::ServerInfo;

    fn pair() -> (Connection, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let peer = Peer::of_socket(ours.as_fd()).unwrap();
        (Connection::new(ours, peer), theirs)
    }

    fn endpoint() -> Endpoint {
        let idl = berth_interfaces::idl::IO_SYSTEMD_MACHINE_INSTANCE;
        Endpoint::new(ServerInfo::berth("test"), &[idl]).unwrap()
    }

    fn method(next: Option<Next>) -> String {
        match next {
            Some(Next::Received(Received::Call(call))) => call.method().to_owned(),
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn calls_are_split_at_nul_and_wait_while_busy() {
        let (mut conn, mut client) = pair();
        let endpoint = endpoint();
        let pause = b"{\"method\":\"io.systemd.MachineInstance.Pause\"}\0";
        client.write_all(pause).unwrap();
        client.write_all(b"{\"method\":").unwrap();
        assert_eq!(conn.read(), Input::Open);
        assert!(method(conn.next_call(&endpoint)).ends_with("Pause"));
        assert!(conn.next_call(&endpoint).is_none());
        client
            .write_all(b"\"io.systemd.MachineInstance.Resume\"}\0")
            .unwrap();
        conn.read();
        conn.busy = true;
        assert!(conn.next_call(&endpoint).is_none());
        conn.busy = false;
        assert!(method(conn.next_call(&endpoint)).ends_with("Resume"));
        client.write_all(b"[]\0").unwrap();
        conn.read();
        assert!(matches!(conn.next_call(&endpoint), Some(Next::Broken)));
        drop(client);
        assert_eq!(conn.read(), Input::Closed);
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_past_the_backlog_limit() {
        let (mut conn, _client) = pair();
        let chunk = vec![b'x'; 64 * 1024];
        let dropped = (0..64).any(|_| conn.send(&chunk).is_err());
        assert!(dropped);
        assert!(conn.has_backlog());
    }

    #[test]
    fn filters_pass_only_their_events() {
        assert!(EventFilter(None).wants("paused"));
        let only = EventFilter(Some(vec!["exited".into()]));
        assert!(only.wants("exited") && !only.wants("paused"));
    }
}
