//! The payload's cgroup2 leaf: one per boot, born with the payload (`CLONE_INTO_CGROUP`),
//! killed with `cgroup.kill`, frozen with `cgroup.freeze`, watched through `cgroup.events`.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Access, Mode, OFlags, access};

/// A cgroup2 directory the payloads' leaves are made in.
#[derive(Debug, Clone)]
pub struct CgroupParent {
    dir: PathBuf,
}

impl CgroupParent {
    /// `dir` if given, else our own cgroup2 directory; `None` when that is not writable
    /// (no delegation) or there is no cgroup2 hierarchy.
    pub fn find(dir: Option<&Path>) -> Option<Self> {
        let dir = match dir {
            Some(dir) => dir.to_owned(),
            None => own_cgroup()?,
        };
        let writable = access(&dir, Access::WRITE_OK).is_ok()
            && access(dir.join("cgroup.procs"), Access::WRITE_OK).is_ok();
        writable.then_some(Self { dir })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes a fresh leaf `NAME-BOOT` (or `NAME-BOOT.N` if that exists).
    ///
    /// # Errors
    /// The directory cannot be made or opened.
    pub fn create_leaf(&self, name: &str, boot: u32) -> io::Result<Leaf> {
        let mut path = self.dir.join(format!("{name}-{boot}"));
        for n in 1.. {
            match fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => {
                    path = self.dir.join(format!("{name}-{boot}.{n}"));
                }
                Err(e) => return Err(e),
            }
        }
        Leaf::open(path.clone()).inspect_err(|_| {
            let _ = fs::remove_dir(&path);
        })
    }
}

/// The state `cgroup.events` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeafState {
    /// Some process is in the leaf or below it.
    pub populated: bool,
    /// Every process in it is frozen.
    pub frozen: bool,
}

/// One boot's cgroup.
#[derive(Debug)]
pub struct Leaf {
    path: PathBuf,
    dir: OwnedFd,
    events: File,
}

impl Leaf {
    fn open(path: PathBuf) -> io::Result<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(&path, flags, Mode::empty())?;
        let events = File::open(path.join("cgroup.events"))?;
        Ok(Self { path, dir, events })
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An `O_PATH` descriptor of the directory, for `CLONE_INTO_CGROUP`.
    pub fn dir_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// `cgroup.events`, which signals changes as priority events (`EPOLLPRI`).
    pub fn events_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }

    /// Reads `cgroup.events` through the watched descriptor (which re-arms its notification).
    ///
    /// # Errors
    /// The leaf is gone.
    pub fn state(&self) -> io::Result<LeafState> {
        let mut buf = [0u8; 256];
        let n = self.events.read_at(&mut buf, 0)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        Ok(LeafState {
            populated: text.lines().any(|l| l == "populated 1"),
            frozen: text.lines().any(|l| l == "frozen 1"),
        })
    }

    /// SIGKILLs every process in the leaf and below it; a process forked meanwhile cannot
    /// escape. Without `cgroup.kill` (Linux < 5.14) each process is killed until none is new.
    ///
    /// # Errors
    /// The leaf is gone.
    pub fn kill(&self) -> io::Result<()> {
        match fs::write(self.path.join("cgroup.kill"), "1") {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.path.exists() => {
                crate::tree::signal_until_none_new(
                    || self.pids(),
                    rustix::process::Signal::KILL.as_raw(),
                )
            }
            other => other,
        }
    }

    /// Freezes or thaws every process in the leaf.
    ///
    /// # Errors
    /// The leaf is gone, or the kernel has no cgroup freezer.
    pub fn freeze(&self, frozen: bool) -> io::Result<()> {
        fs::write(
            self.path.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
    }

    /// The processes in the leaf and in the cgroups below it.
    ///
    /// # Errors
    /// The leaf is gone.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut pids = Vec::new();
        collect_pids(&self.path, &mut pids)?;
        Ok(pids)
    }

    /// Removes the (empty) leaf and the cgroups below it, deepest first.
    ///
    /// # Errors
    /// A directory could not be removed (`EBUSY` while processes are left).
    pub fn remove(&self) -> io::Result<()> {
        remove_tree(&self.path)
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) -> io::Result<()> {
    let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
    pids.extend(procs.lines().filter_map(|l| l.parse::<u32>().ok()));
    for sub in subdirectories(dir) {
        let _ = collect_pids(&sub, pids);
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> io::Result<()> {
    for sub in subdirectories(dir) {
        remove_tree(&sub)?;
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn subdirectories(dir: &Path) -> impl Iterator<Item = PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
}

/// Our own directory on the cgroup2 hierarchy: the `0::` line of `/proc/self/cgroup`, below
/// where `/proc/self/mounts` says cgroup2 is mounted.
fn own_cgroup() -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    Some(cgroup2_mount()?.join(own.trim_start_matches('/')))
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    let mut fields = mounts
        .lines()
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>());
    let mount = fields.find(|f| f.len() == 3 && f[2] == "cgroup2")?;
    Some(PathBuf::from(mount[1].replace("\\040", " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_that_does_not_exist_is_not_used() {
        assert!(CgroupParent::find(Some(Path::new("/nonexistent/cgroup"))).is_none());
    }

    #[test]
    fn a_leaf_is_made_watched_and_removed_when_cgroup2_is_writable() {
        let Some(mount) = cgroup2_mount() else { return };
        let Some(parent) = CgroupParent::find(Some(&mount)) else {
            return; // not root, not delegated: nothing to test here
        };
        let name = format!("berth-supervise-unit-{}", std::process::id());
        let leaf = parent.create_leaf(&name, 1).unwrap();
        let again = parent.create_leaf(&name, 1).unwrap();
        assert_ne!(leaf.path(), again.path());
        assert_eq!(leaf.state().unwrap(), LeafState::default());
        assert!(leaf.pids().unwrap().is_empty());
        leaf.remove().unwrap();
        again.remove().unwrap();
        assert!(!leaf.path().exists());
    }
}
