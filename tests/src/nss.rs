//! The NSS module under test, installed only inside private mount namespaces: real clients
//! (`getent`, python, C) run under `unshare -m` with the module overlaid onto the system
//! library directory, and `/etc/nsswitch.conf`, `/etc/hosts` and `/run` replaced. Nothing of
//! the host changes, and it all goes away with the client.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::clients::{Run, run};

/// The module as cargo builds it.
pub fn module() -> PathBuf {
    crate::workspace_binary("libnss_mymachines.so")
}

/// The directory glibc loads `libnss_files.so.2` from, where `libnss_mymachines.so.2` goes.
///
/// # Panics
/// When there is none.
pub fn system_library_dir() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/lib64",
        "/usr/lib",
    ]
    .iter()
    .map(Path::new)
    .find(|dir| dir.join("libnss_files.so.2").exists())
    .and_then(|dir| dir.canonicalize().ok())
    .expect("a library directory with libnss_files.so.2")
}

/// Compiles `tests/fixtures/nss_call.c` into `dir`.
///
/// # Panics
/// When `cc` fails.
pub fn compile_driver(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/nss_call.c");
    let binary = dir.join("nss_call");
    let out = run(Command::new("cc")
        .args(["-Wall", "-Werror", "-o"])
        .arg(&binary)
        .arg(&source)
        .arg("-ldl"));
    assert!(out.success, "cc nss_call.c: {out:?}");
    binary
}

/// Runs in a private mount namespace: overlays `$1` onto the library directory `$4`, binds
/// `$2` and `$3` over nsswitch.conf and hosts, puts an empty tmpfs on `/run` (no nscd, no
/// other registry), binds `$5` (unless empty) at `/run/systemd/machine`, then runs the rest.
const SANDBOX: &str = r#"set -e
mount -t overlay overlay -o "ro,lowerdir=$1:$4" "$4"
mount --bind "$2" /etc/nsswitch.conf
mount --bind "$3" /etc/hosts
mount -t tmpfs -o mode=755 tmpfs /run
if [ -n "$5" ]; then
    mkdir -p /run/systemd/machine
    mount --bind "$5" /run/systemd/machine
fi
shift 5
exec "$@""#;

/// A private view of the system with the module installed.
#[derive(Debug)]
pub struct Sandbox {
    dir: TempDir,
    registry: Option<PathBuf>,
}

impl Sandbox {
    /// `hosts` is the `hosts:` line of nsswitch.conf, `etc_hosts` the content of /etc/hosts.
    pub fn new(hosts: &str, etc_hosts: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-nss-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir(dir.path().join("lib")).expect("lib dir");
        std::os::unix::fs::symlink(module(), dir.path().join("lib/libnss_mymachines.so.2"))
            .expect("symlink");
        fs::write(
            dir.path().join("nsswitch.conf"),
            format!("hosts: {hosts}\n"),
        )
        .expect("write");
        fs::write(dir.path().join("hosts"), etc_hosts).expect("write");
        Self {
            dir,
            registry: None,
        }
    }

    /// Puts the directory of the registry's socket at the system path
    /// `/run/systemd/machine`, where the module looks by default.
    pub fn with_registry_at_system_path(mut self, socket: &Path) -> Self {
        self.registry = socket.parent().map(Path::to_path_buf);
        self
    }

    /// A scratch directory that lives as long as the sandbox.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `program` inside the sandbox; add its arguments to the command.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("unshare");
        command
            .args(["-m", "--", "sh", "-c", SANDBOX, "sh"])
            .arg(self.dir.path().join("lib"))
            .arg(self.dir.path().join("nsswitch.conf"))
            .arg(self.dir.path().join("hosts"))
            .arg(system_library_dir())
            .arg(self.registry.as_deref().unwrap_or(Path::new("")))
            .arg(program);
        command
    }

    /// Runs `program ARGS…` inside the sandbox.
    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        run(self.command(program).args(args))
    }
}

/// `errno` before each call of [`Driver::call`]: still there after a success.
pub const ERRNO_SENTINEL: i64 = 4242;
/// `*errnop` before each call: still there unless the module reports an error.
pub const ERRNOP_SENTINEL: i64 = 777;

/// `tests/fixtures/nss_call.c`: calls one entry point of the module directly (`dlopen`), or
/// glibc's `gethostbyname_r`.
#[derive(Debug)]
pub struct Driver {
    binary: PathBuf,
    _dir: TempDir,
}

impl Driver {
    /// Compiles the driver into a directory of its own (mode 0755, so other users can run it).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-nss-driver-")
            .tempdir()
            .expect("tempdir");
        let binary = compile_driver(dir.path());
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        Self { binary, _dir: dir }
    }

    /// The compiled binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `nss_call module MODULE FUNCTION NAME AF BUFLEN [copy]` with `socket` as the
    /// registry (`BERTH_MACHINE_SOCKET`).
    pub fn command(
        &self,
        socket: &Path,
        function: &str,
        name: &str,
        af: i32,
        buflen: usize,
    ) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("module")
            .arg(module())
            .args([function, name, &af.to_string(), &buflen.to_string()])
            .env("BERTH_MACHINE_SOCKET", socket);
        command
    }

    /// Runs [`Driver::command`].
    pub fn call(
        &self,
        socket: &Path,
        function: &str,
        name: &str,
        af: i32,
        buflen: usize,
    ) -> Outcome {
        Outcome::of(&mut self.command(socket, function, name, af, buflen))
    }
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

/// What the driver printed: `key=value` lines.
#[derive(Debug)]
pub struct Outcome {
    lines: Vec<(String, String)>,
}

impl Outcome {
    /// Runs `command` (a driver) and parses its output.
    ///
    /// # Panics
    /// When it fails.
    pub fn of(command: &mut Command) -> Self {
        let out = run(command);
        assert!(out.success, "{command:?}: {out:?}");
        let lines = out
            .stdout
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { lines }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key` as a number.
    ///
    /// # Panics
    /// When it is missing or not a number.
    pub fn int(&self, key: &str) -> i64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {key} in {self:?}"))
    }

    /// Every `addr=` line: `FAMILY ADDRESS[ scopeid=N name=NAME]`.
    pub fn addresses(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(k, _)| k == "addr")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// How long the call took.
    pub fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.int("elapsed_us").unsigned_abs())
    }

    /// `(status, *errnop, *h_errnop)`.
    pub fn status(&self) -> (i64, i64, i64) {
        (self.int("status"), self.int("errnop"), self.int("h_errnop"))
    }
}
