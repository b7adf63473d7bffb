//! One client connection: read calls, validate, dispatch, reply; one task each.

use std::io;
use std::sync::Arc;

use berth_interfaces::service::VarlinkError;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, BufWriter};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::watch;

use super::message::{IncomingCall, parse_call};
use super::server::Shared;
use super::validate::validate_inputs;
use super::{Call, HandlerResult, MAX_MESSAGE_SIZE, Replier, Service, builtin};
use crate::peer::Peer;

const BUFFER_SIZE: usize = 64 * 1024;

/// Serves one connection until the client hangs up, breaks the protocol, or the server stops.
pub(crate) async fn serve_connection<S: Service>(
    stream: UnixStream,
    peer: Arc<Peer>,
    shared: Arc<Shared<S>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(BUFFER_SIZE, read);
    let mut writer = BufWriter::with_capacity(BUFFER_SIZE, write);
    let mut frame = Vec::new();
    loop {
        let next = tokio::select! {
            next = read_frame(&mut reader, &mut frame) => next,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match next {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                tracing::debug!(%error, uid = peer.uid, "Dropping connection");
                break;
            }
        }
        let incoming = match parse_call(&frame) {
            Ok(incoming) => incoming,
            Err(violation) => {
                tracing::debug!(%violation, uid = peer.uid, "Protocol violation, dropping connection");
                break;
            }
        };
        if frame.capacity() > BUFFER_SIZE {
            frame = Vec::new();
        }
        let mut replier = Replier::new(
            &mut writer,
            reader.get_ref(),
            shutdown.clone(),
            incoming.more,
            incoming.oneway,
        );
        let result = dispatch(&shared, &peer, incoming, &mut replier).await;
        if let Err(error) = replier.finish(result).await {
            tracing::debug!(%error, uid = peer.uid, "Client went away");
            break;
        }
    }
}

/// Reads one NUL-terminated message into `frame` (without the NUL).
///
/// Returns `Ok(false)` at the end of the stream (also in the middle of a message: the client is
/// gone). A message over [`MAX_MESSAGE_SIZE`] is an error.
async fn read_frame(
    reader: &mut BufReader<OwnedReadHalf>,
    frame: &mut Vec<u8>,
) -> io::Result<bool> {
    frame.clear();
    let limit = MAX_MESSAGE_SIZE as u64 + 1;
    let read = (&mut *reader).take(limit).read_until(0, frame).await?;
    if read == 0 {
        return Ok(false);
    }
    if frame.last() != Some(&0) {
        if frame.len() > MAX_MESSAGE_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message larger than 16 MiB",
            ));
        }
        return Ok(false);
    }
    frame.pop();
    Ok(true)
}

async fn dispatch<S: Service>(
    shared: &Shared<S>,
    peer: &Arc<Peer>,
    incoming: IncomingCall,
    replier: &mut Replier<'_>,
) -> HandlerResult {
    let IncomingCall {
        method,
        mut parameters,
        more,
        oneway,
    } = incoming;
    let Some(spec) = shared.interfaces.method(&method) else {
        return Err(VarlinkError::MethodNotFound { method }.into());
    };
    if spec.requires_more() && !more {
        return Err(VarlinkError::ExpectedMore.into());
    }
    if let Err(field) = validate_inputs(spec, &mut parameters) {
        tracing::debug!(%method, %field, "Call failed validation");
        return Err(VarlinkError::invalid_parameter(field).into());
    }
    let builtin = builtin::is_builtin(spec.interface.name());
    let call = Call {
        method,
        parameters,
        more,
        oneway,
        peer: Arc::clone(peer),
    };
    if builtin {
        builtin::handle(shared, call, replier).await
    } else {
        shared.service.handle(call, replier).await
    }
}
