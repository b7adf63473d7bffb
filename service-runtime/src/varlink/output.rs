//! What one connection sends: messages collected in a buffer and written in large chunks, the
//! buffer's memory given back once it is written, so an idle connection holds none.

use std::io;

use std::os::fd::BorrowedFd;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;

use crate::protocol::{ErrorReply, push_error, push_reply};

/// Past this many buffered bytes, messages go out before more are added.
const CHUNK: usize = 64 * 1024;
/// A written buffer keeps at most this much memory.
const IDLE_CAPACITY: usize = 4 * 1024;

/// The sending half of a connection.
#[derive(Debug)]
pub(crate) struct Output {
    stream: OwnedWriteHalf,
    buffer: Vec<u8>,
}

impl Output {
    pub(crate) fn new(stream: OwnedWriteHalf) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Queues a reply carrying `parameters` (JSON text).
    ///
    /// # Errors
    /// Writing out a full buffer failed.
    pub(crate) async fn reply(&mut self, parameters: &[u8], continues: bool) -> io::Result<()> {
        push_reply(&mut self.buffer, parameters, continues);
        self.write_if_full().await
    }

    /// Queues an error reply.
    ///
    /// # Errors
    /// Writing out a full buffer failed.
    pub(crate) async fn error(&mut self, error: &ErrorReply) -> io::Result<()> {
        push_error(&mut self.buffer, error);
        self.write_if_full().await
    }

    /// Queues a whole message.
    ///
    /// # Errors
    /// Writing out a full buffer failed.
    pub(crate) async fn message(&mut self, message: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(message);
        self.write_if_full().await
    }

    /// Writes everything queued, then a reply carrying `parameters` with `fds` attached to its
    /// first byte (`SCM_RIGHTS`), as sd-varlink passes descriptors.
    ///
    /// # Errors
    /// The client is gone.
    pub(crate) async fn reply_with_fds(
        &mut self,
        parameters: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<()> {
        self.flush().await?;
        let mut message = Vec::new();
        push_reply(&mut message, parameters, false);
        let stream: &UnixStream = self.stream.as_ref();
        let sent = loop {
            stream.writable().await?;
            match stream.try_io(Interest::WRITABLE, || {
                berth_os::socket::send_with_fds(stream, &message, fds)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => break other?,
            }
        };
        self.stream.write_all(&message[sent..]).await
    }

    async fn write_if_full(&mut self) -> io::Result<()> {
        if self.buffer.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// The client is gone.
    ///
    /// # Cancel safety
    /// Not cancel safe: a cancelled flush may have written part of the buffer.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.stream.write_all(&self.buffer).await?;
            self.buffer.clear();
        }
        if self.buffer.capacity() > IDLE_CAPACITY {
            self.buffer = Vec::new();
        }
        Ok(())
    }
}
