//! Writing replies: single, streamed enumerations, notifications and errors.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_interfaces::service::SystemError;
use serde::Serialize;
use tokio::io::Interest;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::watch;

use super::output::Output;
use crate::protocol::{ErrorReply, encode_parameters};

/// The result of a method handler: replies were written through the [`Replier`], or the call
/// failed with an error reply.
pub type HandlerResult = Result<(), ErrorReply>;

/// Sends the replies of one call.
///
/// * [`Replier::reply`] sends the one final reply.
/// * [`Replier::push`] streams an enumeration (a `List`): each item goes out with
///   `continues: true` once the next one is known, and the last one as the final reply, so a
///   handler needs no look-ahead. Items are buffered and written in large chunks.
/// * [`Replier::notify`] sends an item of an open-ended subscription right away.
///
/// Once the handler returns, a held enumeration item becomes the final reply; a handler that
/// sent nothing and succeeded answers `{}`. For `oneway` calls nothing is written.
#[derive(Debug)]
pub struct Replier<'c> {
    writer: &'c mut Output,
    reader: &'c OwnedReadHalf,
    shutdown: watch::Receiver<bool>,
    more: bool,
    oneway: bool,
    held: Option<Vec<u8>>,
    finished: bool,
    broken: bool,
}

impl<'c> Replier<'c> {
    pub(crate) fn new(
        writer: &'c mut Output,
        reader: &'c OwnedReadHalf,
        shutdown: watch::Receiver<bool>,
        more: bool,
        oneway: bool,
    ) -> Self {
        Self {
            writer,
            reader,
            shutdown,
            more,
            oneway,
            held: None,
            finished: false,
            broken: false,
        }
    }

    /// Whether the caller set the `more` flag.
    pub fn more(&self) -> bool {
        self.more
    }

    /// Sends the final reply.
    ///
    /// # Errors
    /// Writing to the client failed (`io.systemd.System`); the connection is closed after the
    /// handler returns, so the error only ends the handler early.
    pub async fn reply<P: Serialize + ?Sized>(&mut self, parameters: &P) -> HandlerResult {
        let frame = encode(parameters)?;
        let result = async {
            self.flush_held(true).await?;
            self.write_frame(&frame, false).await?;
            self.writer.flush().await
        }
        .await;
        self.finished = true;
        self.check(result)
    }

    /// Sends the final reply with descriptors attached (`SCM_RIGHTS`); the parameters refer to
    /// them by their index in `fds`, as sd-varlink's `ptyFileDescriptor` and `fileDescriptor`
    /// do. A `oneway` call gets nothing, and the descriptors are closed.
    ///
    /// # Errors
    /// As [`Replier::reply`].
    pub async fn reply_with_fds<P: Serialize + ?Sized>(
        &mut self,
        parameters: &P,
        fds: Vec<OwnedFd>,
    ) -> HandlerResult {
        let frame = encode(parameters)?;
        let result = async {
            self.flush_held(true).await?;
            if self.oneway {
                return Ok(());
            }
            let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
            self.writer.reply_with_fds(&frame, &borrowed).await
        }
        .await;
        self.finished = true;
        self.check(result)
    }

    /// Adds one item to a streamed enumeration.
    ///
    /// # Errors
    /// As [`Replier::reply`].
    pub async fn push<P: Serialize + ?Sized>(&mut self, parameters: &P) -> HandlerResult {
        let frame = encode(parameters)?;
        let result = self.flush_held(true).await;
        self.held = Some(frame);
        self.check(result)
    }

    /// Sends one item of an open-ended subscription now (`continues: true`).
    ///
    /// # Errors
    /// As [`Replier::reply`]; a client that hung up shows here.
    pub async fn notify<P: Serialize + ?Sized>(&mut self, parameters: &P) -> HandlerResult {
        let frame = encode(parameters)?;
        let result = async {
            self.write_frame(&frame, true).await?;
            self.writer.flush().await
        }
        .await;
        self.check(result)
    }

    fn check(&mut self, result: io::Result<()>) -> HandlerResult {
        result.map_err(|error| {
            self.broken = true;
            tracing::debug!(%error, "Writing a reply failed");
            SystemError::System {
                errno: error.raw_os_error().unwrap_or(libc::EIO),
            }
            .into()
        })
    }

    /// Completes when the client has hung up or the server shuts down; used by subscriptions to
    /// stop waiting for events nobody will read.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is read from the connection.
    pub async fn closed(&mut self) {
        let hung_up = async {
            match self.reader.ready(Interest::READABLE).await {
                Ok(ready) if !ready.is_read_closed() => std::future::pending::<()>().await,
                _ => {}
            }
        };
        let shutdown = self.shutdown.wait_for(|stop| *stop);
        tokio::select! {
            () = hung_up => {}
            _ = shutdown => {}
        }
    }

    /// Sends what the handler left: the held item as final reply, or the error, or `{}`.
    pub(crate) async fn finish(mut self, result: HandlerResult) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        match result {
            Ok(()) if self.held.is_some() => self.flush_held(false).await?,
            Ok(()) if !self.finished => self.write_frame(b"{}", false).await?,
            Ok(()) => {}
            Err(error) if self.finished => {
                tracing::debug!(error = %error.name, "Error after the final reply, dropping it");
            }
            Err(error) => {
                self.flush_held(true).await?;
                self.write_error(&error).await?;
            }
        }
        self.writer.flush().await
    }

    async fn flush_held(&mut self, continues: bool) -> io::Result<()> {
        match self.held.take() {
            Some(frame) => self.write_frame(&frame, continues).await,
            None => Ok(()),
        }
    }

    async fn write_frame(&mut self, parameters: &[u8], continues: bool) -> io::Result<()> {
        if self.oneway {
            return Ok(());
        }
        self.writer.reply(parameters, continues).await
    }

    async fn write_error(&mut self, error: &ErrorReply) -> io::Result<()> {
        if self.oneway {
            return Ok(());
        }
        self.writer.error(error).await
    }
}

fn encode<P: Serialize + ?Sized>(parameters: &P) -> Result<Vec<u8>, ErrorReply> {
    encode_parameters(parameters).inspect_err(|_| tracing::error!("A reply does not serialize"))
}
