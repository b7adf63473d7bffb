//! The real systemd-machined 257 beside Berth in benchmarks, from the trixie chroot that
//! `scripts/setup-test-deps.sh` installs.
//!
//! It runs as `machined257.sh start-direct` of the team kit does, but in a private mount
//! namespace: the chroot's `/proc`, `/sys`, `/dev` and `/run` are mounted only there (`/run` is
//! a directory of the benchmark on tmpfs, as `/run` is on a systemd host), so nothing is left
//! mounted on the host and nobody else's use of the chroot is disturbed. A chroot D-Bus daemon
//! runs next to it, as machined needs one.
//!
//! Run this way (no systemd PID 1) machined accepts only leaders that sit in a `*.scope`
//! cgroup on the cgroup2 hierarchy (else `Register` fails with errno 6): [`ScopeSlice`] makes
//! such cgroups.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::daemon::tmpfs_tempdir;
use crate::process::Proc;
use crate::wait;

/// Where the chroot lives.
pub const TRIXIE: &str = "/opt/trixie";

const CGROUP2: &str = "/sys/fs/cgroup/unified";

const START: &str = r#"set -e
T=/opt/trixie
mount -t proc proc $T/proc
mount --rbind /sys $T/sys
mount --rbind /dev $T/dev
mount --bind "$1" $T/run
mkdir -p $T/run/dbus $T/run/lock $T/run/systemd
if [ -n "${2:-}" ]; then mkdir -p $T/var/lib/machines; mount --bind "$2" $T/var/lib/machines; fi
chroot $T dbus-daemon --system --nofork --nopidfile &
i=0
while [ ! -S $T/run/dbus/system_bus_socket ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
exec chroot $T env SYSTEMD_LOG_LEVEL=info SYSTEMD_LOG_TARGET=console /usr/lib/systemd/systemd-machined"#;

/// A running machined 257 with its D-Bus daemon, killed (the whole process group) on drop.
#[derive(Debug)]
pub struct Machined257 {
    proc: Proc,
    run: TempDir,
}

impl Machined257 {
    /// Starts it and waits for both of its sockets.
    ///
    /// # Panics
    /// When it does not start (see [`available`] first).
    pub fn start() -> Self {
        Self::start_with_images(None)
    }

    /// Starts it with `images` (a directory) as its `/var/lib/machines`, in its namespace only.
    ///
    /// # Panics
    /// As [`Machined257::start`].
    pub fn start_with_images(images: Option<&Path>) -> Self {
        let run = tmpfs_tempdir("berth-bench-machined257-");
        fs::set_permissions(run.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let log = fs::File::create(run.path().join("machined.log")).expect("log");
        let proc = Proc::spawn(
            Command::new("unshare")
                .args([
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    START,
                    "sh",
                ])
                .arg(run.path())
                .args(images)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        );
        let machined = Self { proc, run };
        for socket in [
            machined.socket(),
            machined.userdb_dir().join("io.systemd.Machine"),
        ] {
            wait::until("machined 257's sockets", || {
                UnixStream::connect(&socket).is_ok()
            });
        }
        machined
    }

    /// The `io.systemd.Machine` socket.
    pub fn socket(&self) -> PathBuf {
        self.run.path().join("systemd/machine/io.systemd.Machine")
    }

    /// Its `/run/systemd/userdb`, holding only its `io.systemd.Machine` userdb socket.
    pub fn userdb_dir(&self) -> PathBuf {
        self.run.path().join("systemd/userdb")
    }

    /// machined's PID (`unshare`, `sh` and `chroot` exec into it).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.run.path().join("machined.log")).unwrap_or_default()
    }
}

/// Whether the chroot is there.
pub fn available() -> bool {
    Path::new(TRIXIE)
        .join("usr/lib/systemd/systemd-machined")
        .exists()
}

/// Whether the cgroup2 hierarchy that [`ScopeSlice`] needs is mounted.
pub fn cgroup2_available() -> bool {
    Path::new(CGROUP2).join("cgroup.procs").exists()
}

/// A slice of the benchmark's own on the cgroup2 hierarchy, holding `machine-NAME.scope`
/// cgroups for leaders; everything in it is killed and removed on drop.
#[derive(Debug)]
pub struct ScopeSlice {
    path: PathBuf,
}

impl ScopeSlice {
    /// Makes `/sys/fs/cgroup/unified/berthbenchPID-TAG.slice`.
    ///
    /// # Panics
    /// When it cannot be made (not root, no cgroup2).
    pub fn new(tag: &str) -> Self {
        let name = format!("berthbench{}-{tag}.slice", std::process::id());
        let path = Path::new(CGROUP2).join(name);
        fs::create_dir(&path).expect("the benchmark's cgroup slice");
        Self { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `machine-NAME.scope` in the slice and moves `pid` into it.
    ///
    /// # Panics
    /// When the cgroup cannot be made or the process moved.
    pub fn put(&self, name: &str, pid: u32) -> PathBuf {
        let scope = self.path.join(format!("machine-{name}.scope"));
        fs::create_dir(&scope).expect("scope cgroup");
        fs::write(scope.join("cgroup.procs"), pid.to_string()).expect("cgroup.procs");
        scope
    }
}

impl Drop for ScopeSlice {
    fn drop(&mut self) {
        crate::daemon::remove_cgroup_tree(&self.path);
    }
}
