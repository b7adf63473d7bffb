//! Cgroups of the registry's own making, for machines registered with `allocateUnit: true`.
//!
//! Each such machine gets `ROOT/machine-NAME.scope` (NAME escaped like a systemd unit name)
//! below a cgroup2 directory the registry may write to: by default its own cgroup (a delegated
//! subtree under systemd, the root cgroup here), or `--cgroup-root`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_service_runtime::sys;
use tokio::io::Interest;

use crate::process::{self, ProcessRef};

/// Where machine cgroups are created.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    mount: PathBuf,
    dir: PathBuf,
}

impl CgroupRoot {
    /// The registry's own cgroup on the cgroup2 hierarchy, if there is one.
    pub fn detect() -> Option<Self> {
        let mount = cgroup2_mount()?;
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = own.lines().find_map(|line| line.strip_prefix("0::"))?;
        let dir = mount.join(own.trim_start_matches('/'));
        Some(Self { mount, dir })
    }

    /// An explicit directory on the cgroup2 hierarchy.
    ///
    /// # Errors
    /// No cgroup2 hierarchy is mounted, or `dir` is not below it.
    pub fn at(dir: &Path) -> io::Result<Self> {
        let mount =
            cgroup2_mount().ok_or_else(|| io::Error::other("No cgroup2 hierarchy is mounted"))?;
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
        let cgroup = MachineCgroup {
            path: self.dir.join(unit),
            name: self.relative(&self.dir.join(unit)),
            owned: true,
        };
        fs::create_dir(&cgroup.path)?;
        if let Err(e) = fs::write(cgroup.path.join("cgroup.procs"), leader.pid().to_string()) {
            let _ = fs::remove_dir(&cgroup.path);
            return Err(e);
        }
        Ok(cgroup)
    }

    /// A machine cgroup made or adopted earlier (after a restart), if it still exists.
    pub fn existing(&self, path: &Path, owned: bool) -> Option<MachineCgroup> {
        (path.starts_with(&self.mount) && path.is_dir()).then(|| MachineCgroup {
            path: path.to_owned(),
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
            path: self.mount.join(name.trim_start_matches('/')),
            name: name.to_owned(),
            owned: false,
        };
        (cgroup.pids().ok()? == [leader]).then_some(cgroup)
    }

    fn relative(&self, path: &Path) -> String {
        let below = path.strip_prefix(&self.mount).unwrap_or(path);
        format!("/{}", below.display())
    }
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mount_point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point.replace("\\040", " ")))
    })
}

/// One machine's own cgroup: made by the registry (`allocateUnit`) or adopted from the
/// machine's supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineCgroup {
    path: PathBuf,
    name: String,
    owned: bool,
}

impl MachineCgroup {
    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its path as `/proc/PID/cgroup` shows it (`/machine-demo.scope`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the registry made it (and so removes it); adopted ones stay to their maker.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// The processes in it.
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        Ok(process::read_small(self.path.join("cgroup.procs"))?
            .lines()
            .filter_map(|line| line.parse().ok())
            .collect())
    }

    /// Sends `signal` to every process in the cgroup. SIGKILL uses `cgroup.kill`, which cannot
    /// miss a process forked meanwhile; other signals go to each process, repeating until a
    /// pass finds no new one (as systemd's `cg_kill` does).
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn signal_all(&self, signal: i32) -> io::Result<()> {
        if signal == libc::SIGKILL && fs::write(self.path.join("cgroup.kill"), "1").is_ok() {
            return Ok(());
        }
        let mut done = std::collections::HashSet::new();
        loop {
            let fresh: Vec<u32> = self
                .pids()?
                .into_iter()
                .filter(|p| !done.contains(p))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            for pid in fresh {
                if let Ok(process) = ProcessRef::open(pid) {
                    let _ = process.signal(signal);
                }
                done.insert(pid);
            }
        }
    }

    /// Whether any process is left (`populated` in `cgroup.events`).
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn is_populated(&self) -> io::Result<bool> {
        let events = fs::read_to_string(self.path.join("cgroup.events"))?;
        Ok(events.lines().any(|line| line == "populated 1"))
    }

    /// Waits until the cgroup is empty; the kernel signals changes of `cgroup.events` as
    /// priority events, so this sleeps without polling.
    ///
    /// # Errors
    /// The cgroup is gone or cannot be watched.
    pub async fn wait_empty(&self) -> io::Result<()> {
        let events = fs::File::open(self.path.join("cgroup.events"))?;
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
        if !self.owned || !self.path.exists() {
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
        if !self.path.exists() {
            return Ok(());
        }
        self.signal_all(libc::SIGKILL)?;
        self.wait_empty().await?;
        if self.owned { self.remove() } else { Ok(()) }
    }

    fn remove(&self) -> io::Result<()> {
        match fs::remove_dir(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
