//! The registry under test: its own runtime directory and cgroup, its own process group.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::process::{Pid, Signal};
use tempfile::TempDir;

use crate::clients::RawClient;
use crate::process::Daemon;
use crate::wait;

const CGROUP2: &str = "/sys/fs/cgroup/unified";

/// How to start the registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--user`.
    pub user: bool,
    /// Give it a cgroup root of its own (needs root and cgroup2).
    pub cgroup: bool,
    /// `--terminate-timeout`.
    pub terminate_timeout: u64,
    /// More arguments.
    pub args: Vec<String>,
    /// More environment variables.
    pub env: Vec<(String, String)>,
    /// Run as this UID and GID (with `setpriv`) instead of as the test's user.
    pub run_as: Option<u32>,
    /// Start it with this descriptor limit (soft and hard, with `prlimit`), which sets its
    /// budget of connections (an eighth) and machines.
    pub nofile: Option<u64>,
    /// Start it with this umask (through `sh`).
    pub umask: Option<u32>,
    /// Start it in a mount namespace of its own where its state directory is a tmpfs of this
    /// size (`mount -o size=`), to fill it; see [`Registry::state_dir_seen_by_it`].
    pub state_tmpfs: Option<String>,
    /// Start it in a mount namespace of its own where this directory (made if missing) is a
    /// tmpfs of this size (`"64k"`): a small file system to fill.
    pub tmpfs_at: Option<(PathBuf, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            user: false,
            cgroup: true,
            terminate_timeout: 2,
            args: Vec::new(),
            env: Vec::new(),
            run_as: None,
            nofile: None,
            umask: None,
            state_tmpfs: None,
            tmpfs_at: None,
        }
    }
}

/// A running `berth-machine-registry`.
#[derive(Debug)]
pub struct Registry {
    daemon: Daemon,
    dir: TempDir,
    cgroup: Option<TestCgroup>,
    options: Options,
}

impl Registry {
    /// Starts a registry that makes no cgroups of its own (what most tests want).
    pub fn without_cgroup() -> Self {
        Self::with(Options {
            cgroup: false,
            ..Options::default()
        })
    }

    /// Starts a system-scope registry in a fresh runtime directory.
    pub fn start() -> Self {
        Self::with(Options::default())
    }

    /// Starts a registry with `options`.
    pub fn with(options: Options) -> Self {
        let dir = runtime_tempdir();

        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        if let Some(uid) = options.run_as {
            let (uid, gid) = (
                rustix::fs::Uid::from_raw(uid),
                rustix::fs::Gid::from_raw(uid),
            );
            rustix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let cgroup = options.cgroup.then(TestCgroup::create).flatten();
        let mut registry = Self {
            daemon: Daemon::new(dir.path().join("registry.log")),
            dir,
            cgroup,
            options,
        };
        registry.start_again();
        registry
    }

    /// The command line this registry runs with.
    pub fn command(&self) -> Command {
        let mut argv: Vec<OsString> =
            vec![crate::workspace_binary("berth-machine-registry").into_os_string()];
        if let Some(limit) = self.options.nofile {
            let prlimit = [
                "prlimit".into(),
                format!("--nofile={limit}:{limit}").into(),
                "--".into(),
            ];
            argv.splice(0..0, prlimit);
        }
        if let Some(umask) = self.options.umask {
            let script = format!("umask {umask:03o} && exec \"$0\" \"$@\"");
            argv.splice(0..0, ["sh".into(), "-c".into(), script.into()]);
        }
        if let Some(size) = &self.options.state_tmpfs {
            on_private_tmpfs(&mut argv, &self.state_dir(), size);
        }
        if let Some((dir, size)) = &self.options.tmpfs_at {
            on_private_tmpfs(&mut argv, dir, size);
        }
        let mut command = match self.options.run_as {
            Some(uid) => crate::users::as_user(uid, &argv[0]),
            None => Command::new(&argv[0]),
        };
        command.args(&argv[1..]);
        command.arg("--runtime-dir").arg(self.dir.path());
        command
            .arg("--terminate-timeout")
            .arg(self.options.terminate_timeout.to_string());
        if self.options.user {
            command.arg("--user");
        }
        if let Some(cgroup) = &self.cgroup {
            command.arg("--cgroup-root").arg(&cgroup.path);
        }
        command.args(&self.options.args);
        command.env("RUST_LOG", "debug");
        command.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Starts the process (again, after [`Registry::kill9`] or [`Registry::stop`]) and waits
    /// until it accepts connections.
    pub fn start_again(&mut self) {
        let mut command = self.command();
        let socket = self.socket();
        self.daemon.start(&mut command, &socket);
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// The runtime directory (`--runtime-dir`).
    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `io.systemd.Machine` socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("systemd/machine/io.systemd.Machine")
    }

    /// The state file directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("systemd/machines")
    }

    /// The state file directory as the registry sees it (through its root directory, which is
    /// in its own mount namespace when it was started with a state tmpfs).
    pub fn state_dir_seen_by_it(&self) -> PathBuf {
        let path = self.state_dir();
        let relative = path.strip_prefix("/").unwrap_or(&path);
        Path::new(&format!("/proc/{}/root", self.pid())).join(relative)
    }

    /// The host table's directory, beside the socket.
    pub fn host_table(&self) -> PathBuf {
        self.dir.path().join("systemd/machine/berth-hosts")
    }

    /// Waits until the host table holds the addresses of container `name` (written by the
    /// watch the first lookup of its addresses starts).
    pub fn wait_for_host_entry(&self, name: &str) {
        let entry = self.host_table().join(name);
        crate::wait::until(&format!("the host table entry of {name}"), || {
            std::fs::read_to_string(&entry).is_ok_and(|text| text.contains("addresses"))
        });
    }

    /// The cgroup root given to the registry, if any.
    pub fn cgroup_root(&self) -> Option<&Path> {
        self.cgroup.as_ref().map(|c| c.path.as_path())
    }

    /// The registry's PID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        self.daemon.kill9();
    }

    /// SIGSTOP, and waits until every thread of the registry has stopped: the kernel still
    /// queues connections, nobody answers them.
    pub fn suspend(&self) {
        self.signal_all_threads(Signal::STOP, true);
    }

    /// SIGCONT after [`Registry::suspend`], and waits until no thread is stopped.
    pub fn resume(&self) {
        self.signal_all_threads(Signal::CONT, false);
    }

    fn signal_all_threads(&self, signal: Signal, stopped: bool) {
        let pid = self.pid();
        let raw = Pid::from_raw(pid as i32).expect("pid");
        rustix::process::kill_process(raw, signal).expect("signal");
        wait::until("the registry's threads to follow the signal", || {
            let tasks = fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
            tasks.filter_map(Result::ok).all(|task| {
                let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|s| s.split_whitespace().next());
                (state == Some("T")) == stopped
            })
        });
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.daemon.stop()
    }

    /// Registers machine `name` of `class` (`container`, `vm`) led by `leader`, with host-side
    /// interface indices `if_indices`, over a plain blocking connection.
    ///
    /// # Panics
    /// When the registry refuses.
    pub fn register(&self, name: &str, class: &str, leader: u32, if_indices: &[u32]) {
        let reply = RawClient::connect(&self.socket()).method(
            "io.systemd.Machine.Register",
            serde_json::json!({
                "name": name,
                "class": class,
                "leaderProcessId": {"pid": leader},
                "ifIndices": if_indices,
            }),
        );
        assert!(reply.get("error").is_none(), "Register {name}: {reply}");
    }

    /// A zlink connection to the registry.
    pub async fn connect(&self) -> zlink::Connection<zlink::tokio::unix::Stream> {
        zlink::tokio::unix::connect(self.socket())
            .await
            .expect("connect")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cgroup2 directory for one test, emptied and removed on drop.
#[derive(Debug)]
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn create() -> Option<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        if !rustix::process::geteuid().is_root()
            || !Path::new(CGROUP2).join("cgroup.procs").exists()
        {
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(CGROUP2).join(format!("berth-test-{}-{n}", std::process::id()));
        fs::create_dir(&path).ok()?;
        Some(Self { path })
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.path);
    }
}

/// Kills everything in a cgroup tree and removes it, deepest first.
pub fn remove_cgroup_tree(path: &Path) {
    let _ = fs::write(path.join("cgroup.kill"), "1");
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    wait::until("an emptied cgroup to go away", || {
        fs::remove_dir(path).is_ok() || !path.exists()
    });
}

/// Wraps `argv` to run in a mount namespace of its own where `dir` (made if missing) is a
/// tmpfs of `size`.
fn on_private_tmpfs(argv: &mut Vec<OsString>, dir: &Path, size: &str) {
    let script = format!(
        "mkdir -p \"$0\" && mount -t tmpfs -o size={size},mode=0755 tmpfs \"$0\" && exec \"$@\""
    );
    let private = ["unshare", "--mount", "--propagation", "private", "sh", "-c"];
    let wrapper = private
        .into_iter()
        .map(OsString::from)
        .chain([script.into(), dir.as_os_str().to_owned()]);
    argv.splice(0..0, wrapper);
}

/// A fresh runtime directory on tmpfs, like `/run`.
pub fn runtime_tempdir() -> TempDir {
    tmpfs_tempdir("berth-test-")
}

/// A fresh directory named `PREFIX…` on tmpfs (`/dev/shm`) if there is one, else in the
/// temporary directory.
pub fn tmpfs_tempdir(prefix: &str) -> TempDir {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut builder = tempfile::Builder::new();
        builder.prefix(prefix);
        builder
    };
    let dir = if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    };
    dir.expect("a directory on tmpfs")
}
