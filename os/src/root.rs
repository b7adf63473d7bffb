//! A machine's root directory, and paths resolved strictly inside it.
//!
//! A container's root is pinned through its leader (`/proc/PID/root`, which is the root of
//! the leader's mount namespace, checked against the leader's pidfd once opened), and every
//! path below it is opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `..` and
//! absolute symlinks stop at that root, and `/proc/…/fd`-style magic links are refused, so a
//! symlink inside a container never leads out of it. That is not enough on its own: a
//! container may share the host's root directory, so paths are also opened with the
//! caller's rights (see [`crate::identity`]).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};

use crate::process::ProcessRef;

/// The most [`Root::read_to_string`] reads of one file.
pub const READ_LIMIT: u64 = 1024 * 1024;

/// How every path is resolved: inside the root, no magic links.
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// `path` relative to the root (`.` for the root itself).
fn relative(path: &str) -> &str {
    match path.trim_start_matches('/') {
        "" => ".",
        relative => relative,
    }
}

/// An open root directory.
#[derive(Debug)]
pub struct Root(OwnedFd);

impl Root {
    /// The host's root directory, `/`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn host() -> io::Result<Self> {
        Self::open_dir("/")
    }

    /// The root directory of `process`, as its mount namespace sees it.
    ///
    /// # Errors
    /// `ESRCH` when the process is gone (also when it ended while the root was being opened:
    /// the PID may be someone else's by then), else the kernel's error.
    pub fn of_process(process: &ProcessRef) -> io::Result<Self> {
        let root = Self::open_dir(&format!("/proc/{}/root", process.pid()))?;
        if !process.is_alive() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(root)
    }

    /// The directory at `path` as a root (an image's tree, say).
    ///
    /// # Errors
    /// The kernel's error (`ENOTDIR` for what is no directory).
    pub fn at(path: &std::path::Path) -> io::Result<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Self(rustix::fs::open(path, flags, Mode::empty())?))
    }

    fn open_dir(path: &str) -> io::Result<Self> {
        Self::at(std::path::Path::new(path))
    }

    /// Opens `path` (relative to the root, or absolute inside it) read-only, resolved strictly
    /// inside the root.
    ///
    /// # Errors
    /// The kernel's error: `ENOENT`, `EACCES`, `ELOOP` for a magic link, `EXDEV` for an escape.
    pub fn open(&self, path: &str) -> io::Result<File> {
        Ok(File::from(
            self.resolve(path, OFlags::RDONLY | OFlags::NOCTTY)?,
        ))
    }

    /// Opens the directory at `path` as an `O_PATH` descriptor, resolved strictly inside the
    /// root, for `*at` calls below it.
    ///
    /// # Errors
    /// As [`Root::open`]; `ENOTDIR` when it is no directory.
    pub fn open_directory(&self, path: &str) -> io::Result<OwnedFd> {
        self.resolve(path, OFlags::PATH | OFlags::DIRECTORY)
    }

    /// Opens whatever is at `path` (a final symlink followed inside the root) as an `O_PATH`
    /// descriptor, resolved strictly inside the root: a place to mount onto.
    ///
    /// # Errors
    /// As [`Root::open`].
    pub fn open_location(&self, path: &str) -> io::Result<OwnedFd> {
        self.resolve(path, OFlags::PATH)
    }

    /// Opens `path` with `flags`, resolved strictly inside the root.
    fn resolve(&self, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC;
        Ok(openat2(
            &self.0,
            relative(path),
            flags,
            Mode::empty(),
            IN_ROOT,
        )?)
    }

    /// Reads the text file at `path` (at most [`READ_LIMIT`] bytes), resolved inside the root.
    ///
    /// # Errors
    /// As [`Root::open`], or the read failed (`InvalidData` for text that is not UTF-8).
    pub fn read_to_string(&self, path: &str) -> io::Result<String> {
        let mut text = String::new();
        self.open(path)?
            .take(READ_LIMIT)
            .read_to_string(&mut text)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("root");
        std::fs::create_dir_all(inside.join("etc")).unwrap();
        std::fs::write(dir.path().join("outside"), "OUT=1").unwrap();
        std::fs::write(inside.join("outside"), "IN=1").unwrap();
        symlink("/outside", inside.join("etc/absolute")).unwrap();
        symlink("../../outside", inside.join("etc/relative")).unwrap();
        symlink("/proc/self/root/etc/hostname", inside.join("etc/magic")).unwrap();
        let root = Root::open_dir(inside.to_str().unwrap()).unwrap();
        assert_eq!(root.read_to_string("etc/absolute").unwrap(), "IN=1");
        assert_eq!(root.read_to_string("/etc/relative").unwrap(), "IN=1");
        assert_eq!(root.read_to_string("../outside").unwrap(), "IN=1");
        assert!(root.read_to_string("etc/magic").is_err());
    }

    #[test]
    fn our_own_root_is_reached_through_our_pidfd() {
        let me = ProcessRef::open(std::process::id()).unwrap();
        let root = Root::of_process(&me).unwrap();
        let hosts = root
            .read_to_string("etc/hostname")
            .or_else(|_| root.read_to_string("proc/version"));
        assert!(hosts.is_ok());
        assert!(Root::host().unwrap().open("/").is_ok());
    }
}
