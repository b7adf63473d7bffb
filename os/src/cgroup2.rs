//! The cgroup2 hierarchy: where it is mounted, a process's own cgroup on it, and one cgroup's
//! processes, kill, freezer and `cgroup.events`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{proc, process};

/// Where the cgroup2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a
/// hybrid host), from `/proc/self/mountinfo`.
pub fn mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(cgroup2_mount_point)
}

/// The mount point of a mountinfo line, if it mounts cgroup2.
fn cgroup2_mount_point(line: &str) -> Option<PathBuf> {
    let (left, right) = line.split_once(" - ")?;
    let fstype = right.split_whitespace().next()?;
    let mount_point = left.split_whitespace().nth(4)?;
    (fstype == "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
}

/// Undoes the octal escapes of mountinfo (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match octal.and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok())
        {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Our own cgroup's directory on the cgroup2 hierarchy.
pub fn own_dir() -> Option<PathBuf> {
    Some(mount()?.join(proc::cgroup_path(0)?.trim_start_matches('/')))
}

/// What `cgroup.events` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events {
    /// Some process is in the cgroup or below it.
    pub populated: bool,
    /// Every process in it is frozen.
    pub frozen: bool,
}

impl Events {
    /// Parses the text of `cgroup.events`.
    pub fn parse(text: &str) -> Self {
        Self {
            populated: text.lines().any(|l| l == "populated 1"),
            frozen: text.lines().any(|l| l == "frozen 1"),
        }
    }
}

/// One cgroup2 directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// The cgroup at `path` (not checked).
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether we may make cgroups in it and move processes into it.
    pub fn is_writable(&self) -> bool {
        use rustix::fs::{Access, access};
        access(&self.path, Access::WRITE_OK).is_ok()
            && access(self.path.join("cgroup.procs"), Access::WRITE_OK).is_ok()
    }

    /// Makes the cgroup `name` below this one.
    ///
    /// # Errors
    /// The kernel's error (`EEXIST`, `EACCES`, …).
    pub fn create_child(&self, name: &str) -> io::Result<Self> {
        let child = self.path.join(name);
        fs::create_dir(&child)?;
        Ok(Self { path: child })
    }

    /// Moves the process `pid` into this cgroup.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn add(&self, pid: u32) -> io::Result<()> {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// The processes in it (not in the cgroups below it).
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn procs(&self) -> io::Result<Vec<u32>> {
        Ok(parse_pids(&proc::read_small(
            self.path.join("cgroup.procs"),
        )?))
    }

    /// The processes in it and in the cgroups below it.
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut pids = Vec::new();
        collect_pids(&self.path, &mut pids)?;
        Ok(pids)
    }

    /// Reads `cgroup.events`.
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn events(&self) -> io::Result<Events> {
        Ok(Events::parse(&proc::read_small(
            self.path.join("cgroup.events"),
        )?))
    }

    /// SIGKILLs every process in it and below it with `cgroup.kill`, which cannot miss a
    /// process forked meanwhile; without `cgroup.kill` (Linux < 5.14), or where we may not
    /// write it (a cgroup another user owns, and no `CAP_DAC_OVERRIDE`: the registry's unit
    /// keeps only `CAP_KILL`), each process is killed until a pass finds none new.
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn kill(&self) -> io::Result<()> {
        match fs::write(self.path.join("cgroup.kill"), "1") {
            Err(e) if kill_by_signals(&e) && self.path.exists() => {
                process::signal_until_none_new(|| self.pids(), libc::SIGKILL)
            }
            other => other,
        }
    }

    /// Sends `signal` to every process in it and below it ([`Cgroup::kill`] for SIGKILL).
    ///
    /// # Errors
    /// The cgroup is gone.
    pub fn signal_all(&self, signal: i32) -> io::Result<()> {
        if signal == libc::SIGKILL {
            return self.kill();
        }
        process::signal_until_none_new(|| self.pids(), signal)
    }

    /// Freezes or thaws every process in it.
    ///
    /// # Errors
    /// The cgroup is gone, or the kernel has no cgroup freezer.
    pub fn freeze(&self, frozen: bool) -> io::Result<()> {
        fs::write(
            self.path.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
    }

    /// Removes the (empty) cgroup and those below it, deepest first; one already gone is fine.
    ///
    /// # Errors
    /// A directory could not be removed (`EBUSY` while processes are left).
    pub fn remove(&self) -> io::Result<()> {
        remove_tree(&self.path)
    }
}

/// Whether a failed write of `cgroup.kill` leaves signalling each process as the way to kill.
fn kill_by_signals(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    )
}

fn parse_pids(procs: &str) -> Vec<u32> {
    procs.lines().filter_map(|l| l.parse().ok()).collect()
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) -> io::Result<()> {
    pids.extend(parse_pids(&proc::read_small(dir.join("cgroup.procs"))?));
    for sub in subdirectories(dir) {
        // A cgroup below may vanish between listing and reading: its processes are gone too.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_and_escapes_are_read() {
        let line = "35 25 0:30 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw";
        assert_eq!(
            cgroup2_mount_point(line),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let spaced = "35 25 0:30 / /a\\040b rw - cgroup2 cgroup2 rw";
        assert_eq!(cgroup2_mount_point(spaced), Some(PathBuf::from("/a b")));
        let other = "36 25 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd";
        assert_eq!(cgroup2_mount_point(other), None);
        assert_eq!(unescape("x\\"), "x\\");
    }

    #[test]
    fn events_are_parsed() {
        let events = Events::parse("populated 1\nfrozen 0\n");
        assert!(events.populated && !events.frozen);
        assert_eq!(Events::parse(""), Events::default());
    }

    #[test]
    fn a_child_cgroup_is_made_filled_killed_and_removed_where_cgroup2_is_writable() {
        let Some(mount) = mount() else { return };
        let root = Cgroup::at(mount);
        if !root.is_writable() {
            return; // not root, not delegated: nothing to test here
        }
        let name = format!("berth-os-unit-{}", std::process::id());
        let cgroup = root.create_child(&name).unwrap();
        let below = cgroup.create_child("below").unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        below.add(child.id()).unwrap();
        assert_eq!(cgroup.pids().unwrap(), [child.id()]);
        assert_eq!(cgroup.procs().unwrap(), []);
        assert_eq!(below.procs().unwrap(), [child.id()]);
        assert!(cgroup.events().unwrap().populated);
        cgroup.signal_all(libc::SIGKILL).unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while cgroup.events().unwrap().populated && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        cgroup.remove().unwrap();
        assert!(!cgroup.path().exists());
        cgroup.remove().unwrap();
    }

    #[test]
    fn a_cgroup_we_may_not_write_is_killed_by_signals() {
        let Some(mount) = mount() else { return };
        let root = Cgroup::at(mount);
        if !root.is_writable() {
            return;
        }
        let name = format!("berth-os-unit-foreign-{}", std::process::id());
        let cgroup = root.create_child(&name).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        cgroup.add(child.id()).unwrap();
        // cgroup.kill of another user's cgroup, and no CAP_DAC_OVERRIDE (as in the registry's
        // unit): the write is refused, the processes are signalled instead.
        let kill = cgroup.path().join("cgroup.kill");
        let nobody = Some(rustix::fs::Uid::from_raw(65534));
        rustix::fs::chown(&kill, nobody, None).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
                    let mut sets = capabilities(None).unwrap();
                    sets.effective -= CapabilitySet::DAC_OVERRIDE;
                    set_capabilities(None, sets).unwrap();
                    let refused = std::fs::write(&kill, "1").unwrap_err();
                    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
                    cgroup.kill().unwrap();
                })
                .join()
                .unwrap();
        });
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while cgroup.events().unwrap().populated && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        cgroup.remove().unwrap();
    }
}
