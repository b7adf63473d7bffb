//! A small blocking Varlink client on std only: for the NSS module (no async runtime may be
//! loaded into other programs) and for the single-threaded supervisor.
//!
//! Every read and write is bounded by the timeout given at connect time, so a hung server costs
//! at most that long per message. Nothing here panics.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Largest reply accepted (sd-varlink's message limit).
const MAX_REPLY: u64 = 16 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// Connecting, writing or reading failed (including timeouts).
    Io(io::Error),
    /// The peer answered with a Varlink error.
    Reply {
        /// The qualified error name.
        error: String,
        /// Its parameters.
        parameters: Map<String, Value>,
    },
    /// The peer sent something that is not a Varlink reply of the expected shape.
    Protocol(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "Talking to the service failed: {e}"),
            Self::Reply { error, parameters } if parameters.is_empty() => {
                write!(f, "The service replied with {error}")
            }
            Self::Reply { error, parameters } => {
                let parameters = Value::Object(parameters.clone());
                write!(f, "The service replied with {error} {parameters}")
            }
            Self::Protocol(what) => write!(f, "The service sent an invalid reply: {what}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<io::Error> for CallError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl CallError {
    /// The Varlink error name, if the peer replied with one.
    pub fn error_name(&self) -> Option<&str> {
        match self {
            Self::Reply { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The peer's error as `E`, a wire error enum (e.g. `MachineError`), if it is one of
    /// `E`'s errors.
    pub fn reply_error<E: DeserializeOwned>(&self) -> Option<E> {
        match self {
            Self::Reply { error, parameters } => serde_json::from_value(serde_json::json!({
                "error": error,
                "parameters": parameters,
            }))
            .ok(),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct MethodCall<'a, P> {
    method: &'a str,
    parameters: &'a P,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    more: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    oneway: bool,
}

#[derive(serde::Deserialize)]
struct RawReply {
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    continues: bool,
}

/// One reply of a call.
#[derive(Debug)]
pub struct Reply<R> {
    /// The reply parameters.
    pub parameters: R,
    /// Whether more replies follow.
    pub continues: bool,
}

/// A blocking connection to a Varlink service.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<UnixStream>,
}

impl Connection {
    /// Connects to the socket at `path`; every later read and write times out after `timeout`.
    ///
    /// # Errors
    /// Connecting failed (`ENOENT`, `ECONNREFUSED`, …) or the timeouts could not be set.
    pub fn connect(path: &Path, timeout: Duration) -> io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Wraps an already connected stream (its timeouts are the caller's business).
    pub fn from_stream(stream: UnixStream) -> Self {
        Self {
            reader: BufReader::new(stream),
        }
    }

    /// Calls `method` and returns its single reply.
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn call<P: Serialize, R: DeserializeOwned>(
        &mut self,
        method: &str,
        parameters: &P,
    ) -> Result<R, CallError> {
        self.send(method, parameters, false, false)?;
        Ok(self.receive::<R>()?.parameters)
    }

    /// Sends a call of `method` expecting one reply, which the caller reads itself (from
    /// [`Connection::stream`], e.g. with the descriptors passed alongside) and parses with
    /// [`parse_reply`].
    ///
    /// # Errors
    /// Writing failed.
    pub fn send_call<P: Serialize>(
        &mut self,
        method: &str,
        parameters: &P,
    ) -> Result<(), CallError> {
        self.send(method, parameters, false, false)
    }

    /// The connection's socket.
    pub fn stream(&self) -> &UnixStream {
        self.reader.get_ref()
    }

    /// Calls `method` without waiting for (or getting) a reply.
    ///
    /// # Errors
    /// Writing failed.
    pub fn call_oneway<P: Serialize>(
        &mut self,
        method: &str,
        parameters: &P,
    ) -> Result<(), CallError> {
        self.send(method, parameters, false, true)
    }

    /// Calls `method` with `more`; read the replies with [`Connection::receive`] until one
    /// has `continues: false`.
    ///
    /// # Errors
    /// Writing failed.
    pub fn call_more<P: Serialize>(
        &mut self,
        method: &str,
        parameters: &P,
    ) -> Result<(), CallError> {
        self.send(method, parameters, true, false)
    }

    fn send<P: Serialize>(
        &mut self,
        method: &str,
        parameters: &P,
        more: bool,
        oneway: bool,
    ) -> Result<(), CallError> {
        let call = MethodCall {
            method,
            parameters,
            more,
            oneway,
        };
        let mut message =
            serde_json::to_vec(&call).map_err(|e| CallError::Protocol(e.to_string()))?;
        message.push(0);
        self.reader.get_mut().write_all(&message)?;
        Ok(())
    }

    /// Reads the next reply.
    ///
    /// # Errors
    /// See [`CallError`]; the end of the stream is `Io(UnexpectedEof)`.
    pub fn receive<R: DeserializeOwned>(&mut self) -> Result<Reply<R>, CallError> {
        let mut message = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_REPLY)
            .read_until(0, &mut message)?;
        if read == 0 || message.pop() != Some(0) {
            return Err(CallError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        parse_reply(&message)
    }
}

/// Parses one reply message (without its NUL): its parameters as `R`, or the error it is.
///
/// # Errors
/// `Reply` for an error reply, `Protocol` for what is not a reply of that shape.
pub fn parse_reply<R: DeserializeOwned>(message: &[u8]) -> Result<Reply<R>, CallError> {
    let raw: RawReply =
        serde_json::from_slice(message).map_err(|e| CallError::Protocol(e.to_string()))?;
    if let Some(error) = raw.error {
        let parameters = match raw.parameters {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        return Err(CallError::Reply { error, parameters });
    }
    let parameters = raw.parameters.unwrap_or_else(|| Value::Object(Map::new()));
    let parameters =
        serde_json::from_value(parameters).map_err(|e| CallError::Protocol(e.to_string()))?;
    Ok(Reply {
        parameters,
        continues: raw.continues,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    fn serve_once(reply: &'static [u8]) -> (tempfile_path::Dir, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile_path::Dir::new();
        let listener = UnixListener::bind(dir.path()).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = vec![0u8; 4096];
            let n = stream.read(&mut request).unwrap();
            request.truncate(n);
            stream.write_all(reply).unwrap();
            request
        });
        (dir, server)
    }

    /// A socket path in a fresh directory, removed on drop (std only, no dev-dependencies).
    mod tempfile_path {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let dir =
                    std::env::temp_dir().join(format!("berth-blocking-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                Self(dir)
            }
            pub fn path(&self) -> std::path::PathBuf {
                self.0.join("sock")
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn a_call_round_trips_and_errors_come_back_by_name() {
        let (dir, server) = serve_once(b"{\"parameters\":{\"x\":1}}\0");
        let mut conn = Connection::connect(&dir.path(), Duration::from_secs(5)).unwrap();
        let reply: Value = conn.call("a.b.C", &serde_json::json!({"q": true})).unwrap();
        assert_eq!(reply, serde_json::json!({"x": 1}));
        let request = server.join().unwrap();
        assert_eq!(
            request,
            b"{\"method\":\"a.b.C\",\"parameters\":{\"q\":true}}\0"
        );

        let (dir, _server) = serve_once(b"{\"error\":\"a.b.Nope\",\"parameters\":{}}\0");
        let mut conn = Connection::connect(&dir.path(), Duration::from_secs(5)).unwrap();
        let error = conn
            .call::<_, Value>("a.b.C", &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(error.error_name(), Some("a.b.Nope"));
    }

    #[test]
    fn reply_errors_parse_into_the_wire_error_enum_they_belong_to() {
        use crate::machine::MachineError;
        use crate::service::SystemError;
        let error = CallError::Reply {
            error: "io.systemd.System".into(),
            parameters: serde_json::json!({"errno": 5})
                .as_object()
                .cloned()
                .unwrap(),
        };
        assert_eq!(
            error.reply_error::<SystemError>(),
            Some(SystemError::System { errno: 5 })
        );
        assert_eq!(error.reply_error::<MachineError>(), None);
        let error = CallError::Reply {
            error: "io.systemd.Machine.NoSuchMachine".into(),
            parameters: Map::new(),
        };
        assert_eq!(
            error.reply_error::<MachineError>(),
            Some(MachineError::NoSuchMachine)
        );
        let error = CallError::Protocol("garbage".into());
        assert_eq!(error.reply_error::<MachineError>(), None);
    }

    #[test]
    fn a_silent_server_times_out() {
        let dir = tempfile_path::Dir::new();
        let _listener = UnixListener::bind(dir.path()).unwrap();
        let mut conn = Connection::connect(&dir.path(), Duration::from_millis(50)).unwrap();
        let started = std::time::Instant::now();
        let error = conn
            .call::<_, Value>("a.b.C", &serde_json::json!({}))
            .unwrap_err();
        assert!(
            matches!(error, CallError::Io(ref e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
