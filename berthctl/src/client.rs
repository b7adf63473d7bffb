//! Talking to the registry, and to machines' controllers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use berth_interfaces::blocking::{CallError, Connection, parse_reply};
use berth_interfaces::image::{
    CleanPoolMode, CleanPoolReply, CleanPoolRequest, ImageInfo, ImageListRequest,
};
use berth_interfaces::machine::{
    AcquireMetadata, BindMountRequest, CopyRequest, KillRequest, KillWhom, ListRequest,
    MachineInfo, MachineLookup, OpenReply, OpenRequest, SignalSpec,
};
use berth_interfaces::registry::WatchReply;
use serde::Serialize;
use serde_json::Value;

use crate::cli::Scope;
use crate::error::{Error, Result};

/// How long a call may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a copy may take.
const COPY_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a `watch` waits for the next event before asking again whether anyone is there.
const WATCH_TIMEOUT: Duration = Duration::from_secs(3600);

const NO_SUCH_MACHINE: &str = "io.systemd.Machine.NoSuchMachine";
const NO_SUCH_IMAGE: &str = "io.systemd.MachineImage.NoSuchImage";

/// The runtime directory of the scope (`/run`, `$XDG_RUNTIME_DIR`, or `--runtime-dir`).
pub fn runtime_dir(scope: &Scope) -> PathBuf {
    if let Some(dir) = &scope.runtime_dir {
        return dir.clone();
    }
    if scope.user {
        return std::env::var_os("XDG_RUNTIME_DIR").map_or_else(
            || PathBuf::from(format!("/run/user/{}", rustix::process::getuid().as_raw())),
            PathBuf::from,
        );
    }
    PathBuf::from("/run")
}

/// The registry's socket in `scope`.
pub fn registry_socket(scope: &Scope) -> PathBuf {
    runtime_dir(scope).join("systemd/machine/io.systemd.Machine")
}

/// A connection to the registry.
#[derive(Debug)]
pub struct Registry {
    conn: Connection,
}

impl Registry {
    /// Connects to the registry of `scope`.
    ///
    /// # Errors
    /// [`Error::Connect`].
    pub fn connect(scope: &Scope) -> Result<Self> {
        Self::connect_with(&registry_socket(scope), TIMEOUT)
    }

    fn connect_with(path: &Path, timeout: Duration) -> Result<Self> {
        let conn = Connection::connect(path, timeout).map_err(|source| Error::Connect {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { conn })
    }

    /// Every machine, with its metadata if it can be read (`graceful`).
    ///
    /// # Errors
    /// The call failed.
    pub fn list_all(&mut self) -> Result<Vec<MachineInfo>> {
        let request = ListRequest {
            acquire_metadata: Some(AcquireMetadata::Graceful),
            ..ListRequest::default()
        };
        self.collect("io.systemd.Machine.List", &request, "Listing the machines")
    }

    /// Calls `method` with `more` and collects every reply.
    fn collect<P: Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        parameters: &P,
        doing: &str,
    ) -> Result<Vec<R>> {
        self.conn
            .call_more(method, parameters)
            .map_err(Error::call(doing))?;
        let mut replies = Vec::new();
        loop {
            let reply = self.conn.receive::<R>().map_err(Error::call(doing))?;
            replies.push(reply.parameters);
            if !reply.continues {
                return Ok(replies);
            }
        }
    }

    /// Every image of the pool, with metadata if asked (`graceful`).
    ///
    /// # Errors
    /// The call failed.
    pub fn list_images(&mut self, metadata: bool) -> Result<Vec<ImageInfo>> {
        let request = ImageListRequest {
            acquire_metadata: metadata.then_some(AcquireMetadata::Graceful),
            ..ImageListRequest::default()
        };
        self.collect(
            "io.systemd.MachineImage.List",
            &request,
            "Listing the images",
        )
    }

    /// The image `name`, with its metadata if it can be read.
    ///
    /// # Errors
    /// [`Error::NoSuchImage`], or the call failed.
    pub fn image(&mut self, name: &str) -> Result<ImageInfo> {
        let request = ImageListRequest {
            name: Some(name.to_owned()),
            acquire_metadata: Some(AcquireMetadata::Graceful),
            ..ImageListRequest::default()
        };
        self.image_call(name, "List", &request, "Looking up")
    }

    /// Calls `io.systemd.MachineImage.METHOD` about the image `name`.
    ///
    /// # Errors
    /// [`Error::NoSuchImage`], or the call failed.
    pub fn image_call<P: Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
        method: &str,
        parameters: &P,
        doing: &str,
    ) -> Result<R> {
        let method = format!("io.systemd.MachineImage.{method}");
        self.call_about(Subject::Image, name, &method, parameters, doing)
    }

    /// `CleanPool`: the images removed.
    ///
    /// # Errors
    /// The call failed.
    pub fn clean_pool(&mut self, mode: CleanPoolMode) -> Result<Vec<CleanPoolReply>> {
        let request = CleanPoolRequest {
            allow_interactive_authentication: None,
            mode,
        };
        self.collect(
            "io.systemd.MachineImage.CleanPool",
            &request,
            "Cleaning the pool",
        )
    }

    /// Every machine as the raw JSON the registry sends.
    ///
    /// # Errors
    /// The call failed.
    pub fn list_all_raw(&mut self) -> Result<Vec<Value>> {
        let request = ListRequest {
            acquire_metadata: Some(AcquireMetadata::Graceful),
            ..ListRequest::default()
        };
        self.collect("io.systemd.Machine.List", &request, "Listing the machines")
    }

    /// The machine `name`, with its metadata if it can be read.
    ///
    /// # Errors
    /// [`Error::NoSuchMachine`], or the call failed.
    pub fn get(&mut self, name: &str) -> Result<MachineInfo> {
        let request = ListRequest {
            lookup: MachineLookup::by_name(name),
            acquire_metadata: Some(AcquireMetadata::Graceful),
        };
        self.call_on(name, "io.systemd.Machine.List", &request, "Looking up")
    }

    /// `Terminate`.
    ///
    /// # Errors
    /// [`Error::NoSuchMachine`], or the call failed.
    pub fn terminate(&mut self, name: &str) -> Result<()> {
        let lookup = MachineLookup::by_name(name);
        self.call_on::<_, Value>(name, "io.systemd.Machine.Terminate", &lookup, "Terminating")
            .map(drop)
    }

    /// `Kill`.
    ///
    /// # Errors
    /// [`Error::NoSuchMachine`], or the call failed (e.g. `InvalidParameter` for a bad signal).
    pub fn kill(&mut self, name: &str, whom: KillWhom, signal: &str) -> Result<()> {
        let signal = match signal.parse::<i64>() {
            Ok(number) => SignalSpec::Number(number),
            Err(_) => SignalSpec::Name(signal.to_owned()),
        };
        let request = KillRequest {
            lookup: MachineLookup::by_name(name),
            whom: Some(whom),
            signal,
        };
        self.call_on::<_, Value>(name, "io.systemd.Machine.Kill", &request, "Killing")
            .map(drop)
    }

    /// Connects for one copy, which may take long.
    ///
    /// # Errors
    /// [`Error::Connect`].
    pub fn connect_for_copy(scope: &Scope) -> Result<Self> {
        Self::connect_with(&registry_socket(scope), COPY_TIMEOUT)
    }

    /// `CopyTo` (`to_machine`) or `CopyFrom`.
    ///
    /// # Errors
    /// [`Error::NoSuchMachine`], or the call failed.
    pub fn copy(&mut self, to_machine: bool, request: &CopyRequest) -> Result<()> {
        let (method, doing) = if to_machine {
            ("io.systemd.Machine.CopyTo", "Copying into")
        } else {
            ("io.systemd.Machine.CopyFrom", "Copying out of")
        };
        let name = request.lookup.name.clone().unwrap_or_default();
        self.call_on::<_, Value>(&name, method, request, doing)
            .map(drop)
    }

    /// `BindMount`.
    ///
    /// # Errors
    /// [`Error::NoSuchMachine`], or the call failed.
    pub fn bind_mount(&mut self, request: &BindMountRequest) -> Result<()> {
        let name = request.lookup.name.clone().unwrap_or_default();
        self.call_on::<_, Value>(
            &name,
            "io.systemd.Machine.BindMount",
            request,
            "Bind-mounting into",
        )
        .map(drop)
    }

    /// `Open`: the reply and the pty's master, passed with it.
    ///
    /// # Errors
    /// [`Error::NoSuchMachine`], or the call failed.
    pub fn open(&mut self, request: &OpenRequest) -> Result<(OpenReply, OwnedFd)> {
        let name = request.lookup.name.clone().unwrap_or_default();
        let failed = failure(Subject::Machine, &name, "Opening a terminal in");
        self.conn
            .send_call("io.systemd.Machine.Open", request)
            .map_err(&failed)?;
        let (message, mut fds) =
            receive_with_fds(self.conn.stream()).map_err(|e| failed(e.into()))?;
        let reply: OpenReply = parse_reply(&message).map_err(&failed)?.parameters;
        let index = usize::try_from(reply.pty_file_descriptor).unwrap_or(usize::MAX);
        if index >= fds.len() {
            return Err(failed(CallError::Protocol("no pty passed".into())));
        }
        Ok((reply, fds.swap_remove(index)))
    }

    fn call_on<P: Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
        method: &str,
        parameters: &P,
        doing: &str,
    ) -> Result<R> {
        self.call_about(Subject::Machine, name, method, parameters, doing)
    }

    /// Calls `method` about the machine or image `name`.
    fn call_about<P: Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        subject: Subject,
        name: &str,
        method: &str,
        parameters: &P,
        doing: &str,
    ) -> Result<R> {
        self.conn
            .call(method, parameters)
            .map_err(failure(subject, name, doing))
    }
}

/// What a call is about.
#[derive(Debug, Clone, Copy)]
enum Subject {
    Machine,
    Image,
}

/// How a failed call about the machine or image `name` shows: its own exit code when it is
/// unknown, else what was being done.
fn failure(subject: Subject, name: &str, doing: &str) -> impl Fn(CallError) -> Error {
    let (name, doing) = (name.to_owned(), doing.to_owned());
    move |error| match (subject, error.error_name()) {
        (Subject::Machine, Some(NO_SUCH_MACHINE)) => Error::NoSuchMachine(name.clone()),
        (Subject::Image, Some(NO_SUCH_IMAGE)) => Error::NoSuchImage(name.clone()),
        (Subject::Machine, _) => Error::call(format!("{doing} machine '{name}'"))(error),
        (Subject::Image, _) => Error::call(format!("{doing} image '{name}'"))(error),
    }
}

/// A live `io.berth.Registry.Watch` stream.
#[derive(Debug)]
pub struct Watch {
    conn: Connection,
}

impl Watch {
    /// Starts watching the registry of `scope`.
    ///
    /// # Errors
    /// [`Error::Connect`], or the call failed.
    pub fn start(scope: &Scope) -> Result<Self> {
        let mut registry = Registry::connect_with(&registry_socket(scope), WATCH_TIMEOUT)?;
        registry
            .conn
            .call_more("io.berth.Registry.Watch", &serde_json::json!({}))
            .map_err(Error::call("Watching the registry"))?;
        Ok(Self {
            conn: registry.conn,
        })
    }

    /// The next event; `None` when the registry ended the stream.
    ///
    /// # Errors
    /// The stream broke.
    pub fn next_event(&mut self) -> Result<Option<WatchReply>> {
        let reply = self
            .conn
            .receive::<WatchReply>()
            .map_err(Error::call("Watching the registry"))?;
        Ok(reply.continues.then_some(reply.parameters))
    }
}

/// Calls the parameterless `io.systemd.MachineInstance` method `member` on the controller at
/// `address`.
///
/// # Errors
/// [`Error::Connect`] when nothing serves the address, else the call's failure.
pub fn call_controller(address: &str, member: &str, machine: &str) -> Result<()> {
    let path = Path::new(address);
    let mut conn = Connection::connect(path, TIMEOUT).map_err(|source| Error::Connect {
        path: path.to_owned(),
        source,
    })?;
    let method = format!("io.systemd.MachineInstance.{member}");
    conn.call::<_, Value>(&method, &serde_json::json!({}))
        .map(drop)
        .map_err(|error: CallError| {
            Error::call(format!("Asking machine '{machine}' to {member}"))(error)
        })
}

/// Reads one reply message (up to its NUL) and the descriptors passed with it.
fn receive_with_fds(stream: &UnixStream) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut message = Vec::new();
    let mut fds = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let (length, passed) = berth_os::socket::recv_with_fds(stream, &mut buffer)?;
        fds.extend(passed);
        if length == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        message.extend_from_slice(&buffer[..length]);
        if let Some(end) = message.iter().position(|&b| b == 0) {
            message.truncate(end);
            return Ok((message, fds));
        }
    }
}
