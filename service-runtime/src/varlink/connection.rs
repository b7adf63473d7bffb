//! One client connection: read messages, let the protocol core sort them, dispatch the calls
//! for the service, reply; one task each.

use std::io;
use std::sync::Arc;

use berth_interfaces::methods::ServiceMethod;
use berth_interfaces::service::VarlinkError;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::watch;

use super::config::Shared;
use super::output::Output;
use super::service::Service;
use super::{HandlerResult, Replier, builtin};
use crate::peer::Peer;
use crate::protocol::{Answer, Call, FrameBuffer, Received};

/// Messages this large leave memory behind that is worth giving back.
const LARGE_MESSAGE: usize = 1024 * 1024;

/// Serves one connection until the client hangs up, breaks the protocol, or the server stops.
pub(crate) async fn serve_connection<S: Service>(
    stream: UnixStream,
    peer: Arc<Peer>,
    shared: Arc<Shared<S>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut reader, write) = stream.into_split();
    let mut writer = Output::new(write);
    let mut frames = FrameBuffer::new();
    loop {
        let received = match frames.next_frame() {
            Ok(Some(frame)) => {
                if frame.len() >= LARGE_MESSAGE {
                    shared.trimmer.request();
                }
                shared.endpoint.receive(frame, &peer)
            }
            Ok(None) => {
                let more = tokio::select! {
                    more = read_more(&mut reader, &mut frames) => more,
                    _ = shutdown.wait_for(|stop| *stop) => break,
                };
                match more {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(error) => {
                        tracing::debug!(%error, uid = peer.uid, "Dropping connection");
                        break;
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, uid = peer.uid, "Dropping connection");
                break;
            }
        };
        let outcome = match received {
            Ok(Received::Call(call)) => {
                let mut replier = Replier::new(
                    &mut writer,
                    &reader,
                    shutdown.clone(),
                    call.more,
                    call.oneway,
                );
                let result = dispatch(&shared, call, &mut replier).await;
                replier.finish(result).await
            }
            Ok(Received::Answer(answer)) => write_answer(&mut writer, &answer).await,
            Err(violation) => {
                tracing::debug!(%violation, uid = peer.uid, "Protocol violation, dropping connection");
                break;
            }
        };
        if let Err(error) = outcome {
            tracing::debug!(%error, uid = peer.uid, "Client went away");
            break;
        }
    }
}

/// Reads what the client sent next; `false` at the end of the stream (also in the middle of
/// a message: the client is gone).
async fn read_more(reader: &mut OwnedReadHalf, frames: &mut FrameBuffer) -> io::Result<bool> {
    Ok(reader.read_buf(frames.buffer()).await? > 0)
}

async fn write_answer(writer: &mut Output, answer: &Answer) -> io::Result<()> {
    match answer.message() {
        Some(message) => {
            writer.message(&message).await?;
            writer.flush().await
        }
        None => Ok(()),
    }
}

async fn dispatch<S: Service>(
    shared: &Shared<S>,
    call: Call,
    replier: &mut Replier<'_>,
) -> HandlerResult {
    if let Some(method) = call.method_of::<ServiceMethod>() {
        return builtin::handle(shared, method, &call, replier).await;
    }
    match S::route(call.method()) {
        Some(method) => shared.service.handle(method, call, replier).await,
        // Not reached: `Server::new` checked that every served method has a handler.
        None => Err(VarlinkError::MethodNotImplemented {
            method: call.method().to_owned(),
        }
        .into()),
    }
}
