//! The real systemd-machined 257, from the trixie chroot that `scripts/setup-test-deps.sh`
//! installs, run as `machined257.sh start-direct` of the team kit does, but in a private mount
//! namespace: the chroot's `/proc`, `/sys`, `/dev` and `/run` are mounted only there (`/run` is
//! a directory of the benchmark), so nothing is left mounted on the host and nobody else's use
//! of the chroot is disturbed. A chroot D-Bus daemon runs next to it, as machined needs one.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_tests::process::Proc;
use berth_tests::wait;
use tempfile::TempDir;

/// Where the chroot lives.
pub const TRIXIE: &str = "/opt/trixie";

const START: &str = r#"set -e
T=/opt/trixie
mount -t proc proc $T/proc
mount --rbind /sys $T/sys
mount --rbind /dev $T/dev
mount --bind "$1" $T/run
mkdir -p $T/run/dbus $T/run/lock $T/run/systemd
chroot $T dbus-daemon --system --nofork --nopidfile &
i=0
while [ ! -S $T/run/dbus/system_bus_socket ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
exec chroot $T env SYSTEMD_LOG_LEVEL=info SYSTEMD_LOG_TARGET=console /usr/lib/systemd/systemd-machined"#;

/// A running machined 257 with its D-Bus daemon, killed (the whole process group) on drop.
#[derive(Debug)]
pub struct Machined257 {
    _proc: Proc,
    run: TempDir,
}

impl Machined257 {
    /// Starts it and waits for both of its sockets.
    pub fn start() -> Self {
        let run = tempfile::Builder::new()
            .prefix("berth-bench-machined257-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let log = std::fs::File::create(run.path().join("machined.log")).expect("log");
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
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        );
        let machined = Self { _proc: proc, run };
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
}

/// Whether the chroot is there.
pub fn available() -> bool {
    Path::new(TRIXIE)
        .join("usr/lib/systemd/systemd-machined")
        .exists()
}
