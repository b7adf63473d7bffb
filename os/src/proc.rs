//! What `/proc` tells about processes: parents (and so whole trees), real UIDs, cgroups, and
//! the boot ID.
//!
//! Facts read from `/proc/PID` are about whoever has that PID at the moment of reading; callers
//! that hold a [`ProcessRef`](crate::process::ProcessRef) check afterwards that it still runs.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Reads a small file of `/proc` or of the cgroup file system whole. Their sizes read as 0, so
/// `fs::read_to_string` would ask for the size and then read a few bytes at a time; this reads
/// into one page-sized buffer: open, read, read (the end), close.
///
/// # Errors
/// The file cannot be opened or read, or is not UTF-8.
pub fn read_small(path: impl AsRef<Path>) -> io::Result<String> {
    read_whole(path.as_ref(), false)
}

/// Reads a file the kernel writes with one `show` call (`single_open`: `/proc/PID/cgroup`,
/// `stat`, `status`). Such a file comes whole in the first read when the buffer has room for
/// it, so a read that leaves room is its end: open, read, close.
///
/// # Errors
/// As [`read_small`].
pub fn read_single_record(path: impl AsRef<Path>) -> io::Result<String> {
    read_whole(path.as_ref(), true)
}

fn read_whole(path: &Path, short_read_ends: bool) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut text = vec![0; 4096];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(2 * len, 0);
        }
        let room = text.len() - len;
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(read) if short_read_ends && read < room => {
                len += read;
                break;
            }
            Ok(read) => len += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    text.truncate(len);
    String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// This boot's ID as 32 lowercase hex digits.
///
/// # Errors
/// Reading `/proc/sys/kernel/random/boot_id` failed.
pub fn boot_id() -> io::Result<String> {
    Ok(fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .replace('-', ""))
}

/// The real UID of `pid` (the first field of `Uid:` in `/proc/PID/status`).
///
/// # Errors
/// The process is gone or `/proc` is unreadable.
pub fn real_uid(pid: u32) -> io::Result<u32> {
    let status = read_single_record(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

/// The parent PID of `pid`, from `/proc/PID/stat`.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = read_single_record(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

/// The PPID field of a `stat` line: "pid (comm) state ppid …", where comm may hold spaces and
/// parentheses, so the fields are counted after the last `)`.
fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The cgroup2 path of `pid` as the kernel shows it (the `0::` line of `/proc/PID/cgroup`,
/// e.g. `/machine.slice/machine-demo.scope`); `pid` 0 means this process.
pub fn cgroup_path(pid: u32) -> Option<String> {
    let file = match pid {
        0 => "/proc/self/cgroup".to_owned(),
        pid => format!("/proc/{pid}/cgroup"),
    };
    let cgroups = read_single_record(file).ok()?;
    cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Every live process and its parent, from one scan of `/proc`.
///
/// (`/proc/PID/task/TID/children` is not built into every kernel, so parents come from
/// scanning `/proc/*/stat`.)
#[derive(Debug, Clone, Default)]
pub struct ProcessTree {
    parents: HashMap<u32, u32>,
}

impl ProcessTree {
    /// Scans `/proc` (an empty tree if it cannot be read).
    pub fn scan() -> Self {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Self::default();
        };
        let parents = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| Some((pid, parent_pid(pid)?)))
            .collect();
        Self { parents }
    }

    /// A tree of the given `(pid, parent)` pairs.
    pub fn from_parents(parents: HashMap<u32, u32>) -> Self {
        Self { parents }
    }

    /// The parent of `pid` at the time of the scan.
    pub fn parent_of(&self, pid: u32) -> Option<u32> {
        self.parents.get(&pid).copied()
    }

    /// The children of `parent`.
    pub fn children_of(&self, parent: u32) -> Vec<u32> {
        self.parents
            .iter()
            .filter_map(|(&pid, &ppid)| (ppid == parent && pid != parent).then_some(pid))
            .collect()
    }

    /// Every descendant of `root` (not `root` itself), parents before their children.
    pub fn descendants_of(&self, root: u32) -> Vec<u32> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (&pid, &ppid) in &self.parents {
            if pid != root {
                children.entry(ppid).or_default().push(pid);
            }
        }
        let mut found = Vec::new();
        let mut next = vec![root];
        while let Some(pid) = next.pop() {
            for &child in children.get(&pid).into_iter().flatten() {
                found.push(child);
                next.push(child);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        assert_eq!(parse_stat_ppid("12 (a) b) c) S 7 12 12"), Some(7));
        assert_eq!(parse_stat_ppid("12 (sh) S 1 12"), Some(1));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn small_files_and_single_records_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(10_000);
        std::fs::write(dir.path().join("long"), &long).unwrap();
        let readers: [fn(&Path) -> io::Result<String>; 2] =
            [|path| read_small(path), |path| read_single_record(path)];
        for read in readers {
            assert_eq!(read(&dir.path().join("long")).unwrap(), long);
            let status = read(Path::new("/proc/self/status")).unwrap();
            assert!(status.starts_with("Name:") && status.ends_with('\n'));
            assert!(status.contains("\nnonvoluntary_ctxt_switches:"), "{status}");
        }
        let cgroups = read_single_record("/proc/self/cgroup").unwrap();
        assert_eq!(cgroups, read_small("/proc/self/cgroup").unwrap());
    }

    #[test]
    fn descendants_cover_the_whole_tree_and_nothing_else() {
        let tree =
            ProcessTree::from_parents(HashMap::from([(2, 1), (3, 2), (4, 2), (5, 4), (9, 8)]));
        let mut below = tree.descendants_of(2);
        below.sort_unstable();
        assert_eq!(below, [3, 4, 5]);
        let mut children = tree.children_of(2);
        children.sort_unstable();
        assert_eq!(children, [3, 4]);
        assert_eq!(tree.parent_of(5), Some(4));
    }

    #[test]
    fn our_parent_a_child_and_our_facts_are_found() {
        let me = std::process::id();
        let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
        assert_eq!(parent_pid(me), Some(parent));
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let tree = ProcessTree::scan();
        assert!(tree.children_of(me).contains(&child.id()));
        assert!(tree.descendants_of(me).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(real_uid(me).unwrap(), rustix::process::getuid().as_raw());
        assert_eq!(boot_id().unwrap().len(), 32);
        assert_eq!(cgroup_path(0), cgroup_path(me));
    }
}
