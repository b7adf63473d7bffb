//! The payload's cgroup2 leaf: one per boot, born with the payload (`CLONE_INTO_CGROUP`),
//! killed with `cgroup.kill`, frozen with `cgroup.freeze`, watched through `cgroup.events`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use berth_os::cgroup2::{self, Cgroup, Events};
use rustix::fs::{Mode, OFlags};

/// A cgroup2 directory the payloads' leaves are made in.
#[derive(Debug, Clone)]
pub struct CgroupParent {
    cgroup: Cgroup,
}

impl CgroupParent {
    /// `dir` if given, else our own cgroup2 directory; `None` when that is not writable
    /// (no delegation) or there is no cgroup2 hierarchy.
    pub fn find(dir: Option<&Path>) -> Option<Self> {
        let dir = match dir {
            Some(dir) => dir.to_owned(),
            None => cgroup2::own_dir()?,
        };
        let cgroup = Cgroup::at(dir);
        cgroup.is_writable().then_some(Self { cgroup })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        self.cgroup.path()
    }

    /// Makes a fresh leaf `NAME-BOOT` (or `NAME-BOOT.N` if that exists).
    ///
    /// # Errors
    /// The directory cannot be made or opened.
    pub fn create_leaf(&self, name: &str, boot: u32) -> io::Result<Leaf> {
        let mut leaf_name = format!("{name}-{boot}");
        let mut tries = 0;
        let cgroup = loop {
            match self.cgroup.create_child(&leaf_name) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 99 => {
                    tries += 1;
                    leaf_name = format!("{name}-{boot}.{tries}");
                }
                made => break made?,
            }
        };
        Leaf::open(cgroup.clone()).inspect_err(|_| {
            let _ = cgroup.remove();
        })
    }
}

/// One boot's cgroup.
#[derive(Debug)]
pub struct Leaf {
    cgroup: Cgroup,
    dir: OwnedFd,
    events: File,
}

impl Leaf {
    fn open(cgroup: Cgroup) -> io::Result<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(cgroup.path(), flags, Mode::empty())?;
        let events = File::open(cgroup.path().join("cgroup.events"))?;
        Ok(Self {
            cgroup,
            dir,
            events,
        })
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        self.cgroup.path()
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
    pub fn state(&self) -> io::Result<Events> {
        let mut buf = [0u8; 256];
        let n = self.events.read_at(&mut buf, 0)?;
        Ok(Events::parse(&String::from_utf8_lossy(&buf[..n])))
    }

    /// SIGKILLs every process in the leaf and below it; a process forked meanwhile cannot
    /// escape.
    ///
    /// # Errors
    /// The leaf is gone.
    pub fn kill(&self) -> io::Result<()> {
        self.cgroup.kill()
    }

    /// Freezes or thaws every process in the leaf.
    ///
    /// # Errors
    /// The leaf is gone, or the kernel has no cgroup freezer.
    pub fn freeze(&self, frozen: bool) -> io::Result<()> {
        self.cgroup.freeze(frozen)
    }

    /// The processes in the leaf and in the cgroups below it.
    ///
    /// # Errors
    /// The leaf is gone.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        self.cgroup.pids()
    }

    /// Removes the (empty) leaf and the cgroups below it, deepest first.
    ///
    /// # Errors
    /// A directory could not be removed (`EBUSY` while processes are left).
    pub fn remove(&self) -> io::Result<()> {
        self.cgroup.remove()
    }
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
        let Some(mount) = cgroup2::mount() else {
            return;
        };
        let Some(parent) = CgroupParent::find(Some(&mount)) else {
            return; // not root, not delegated: nothing to test here
        };
        let name = format!("berth-supervise-unit-{}", std::process::id());
        let leaf = parent.create_leaf(&name, 1).unwrap();
        let again = parent.create_leaf(&name, 1).unwrap();
        assert_ne!(leaf.path(), again.path());
        assert_eq!(leaf.state().unwrap(), Events::default());
        assert!(leaf.pids().unwrap().is_empty());
        leaf.remove().unwrap();
        again.remove().unwrap();
        assert!(!leaf.path().exists());
    }
}
