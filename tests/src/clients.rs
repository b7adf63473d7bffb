//! Real clients (varlinkctl 257, python varlink) and a raw socket client.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::require::{PYTHON_VARLINK, VARLINKCTL};

/// The result of running a client.
#[derive(Debug)]
pub struct Run {
    /// Whether it exited 0.
    pub success: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Stdout as JSON values, one per line (varlinkctl prints one reply per line with `-j`,
    /// as a JSON text sequence: each line starts with an RS character).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| l.trim_start_matches('\u{1e}'))
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// Stdout as one JSON value (varlinkctl pretty-prints single replies).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON: {}: {e}", self.stdout))
    }
}

/// Runs `command` and collects its output.
pub fn run(command: &mut Command) -> Run {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
        .into()
}

/// `varlinkctl ARGS…`
pub fn varlinkctl(args: &[&str]) -> Run {
    run(Command::new(VARLINKCTL).args(args))
}

/// `varlinkctl call [--more] -j SOCKET METHOD PARAMS`.
pub fn varlinkctl_call(socket: &Path, method: &str, params: &str, more: bool) -> Run {
    let socket = socket.to_str().expect("UTF-8 path");
    let mut args = vec!["call", "-j"];
    if more {
        args.push("--more");
    }
    args.extend([socket, method, params]);
    varlinkctl(&args)
}

/// `varlinkctl call -j SOCKET METHOD PARAMS` as another user (`setpriv`, no groups).
pub fn varlinkctl_call_as(uid: u32, socket: &Path, method: &str, params: &str) -> Run {
    run(crate::users::as_user(uid, VARLINKCTL)
        .args(["call", "-j"])
        .arg(socket)
        .args([method, params]))
}

/// `python -m varlink.cli ARGS…`
pub fn python_varlink(args: &[&str]) -> Run {
    run(Command::new(PYTHON_VARLINK)
        .args(["-m", "varlink.cli"])
        .args(args))
}

/// A raw connection that sends and receives NUL-terminated JSON, for protocol-level tests.
#[derive(Debug)]
pub struct RawClient {
    reader: BufReader<UnixStream>,
}

impl RawClient {
    /// Connects to `socket`.
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Self {
            reader: BufReader::new(stream),
        }
    }

    /// Sends raw bytes plus the NUL terminator.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stream = self.reader.get_mut();
        let _ = stream.write_all(bytes);
        let _ = stream.write_all(b"\0");
    }

    /// Sends a message.
    pub fn send(&mut self, message: &Value) {
        self.send_raw(message.to_string().as_bytes());
    }

    /// The next message, `None` once the server closed the connection.
    pub fn recv(&mut self) -> Option<Value> {
        let mut buf = Vec::new();
        match self.reader.read_until(0, &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                buf.pop();
                Some(serde_json::from_slice(&buf).expect("JSON reply"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Sends a call and returns its (first) reply.
    pub fn call(&mut self, message: &Value) -> Value {
        self.send(message);
        self.recv().expect("a reply")
    }

    /// Calls `method` with `parameters` and returns the reply.
    pub fn method(&mut self, method: &str, parameters: Value) -> Value {
        self.call(&serde_json::json!({"method": method, "parameters": parameters}))
    }
}

/// Calls `method` with `parameters` on a fresh raw connection to `socket`; returns the reply.
pub fn raw_call(socket: &Path, method: &str, parameters: &Value) -> Value {
    RawClient::connect(socket).method(method, parameters.clone())
}

/// Checks that the service at `socket` names Berth in `GetInfo`, serves exactly `interfaces`,
/// and answers `GetInterfaceDescription` for each with a text that parses to the same interface
/// as its IDL file in `interfaces/idl/`.
///
/// # Panics
/// When any of that does not hold.
pub async fn assert_serves_idl_files(socket: &Path, interfaces: &[&str]) {
    use zlink::varlink_service::Proxy as _;
    let mut conn = zlink::tokio::unix::connect(socket).await.expect("connect");
    let info = conn.get_info().await.unwrap().unwrap();
    assert_eq!(info.vendor, "Berth");
    let mut served: Vec<String> = info.interfaces.iter().map(ToString::to_string).collect();
    served.sort();
    assert_eq!(served, interfaces);
    for name in served {
        let file = berth_interfaces::idl::by_name(&name).expect("an IDL file for every interface");
        let description = conn
            .get_interface_description(name.as_str().try_into().unwrap())
            .await
            .unwrap()
            .unwrap();
        let expected = zlink::idl::Interface::try_from(file).unwrap();
        assert_eq!(description.parse().unwrap(), expected, "{name}");
    }
}
