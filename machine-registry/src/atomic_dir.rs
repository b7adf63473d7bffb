//! A directory of small files the registry replaces whole (state files, `unit:` links, host
//! table entries), held open: every change is made relative to its descriptor, so none walks
//! the directory's path again, and none lands elsewhere if the path is swapped meanwhile.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Temporary names made so far by this process (they need only be unique within it: the
/// directory is the registry's own, and a leftover of an earlier run is stepped over).
static TEMPORARIES: AtomicU64 = AtomicU64::new(0);

/// A held-open directory.
#[derive(Debug)]
pub struct AtomicDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl AtomicDir {
    /// Makes `path` (mode 0755, parents too) if missing and opens it.
    ///
    /// # Errors
    /// The directory cannot be made or opened.
    pub fn open(path: &Path) -> io::Result<Self> {
        berth_os::socket::create_dir_all_with_mode(path, 0o755)?;
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            path: path.to_owned(),
            fd,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` atomically (a temporary file, then a rename), mode 0644
    /// (the registry runs with umask 0022).
    ///
    /// Not synced: the files live on tmpfs (`/run`), where a sync does nothing a reader could
    /// tell, and what is written is in the page cache before this returns, so it survives the
    /// registry being killed (systemd-machined does not sync them either).
    ///
    /// # Errors
    /// Creating, writing or renaming the file failed; no partial file is left behind.
    pub fn write_atomic(&self, name: &str, contents: &str) -> io::Result<()> {
        let (temporary, mut file) = self.create_temporary(name)?;
        let written = file.write_all(contents.as_bytes()).and_then(|()| {
            rustix::fs::renameat_with(&self.fd, &temporary, &self.fd, name, RenameFlags::empty())
                .map_err(io::Error::from)
        });
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, &temporary, AtFlags::empty());
        }
        written
    }

    /// A new file `.#NAME.N` open for writing.
    fn create_temporary(&self, name: &str) -> io::Result<(String, File)> {
        loop {
            let n = TEMPORARIES.fetch_add(1, Ordering::Relaxed);
            let temporary = format!(".#{name}.{n:x}");
            let created = rustix::fs::openat(
                &self.fd,
                &temporary,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            );
            match created {
                Ok(file) => return Ok((temporary, File::from(file))),
                Err(Errno::EXIST) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Removes `name`; one that is already gone is fine.
    ///
    /// # Errors
    /// Removal failed for another reason.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Makes `name` a hard link of `existing`.
    ///
    /// # Errors
    /// As `linkat(2)` (`EEXIST` when `name` exists).
    pub fn hard_link(&self, existing: &str, name: &str) -> io::Result<()> {
        rustix::fs::linkat(&self.fd, existing, &self.fd, name, AtFlags::empty())?;
        Ok(())
    }

    /// Makes `name` a symbolic link to `target`, replacing a link of that name.
    ///
    /// # Errors
    /// As `symlinkat(2)`.
    pub fn symlink(&self, target: &str, name: &str) -> io::Result<()> {
        match rustix::fs::symlinkat(target, &self.fd, name) {
            Err(Errno::EXIST) => {
                self.remove(name)?;
                Ok(rustix::fs::symlinkat(target, &self.fd, name)?)
            }
            other => Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_and_leave_no_temporaries() {
        let parent = tempfile::tempdir().unwrap();
        let dir = AtomicDir::open(&parent.path().join("a/b")).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        dir.write_atomic("m", "A=1\n").unwrap();
        dir.write_atomic("m", "A=2\n").unwrap();
        assert_eq!(read("m"), "A=2\n");
        dir.hard_link("m", "n").unwrap();
        assert_eq!(read("n"), "A=2\n");
        assert!(dir.hard_link("m", "n").is_err());
        dir.symlink("m", "unit:x").unwrap();
        dir.symlink("n", "unit:x").unwrap();
        let target = std::fs::read_link(dir.path().join("unit:x")).unwrap();
        assert_eq!(target, Path::new("n"));
        for name in ["m", "m", "n", "unit:x"] {
            dir.remove(name).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_leftover_temporary_is_stepped_over_and_a_failed_write_leaves_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let dir = AtomicDir::open(parent.path()).unwrap();
        let next = TEMPORARIES.load(Ordering::Relaxed);
        for n in next..next + 4 {
            std::fs::write(parent.path().join(format!(".#m.{n:x}")), "old").unwrap();
        }
        dir.write_atomic("m", "new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(parent.path().join("m")).unwrap(),
            "new\n"
        );
        std::fs::create_dir(parent.path().join("d")).unwrap();
        std::fs::write(parent.path().join("d/x"), "").unwrap();
        assert!(dir.write_atomic("d", "over a directory\n").is_err());
        let left: Vec<_> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(".#d"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
