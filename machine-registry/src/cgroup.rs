//! Cgroups of the registry's own making, for machines registered with `allocateUnit: true`.
//!
//! Each such machine gets `ROOT/machine-NAME.scope` (NAME escaped like a systemd unit name)
//! below a cgroup2 directory the registry may write to: by default its own cgroup (a delegated
//! subtree under systemd, the root cgroup here), or `--cgroup-root`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_os::cgroup2::{self, Cgroup};
use berth_os::process::ProcessRef;
use berth_os::sys;
use tokio::io::Interest;

/// Where machine cgroups are created.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    mount: PathBuf,
    dir: PathBuf,
}

impl CgroupRoot {
    /// The registry's own cgroup on the cgroup2 hierarchy, if there is one.
    pub fn detect() -> Option<Self> {
        Some(Self {
            mount: cgroup2::mount()?,
            dir: cgroup2::own_dir()?,
        })
    }

    /// An explicit directory on the cgroup2 hierarchy.
    ///
    /// # Errors
    /// No cgroup2 hierarchy is mounted, or `dir` is not below it.
    pub fn at(dir: &Path) -> io::Result<Self> {
        let mount =
            cgroup2::mount().ok_or_else(|| io::Error::other("No cgroup2 hierarchy is mounted"))?;
        if !dir.starts_with(&mount) {
            return Err(io::Error::other(format!(
                "{} is not below the cgroup2 mount {}",
                dir.display(),
                mount.display()
            )));
        }
        Ok(Self {
            mount,
            dir: dir.to_owned(),
        })
    }

    /// Creates the cgroup `unit` (e.g. `machine-demo.scope`) and moves `leader` into it.
    ///
    /// # Errors
    /// The directory cannot be created (`EACCES`, `EROFS`, `ENOENT` mean: no writable cgroup2
    /// here) or the leader cannot be moved.
    pub fn create(&self, unit: &str, leader: &ProcessRef) -> io::Result<MachineCgroup> {
        let made = Cgroup::at(self.dir.clone()).create_child(unit)?;
        if let Err(e) = made.add(leader.pid()) {
            let _ = made.remove();
            return Err(e);
        }
        Ok(MachineCgroup {
            name: self.relative(made.path()),
            cgroup: made,
            owned: true,
        })
    }

    /// A machine cgroup made or adopted earlier (after a restart), if it still exists.
    pub fn existing(&self, path: &Path, owned: bool) -> Option<MachineCgroup> {
        (path.starts_with(&self.mount) && path.is_dir()).then(|| MachineCgroup {
            cgroup: Cgroup::at(path.to_owned()),
            name: self.relative(path),
            owned,
        })
    }

    /// Adopts the cgroup `name` (as `/proc/PID/cgroup` shows it) as a machine's own, if
    /// `leader` is the only process in it: a leaf its supervisor made for it.
    pub fn adopt(&self, name: &str, leader: u32) -> Option<MachineCgroup> {
        if name == "/" {
            return None;
        }
        let cgroup = MachineCgroup {
            cgroup: Cgroup::at(self.mount.join(name.trim_start_matches('/'))),
            name: name.to_owned(),
            owned: false,
        };
        (cgroup.cgroup.procs().ok()? == [leader]).then_some(cgroup)
    }

    fn relative(&self, path: &Path) -> String {
        let below = path.strip_prefix(&self.mount).unwrap_or(path);
        format!("/{}", below.display())
    }
}

/// One machine's own cgroup: made by the registry (`allocateUnit`) or adopted from the
/// machine's supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineCgroup {
    cgroup: Cgroup,
    name: String,
    owned: bool,
}

impl MachineCgroup {
    /// Its directory.
    pub fn path(&self) -> &Path {
        self.cgroup.path()
    }

    /// Its path as `/proc/PID/cgroup` shows it (`/machine-demo.scope`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the registry made it (and so removes it); adopted ones stay to their maker.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Sends `signal` to every process in the cgroup and below it (SIGKILL through
    /// `cgroup.kill`, which cannot miss a process forked meanwhile).
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn signal_all(&self, signal: i32) -> io::Result<()> {
        self.cgroup.signal_all(signal)
    }

    /// Whether any process is left (`populated` in `cgroup.events`).
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn is_populated(&self) -> io::Result<bool> {
        Ok(self.cgroup.events()?.populated)
    }

    /// Waits until the cgroup is empty; the kernel signals changes of `cgroup.events` as
    /// priority events, so this sleeps without polling.
    ///
    /// # Errors
    /// The cgroup is gone or cannot be watched.
    pub async fn wait_empty(&self) -> io::Result<()> {
        let events = fs::File::open(self.path().join("cgroup.events"))?;
        let watch = sys::async_fd(events.into(), Interest::PRIORITY)?;
        while self.is_populated()? {
            let mut ready = watch.ready(Interest::PRIORITY).await?;
            ready.clear_ready();
        }
        Ok(())
    }

    /// Waits until the processes left in it are gone on their own, then removes the cgroup.
    ///
    /// # Errors
    /// The cgroup could not be removed.
    pub async fn release(&self) -> io::Result<()> {
        if !self.owned || !self.path().exists() {
            return Ok(());
        }
        self.wait_empty().await?;
        self.remove()
    }

    /// Kills what is left, waits for it to go, and removes the cgroup if the registry made it.
    ///
    /// # Errors
    /// The cgroup could not be removed.
    pub async fn destroy(&self) -> io::Result<()> {
        if !self.path().exists() {
            return Ok(());
        }
        self.signal_all(libc::SIGKILL)?;
        self.wait_empty().await?;
        if self.owned { self.remove() } else { Ok(()) }
    }

    fn remove(&self) -> io::Result<()> {
        self.cgroup.remove()
    }
}
