//! The registry's host table (`berth_interfaces::hosts`): most lookups are answered from it,
//! with no round trip to the registry, as long as the registry vouches for it.

use std::fs::File;
use std::io;
use std::path::Path;

use berth_interfaces::hosts::{self, HostEntry, LOCK_FILE};
use berth_interfaces::registry::ResolveHostReply;
use rustix::fs::FlockOperation;

use crate::query::Errno;

/// What the table says about a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The answer `ResolveHost` would give.
    Answer(Result<ResolveHostReply, Errno>),
    /// The table cannot answer (none, not vouched for, or not known yet): ask the registry.
    Ask,
}

/// Looks `name` (a valid lookup name, so a plain file name) up in the table of the registry
/// listening on `socket`. The entry is read first and trusted only if the registry still
/// vouches for the table afterwards.
pub fn lookup(socket: &Path, name: &str) -> Lookup {
    let Some(dir) = hosts::table_dir(socket) else {
        return Lookup::Ask;
    };
    let entry = match std::fs::read(dir.join(name)) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(_) => return Lookup::Ask,
    };
    if !vouched(&dir) {
        return Lookup::Ask;
    }
    let Some(bytes) = entry else {
        return Lookup::Answer(Err(Errno(libc::ENXIO)));
    };
    match serde_json::from_slice(&bytes) {
        Ok(HostEntry::Reply(reply)) => Lookup::Answer(Ok(reply)),
        Ok(HostEntry::NoPrivateNetworking) => Lookup::Answer(Err(Errno(libc::ENOSYS))),
        Ok(HostEntry::Ask) | Err(_) => Lookup::Ask,
    }
}

/// Whether someone holds the write lock of the table's lock file: a read lock of our own is
/// refused. (A granted one goes again as the file closes.)
fn vouched(dir: &Path) -> bool {
    let Ok(lock) = File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    match rustix::fs::fcntl_lock(&lock, FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(e) => e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::fd::AsFd;

    use berth_interfaces::machine::MachineClass;
    use berth_os::sys::{OfdLock, ofd_lock};

    use super::*;
    use crate::test_utils::Socket;

    /// A table beside `socket` with one entry per `(name, text)`.
    fn table(socket: &Socket, entries: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = hosts::table_dir(&socket.path()).unwrap();
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(LOCK_FILE), "").unwrap();
        for (name, text) in entries {
            fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    /// Holds the write lock as the registry does, until dropped.
    fn vouch(dir: &Path) -> File {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .unwrap();
        ofd_lock(file.as_fd(), OfdLock::Write, false).unwrap();
        file
    }

    const VM: &str = r#"{"reply":{"class":"vm","ifIndices":[4]}}"#;

    #[test]
    fn a_vouched_table_answers_and_knows_which_names_are_no_machines() {
        let socket = Socket::new("table");
        let dir = table(
            &socket,
            &[
                ("vm1", VM),
                ("shared", r#""noPrivateNetworking""#),
                ("fresh", r#""ask""#),
                ("broken", "{"),
            ],
        );
        let _held = vouch(&dir);
        let Lookup::Answer(Ok(reply)) = lookup(&socket.path(), "vm1") else {
            panic!("no answer")
        };
        assert_eq!(
            (reply.class, reply.if_indices),
            (MachineClass::Vm, Some(vec![4]))
        );
        let answer = |name| lookup(&socket.path(), name);
        assert_eq!(answer("shared"), Lookup::Answer(Err(Errno(libc::ENOSYS))));
        assert_eq!(answer("nothere"), Lookup::Answer(Err(Errno(libc::ENXIO))));
        assert_eq!(answer("fresh"), Lookup::Ask);
        assert_eq!(answer("broken"), Lookup::Ask);
    }

    #[test]
    fn a_table_nobody_vouches_for_is_not_read() {
        let socket = Socket::new("unvouched");
        let dir = table(&socket, &[("vm1", VM)]);
        assert_eq!(lookup(&socket.path(), "vm1"), Lookup::Ask);
        assert_eq!(lookup(&socket.path(), "nothere"), Lookup::Ask);
        drop(vouch(&dir));
        assert_eq!(lookup(&socket.path(), "vm1"), Lookup::Ask);
        let missing = Socket::new("tableless");
        assert_eq!(lookup(&missing.path(), "vm1"), Lookup::Ask);
    }

    #[test]
    fn a_read_lock_of_another_reader_does_not_pass_for_the_registry() {
        let socket = Socket::new("readlock");
        let dir = table(&socket, &[("vm1", VM)]);
        let reader = File::open(dir.join(LOCK_FILE)).unwrap();
        ofd_lock(reader.as_fd(), OfdLock::Read, false).unwrap();
        assert_eq!(lookup(&socket.path(), "vm1"), Lookup::Ask);
    }
}
