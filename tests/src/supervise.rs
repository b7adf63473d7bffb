//! `supervise` under test: started the way a manager starts it (`posix_spawn`: a plain
//! `Command`, no `pre_exec`), with its control socket and cgroups inside the test's registry
//! directories, and the processes it is expected to kill.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde_json::{Value, json};

use crate::clients::RawClient;
use crate::daemon::Registry;
use crate::process::Proc;
use crate::wait;

/// A running `supervise`.
#[derive(Debug)]
pub struct Supervise {
    proc: Proc,
    /// Its control socket.
    pub socket: PathBuf,
    /// The machine name.
    pub name: String,
    status: Option<ExitStatus>,
}

/// How to start it.
#[derive(Debug, Default)]
pub struct Launch<'a> {
    /// The registry to register with (`--no-register` without one).
    pub registry: Option<&'a Registry>,
    /// More options (before `--`).
    pub args: Vec<String>,
    /// A directory for the control socket when there is no registry.
    pub dir: Option<&'a Path>,
    /// Pipe its standard input (for `--tie-to-stdin`).
    pub piped_stdin: bool,
    /// Wrap the command line: the program and arguments put before `supervise`.
    pub wrapper: Vec<String>,
    /// More environment variables.
    pub env: Vec<(String, String)>,
}

impl Supervise {
    /// Starts `supervise` for the machine `name` running `sh -c SCRIPT`, registered with
    /// `registry` (in its cgroup root), and waits until the machine is registered.
    pub fn start(registry: &Registry, name: &str, script: &str) -> Self {
        let launch = Launch {
            registry: Some(registry),
            ..Launch::default()
        };
        Self::launch(name, &["sh", "-c", script], launch)
    }

    /// Starts `supervise --name NAME [options] -- PAYLOAD…` and waits until it serves (and,
    /// with a registry, until the machine is registered).
    pub fn launch(name: &str, payload: &[&str], launch: Launch<'_>) -> Self {
        let dir = launch
            .registry
            .map(Registry::runtime_dir)
            .or(launch.dir)
            .expect("a registry or a directory");
        let socket = dir.join(format!("{name}.sock"));
        let binary = crate::workspace_binary("supervise");
        let mut command = match launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .args(["--name", name, "--control-socket"])
            .arg(&socket);
        match launch.registry {
            Some(registry) => {
                command.arg("--registry").arg(registry.socket());
                if let Some(root) = registry.cgroup_root() {
                    command.arg("--cgroup-root").arg(root);
                }
            }
            None => {
                command.arg("--no-register");
            }
        }
        command.args(&launch.args).arg("--").args(payload);
        command.envs(launch.env.iter().map(|(k, v)| (k, v)));
        let stdin = if launch.piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        command.stdin(stdin);
        let mut supervise = Self {
            proc: Proc::spawn(&mut command),
            socket,
            name: name.to_owned(),
            status: None,
        };
        supervise.wait_serving(launch.registry);
        supervise
    }

    fn wait_serving(&mut self, registry: Option<&Registry>) {
        wait::until(&format!("supervise {} to serve", self.name), || {
            assert!(self.status().is_none(), "supervise {} exited", self.name);
            std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
                && registry.is_none_or(|r| list(r, &self.name).is_some())
        });
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The process handle (e.g. its stdin).
    pub fn child(&mut self) -> &mut Child {
        self.proc.child()
    }

    /// Its exit status if it has exited.
    pub fn status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.proc.child().try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits for it to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        wait::until(&format!("supervise {} to exit", self.name), || {
            self.status().is_some()
        });
        self.status
            .and_then(|s| s.code())
            .expect("an exit code, not a signal")
    }

    /// Reaps it after a test killed it.
    pub fn status_after_kill(&mut self) {
        wait::until(&format!("supervise {} to die", self.name), || {
            self.status().is_some()
        });
    }

    /// Calls `method` on the control socket and returns the reply message.
    pub fn call(&self, method: &str, parameters: Value) -> Value {
        RawClient::connect(&self.socket).method(method, parameters)
    }

    /// Calls an `io.systemd.MachineInstance` method without parameters and checks it worked.
    pub fn instance(&self, method: &str) {
        let reply = self.call(&format!("io.systemd.MachineInstance.{method}"), json!({}));
        assert_eq!(reply, json!({"parameters": {}}), "{method}");
    }

    /// `Describe`'s `status`.
    pub fn status_text(&self) -> String {
        let reply = self.call("io.systemd.MachineInstance.Describe", json!({}));
        reply["parameters"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The registry's `List` entry for `name`, if it is registered.
pub fn list(registry: &Registry, name: &str) -> Option<Value> {
    let mut client = RawClient::connect(&registry.socket());
    let reply = client.method("io.systemd.Machine.List", json!({"name": name}));
    reply
        .get("error")
        .is_none()
        .then(|| reply["parameters"].clone())
}

/// The PIDs a payload wrote into `file`, one a line, once there are `count`.
pub fn pids_in(file: &Path, count: usize) -> Vec<u32> {
    let mut pids = Vec::new();
    wait::until(&format!("{count} PIDs in {}", file.display()), || {
        pids = fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        pids.len() >= count
    });
    pids
}

/// A stream of replies from a `varlinkctl call --more` running in the background, read by a
/// thread so that every read has a deadline.
#[derive(Debug)]
pub struct Stream {
    proc: Proc,
    lines: mpsc::Receiver<Value>,
}

impl Stream {
    /// Starts `varlinkctl call --more -j SOCKET METHOD PARAMS`.
    pub fn varlinkctl(socket: &Path, method: &str, params: &Value) -> Self {
        let mut proc = Proc::spawn(
            Command::new(crate::require::VARLINKCTL)
                .args(["call", "--more", "-j"])
                .arg(socket)
                .args([method, &params.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped()),
        );
        let stdout: ChildStdout = proc.child().stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim_start_matches('\u{1e}').trim().to_owned();
                let Ok(value) = serde_json::from_str(&line) else {
                    continue;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Self { proc, lines }
    }

    /// The next reply, or `None` when the stream ended.
    pub fn next_reply(&mut self) -> Option<Value> {
        self.lines.recv_timeout(wait::DEADLINE).ok()
    }

    /// Waits for the client to exit and tells whether it succeeded.
    pub fn finished_ok(&mut self) -> bool {
        let mut status = None;
        wait::until("varlinkctl to exit", || {
            status = self.proc.child().try_wait().ok().flatten();
            status.is_some()
        });
        status.is_some_and(|s| s.success())
    }
}

/// A cgroup2 directory delegated to `uid` (as systemd's `Delegate=yes` does), with a
/// sub-cgroup `sup` for the supervisor; everything in it is killed and removed on drop.
#[derive(Debug)]
pub struct DelegatedCgroup {
    /// Its directory.
    pub path: PathBuf,
}

impl DelegatedCgroup {
    /// Creates and delegates it (needs root and cgroup2 at `/sys/fs/cgroup/unified`).
    pub fn create(uid: u32) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!(
            "/sys/fs/cgroup/unified/berth-test-delegated-{}-{n}",
            std::process::id()
        ));
        let cgroup = Self { path };
        for dir in [cgroup.path.clone(), cgroup.supervisor_dir()] {
            fs::create_dir(&dir).expect("mkdir cgroup");
            let owner = Some(rustix::fs::Uid::from_raw(uid));
            let group = Some(rustix::fs::Gid::from_raw(uid));
            for file in [
                "",
                "cgroup.procs",
                "cgroup.subtree_control",
                "cgroup.threads",
            ] {
                rustix::fs::chown(dir.join(file), owner, group).expect("chown");
            }
        }
        cgroup
    }

    /// The sub-cgroup the supervisor is started in.
    pub fn supervisor_dir(&self) -> PathBuf {
        self.path.join("sup")
    }
}

impl Drop for DelegatedCgroup {
    fn drop(&mut self) {
        crate::daemon::remove_cgroup_tree(&self.path);
    }
}
