//! One control connection: NUL-framed input, a bounded output buffer written without
//! blocking, and what the client subscribed to.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

/// Largest message accepted (sd-varlink's limit); a longer one closes the connection.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Largest backlog of replies for a client that does not read; past it the client is dropped
/// rather than holding the supervisor's memory.
pub const MAX_BACKLOG: usize = 1024 * 1024;

/// What reading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Read what there was; the connection stays.
    Open,
    /// The client hung up, or sent more than [`MAX_MESSAGE`] without a terminator.
    Closed,
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
    input: Vec<u8>,
    output: Vec<u8>,
    /// The client is root or our own user.
    pub privileged: bool,
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
    pub fn new(stream: UnixStream, privileged: bool) -> Self {
        Self {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            privileged,
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
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Input::Closed,
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Input::Closed,
            }
            if self.input.len() > MAX_MESSAGE && !self.input.contains(&0) {
                return Input::Closed;
            }
        }
        Input::Open
    }

    /// The next complete message (without its NUL), unless a call is in progress.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        if self.busy {
            return None;
        }
        let end = self.input.iter().position(|&b| b == 0)?;
        let mut message: Vec<u8> = self.input.drain(..=end).collect();
        message.pop();
        if self.input.is_empty() && self.input.capacity() > 64 * 1024 {
            self.input = Vec::new();
        }
        Some(message)
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

    fn pair() -> (Connection, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Connection::new(ours, true), theirs)
    }

    #[test]
    fn messages_are_split_at_nul_and_wait_while_busy() {
        let (mut conn, mut client) = pair();
        client.write_all(b"{\"a\":1}\0{\"b\"").unwrap();
        assert_eq!(conn.read(), Input::Open);
        assert_eq!(conn.next_message().unwrap(), b"{\"a\":1}");
        assert_eq!(conn.next_message(), None);
        client.write_all(b":2}\0").unwrap();
        conn.read();
        conn.busy = true;
        assert_eq!(conn.next_message(), None);
        conn.busy = false;
        assert_eq!(conn.next_message().unwrap(), b"{\"b\":2}");
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
