//! A real systemd 257 booted as PID 1 in a container (`systemd-nspawn` 257 from the trixie
//! chroot of `scripts/setup-test-deps.sh`, run on the host through `t257`), with Berth
//! installed in it by `scripts/install`.
//!
//! The container's root is an overlay on `/opt/trixie` (the chroot itself is never written),
//! mounted in a private mount namespace that nspawn runs in, so the mount goes with nspawn.
//! nspawn runs in a cgroup of its own on the cgroup2 hierarchy, where it makes its `payload`
//! and `supervisor` cgroups; dropping the [`Container`] powers it off (SIGTERM to nspawn, then
//! SIGKILL), removes those cgroups and the overlay's directories, also when a test failed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::clients::{Run, run};
use crate::wait;

/// `t257` and the chroot it runs binaries of.
pub const T257: &str = "/usr/local/bin/t257";
const TRIXIE: &str = "/opt/trixie";
const CGROUP2: &str = "/sys/fs/cgroup/unified";
/// nspawn also mirrors its cgroup on the named v1 hierarchy of this hybrid host.
const CGROUP_V1_SYSTEMD: &str = "/sys/fs/cgroup/systemd";

/// Mounts the overlay, installs Berth into it, replaces machined by it, then becomes nspawn.
/// Arguments: the work directory, the cargo profile and target directory of the build, the
/// cgroup to run in, the machine name.
const BOOT: &str = r#"set -eu
work=$1 profile=$2 target=$3 cgroup=$4 name=$5
T=/opt/trixie
root=$work/root
mount -t overlay overlay -o "lowerdir=$T,upperdir=$work/upper,workdir=$work/work" "$root"
DESTDIR=$root PREFIX=/usr PROFILE=$profile CARGO_TARGET_DIR=$target scripts/install --no-build
systemctl() { /usr/local/bin/t257 $T/usr/bin/systemctl --root="$root" "$@"; }
systemctl mask systemd-machined.service
systemctl enable berth-machine-registry.socket berth-machine-registry-resolve-hook.socket \
    berth-userdb-bridge.socket berth-machine-helper.socket
echo $$ > "$cgroup/cgroup.procs"
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
exec /usr/local/bin/t257 $T/usr/bin/systemd-nspawn -D "$root" -M "$name" --register=no \
    --keep-unit --private-network -b --console=read-only
"#;

/// Whether this host can boot the container: root, the trixie chroot, `t257`, a writable
/// cgroup2 hierarchy.
pub fn available() -> bool {
    rustix::process::geteuid().is_root()
        && Path::new(T257).exists()
        && Path::new(TRIXIE).join("usr/bin/systemd-nspawn").exists()
        && Path::new(CGROUP2).join("cgroup.procs").exists()
}

/// The booted container.
#[derive(Debug)]
pub struct Container {
    work: TempDir,
    nspawn: Child,
    cgroup: String,
    /// The container's PID 1, as the host numbers it.
    pub pid1: u32,
    /// How long booting took (install included).
    pub boot_time: Duration,
}

impl Container {
    /// Boots `name` with the binaries of this test run's build (`profile_dir`, i.e.
    /// `target/<profile>`) installed, and waits until its boot is finished.
    ///
    /// # Panics
    /// When it does not boot (nspawn's log is printed).
    pub fn boot(name: &str, profile_dir: &Path) -> Self {
        let started = Instant::now();
        let work = tempfile::Builder::new()
            .prefix("berth-pid1-")
            .tempdir()
            .expect("work directory");
        for dir in ["upper", "work", "root"] {
            std::fs::create_dir(work.path().join(dir)).expect("overlay directory");
        }
        let cgroup = format!("berth-pid1-{}-{name}", std::process::id());
        std::fs::create_dir(Path::new(CGROUP2).join(&cgroup)).expect("nspawn's cgroup");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => panic!("no profile in {}", profile_dir.display()),
        };
        let log = std::fs::File::create(work.path().join("nspawn.log")).expect("log");
        let nspawn = Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash", "-c", BOOT, "boot"])
            .arg(work.path())
            .arg(profile)
            .arg(profile_dir.parent().expect("the target directory"))
            .arg(Path::new(CGROUP2).join(&cgroup))
            .arg(name)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("unshare");
        let mut container = Self {
            work,
            nspawn,
            cgroup,
            pid1: 0,
            boot_time: Duration::ZERO,
        };
        container.pid1 = container.wait_for_pid1();
        let root = PathBuf::from(format!("/proc/{}/root", container.pid1));
        let private = root.join("run/systemd/private");
        wait::until_within("the container's systemd", Duration::from_secs(60), || {
            private.exists()
        });
        let state = container.exec(&["systemctl", "is-system-running", "--wait"]);
        assert!(
            matches!(state.stdout.trim(), "running" | "degraded"),
            "{state:?}\n{}",
            container.log()
        );
        container.boot_time = started.elapsed();
        container
    }

    /// The child of nspawn that is the container's systemd.
    fn wait_for_pid1(&mut self) -> u32 {
        let nspawn = self.nspawn.id();
        let mut pid1 = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while pid1.is_none() && Instant::now() < deadline {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                panic!("nspawn ended ({status}):\n{}", self.log());
            }
            pid1 = berth_children(nspawn)
                .into_iter()
                .find(|pid| comm(*pid).as_deref() == Some("systemd"));
            std::thread::sleep(Duration::from_millis(20));
        }
        pid1.unwrap_or_else(|| panic!("no systemd in the container:\n{}", self.log()))
    }

    /// What the boot script and nspawn printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("nspawn.log")).unwrap_or_default()
    }

    /// Runs `args` inside the container (all its namespaces, its root).
    pub fn exec(&self, args: &[&str]) -> Run {
        run(Command::new("nsenter")
            .arg("-t")
            .arg(self.pid1.to_string())
            .args(["-a", "--"])
            .args(args))
    }

    /// Runs a shell script inside the container.
    pub fn sh(&self, script: &str) -> Run {
        self.exec(&["sh", "-c", script])
    }

    /// The host's view of the container's `/proc/PID`.
    pub fn proc(&self, pid: u32) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/proc/{pid}", self.pid1))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let nspawn = self.nspawn.id();
        // SIGTERM is a clean poweroff for nspawn.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(nspawn as i32).expect("a PID"),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        for hierarchy in [CGROUP2, CGROUP_V1_SYSTEMD] {
            remove_cgroup(&Path::new(hierarchy).join(&self.cgroup));
        }
    }
}

fn berth_children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn comm(pid: u32) -> Option<String> {
    Some(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim()
            .to_owned(),
    )
}

/// Removes a cgroup and everything below it, deepest first (they are empty once nspawn is
/// gone; a cgroup whose last process is still exiting is tried again for a while).
fn remove_cgroup(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let children: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    for child in children {
        remove_cgroup(&child);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
