//! The userdb bridge under test, and real userdb clients that see only its socket.
//!
//! Clients (`userdbctl`, `getent`, `id`) look for providers in `/run/systemd/userdb/` and read
//! `/etc/nsswitch.conf`. [`Bridge::client`] runs them in a private mount namespace where a
//! tmpfs hides the host's `/run`, `/run/systemd/userdb` holds only the bridge's socket, and
//! `nsswitch.conf` says `files systemd`: the host's files are never touched, and no other
//! provider (or an nscd cache) can answer.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::clients::{RawClient, Run, run};
use crate::daemon::Registry;
use crate::netns::UsernsLeader;
use crate::process::Daemon;
use crate::wait;

/// The service name, the socket's base name.
pub const SERVICE: &str = "io.systemd.Machine";

/// Mounts the private view, then runs the client: `sh -c SCRIPT sh USERDB_DIR NSSWITCH CMD…`.
const PRIVATE_VIEW: &str = r#"set -e
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/userdb
mount --bind "$1" /run/systemd/userdb
mount --bind "$2" /etc/nsswitch.conf
shift 2
exec "$@""#;

/// A running `berth-userdb-bridge`.
#[derive(Debug)]
pub struct Bridge {
    daemon: Daemon,
    dir: TempDir,
    registry: PathBuf,
    env: Vec<(String, String)>,
}

impl Bridge {
    /// Starts a bridge in a fresh runtime directory, asking the registry at `registry`, and
    /// waits until it accepts connections (not until it knows the registry's machines: see
    /// [`Bridge::wait_synchronized`]).
    pub fn start(registry: &Path) -> Self {
        Self::with_env(registry, Vec::new())
    }

    /// As [`Bridge::start`], with more environment variables.
    pub fn with_env(registry: &Path, env: Vec<(String, String)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-bridge-")
            .tempdir()
            .expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        write_nsswitch_conf(dir.path());
        let mut bridge = Self {
            daemon: Daemon::new(dir.path().join("bridge.log")),
            dir,
            registry: registry.to_owned(),
            env,
        };
        bridge.start_again();
        bridge
    }

    /// The command line this bridge runs with.
    pub fn command(&self) -> Command {
        let mut command = Command::new(crate::workspace_binary("berth-userdb-bridge"));
        command
            .arg("--runtime-dir")
            .arg(self.dir.path())
            .arg("--registry")
            .arg(&self.registry)
            .env("RUST_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Starts the process (again, after [`Bridge::kill9`]) and waits for its socket.
    pub fn start_again(&mut self) {
        let mut command = self.command();
        let socket = self.socket();
        self.daemon.start(&mut command, &socket);
    }

    /// The bridge's log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// The runtime directory (`--runtime-dir`).
    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The directory holding only the bridge's socket (what clients see as
    /// `/run/systemd/userdb`).
    pub fn userdb_dir(&self) -> PathBuf {
        self.dir.path().join("systemd/userdb")
    }

    /// The `io.systemd.UserDatabase` socket.
    pub fn socket(&self) -> PathBuf {
        self.userdb_dir().join(SERVICE)
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.daemon.stop()
    }

    /// A raw connection to the bridge.
    pub fn raw(&self) -> RawClient {
        RawClient::connect(&self.socket())
    }

    /// `GetUserRecord` with `parameters` plus the right `service`, over a raw connection.
    pub fn user(&self, mut parameters: Value) -> Value {
        parameters["service"] = json!(SERVICE);
        self.raw()
            .method("io.systemd.UserDatabase.GetUserRecord", parameters)
    }

    /// `GetGroupRecord` with `parameters` plus the right `service`.
    pub fn group(&self, mut parameters: Value) -> Value {
        parameters["service"] = json!(SERVICE);
        self.raw()
            .method("io.systemd.UserDatabase.GetGroupRecord", parameters)
    }

    /// Waits until the bridge knows the registry's machines (a lookup it could answer is no
    /// longer `ServiceNotAvailable`).
    pub fn wait_synchronized(&self) {
        wait::until("the bridge to follow the registry", || {
            error_name(&self.user(json!({"uid": 4_294_967_294u32}))) != Some(NOT_AVAILABLE)
        });
    }

    /// Waits until `GetUserRecord` with `parameters` replies `expected` (a record's userName,
    /// or an error name).
    pub fn wait_user(&self, parameters: &Value, expected: &str) {
        wait::until(&format!("{parameters} to give {expected}"), || {
            outcome(&self.user(parameters.clone())) == expected
        });
    }

    /// Runs a real client with only the bridge as userdb provider (see the module docs).
    pub fn client(&self, program: &str, args: &[&str]) -> Run {
        let nsswitch = self.dir.path().join("nsswitch.conf");
        run(&mut userdb_client(
            &self.userdb_dir(),
            &nsswitch,
            program,
            args,
        ))
    }
}

/// Writes an `nsswitch.conf` with `passwd: files systemd` and `group: files systemd` into
/// `dir` and returns its path.
pub fn write_nsswitch_conf(dir: &Path) -> PathBuf {
    let path = dir.join("nsswitch.conf");
    fs::write(&path, "passwd: files systemd\ngroup: files systemd\n").expect("nsswitch.conf");
    path
}

/// The command that runs `program` in a private mount namespace whose `/run/systemd/userdb` is
/// `userdb_dir` and whose `/etc/nsswitch.conf` is `nsswitch` (see the module docs).
pub fn userdb_client(
    userdb_dir: &Path,
    nsswitch: &Path,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(PRIVATE_VIEW)
        .arg("sh")
        .arg(userdb_dir)
        .arg(nsswitch)
        .arg(program)
        .args(args);
    command
}

/// The error a bridge sends while it does not know the registry's machines.
pub const NOT_AVAILABLE: &str = "io.systemd.UserDatabase.ServiceNotAvailable";

/// The error name of a reply, if it is an error.
pub fn error_name(reply: &Value) -> Option<&str> {
    reply["error"].as_str()
}

/// A reply in one word: the record's name, or the error name.
pub fn outcome(reply: &Value) -> String {
    let record = &reply["parameters"]["record"];
    let name = record["userName"]
        .as_str()
        .or_else(|| record["groupName"].as_str());
    name.or_else(|| error_name(reply))
        .unwrap_or("(nothing)")
        .to_owned()
}

/// Registers a container named `name` led by `leader` with the registry at `socket`.
///
/// # Panics
/// When the registry refuses.
pub fn register_container(socket: &Path, name: &str, leader: u32) {
    let reply = RawClient::connect(socket).method(
        "io.systemd.Machine.Register",
        json!({"name": name, "class": "container", "leader": leader}),
    );
    assert!(reply.get("error").is_none(), "Register {name}: {reply}");
}

/// A registry with one user-namespaced container, and a bridge that knows it.
#[derive(Debug)]
pub struct WithContainer {
    /// The bridge.
    pub bridge: Bridge,
    /// The container's leader (UIDs and GIDs 0…65535 at `shift`…).
    pub leader: UsernsLeader,
    /// The registry.
    pub registry: Registry,
}

impl WithContainer {
    /// Starts the registry, registers container `name` with IDs at `shift`…, starts the bridge
    /// and waits until it follows the registry.
    pub fn start(name: &str, shift: u32) -> Self {
        let registry = Registry::start();
        let leader = UsernsLeader::start(shift);
        register_container(&registry.socket(), name, leader.pid());
        let bridge = Bridge::start(&registry.socket());
        bridge.wait_synchronized();
        Self {
            bridge,
            leader,
            registry,
        }
    }
}
