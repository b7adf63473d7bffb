//! Doing file work with someone else's rights: whatever a service reads or opens on a
//! caller's behalf is checked by the kernel as if the caller did it, so a service running as
//! root cannot be made to read what its caller may not.
//!
//! Credentials are per thread in the kernel (POSIX's process-wide IDs are a C library
//! convention), so the work runs on a short-lived thread of its own that takes on the
//! caller's UID, GID and groups and ends with the work; no other thread ever runs with them.
//! A thread whose effective UID is not 0 has no file capabilities (`CAP_DAC_OVERRIDE`,
//! `CAP_DAC_READ_SEARCH`, …), so permission bits, ACLs and search permission on every
//! directory apply to it as they apply to the caller.

use std::io;

use rustix::process::{Gid, Uid, getegid, geteuid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

/// Whose rights file work runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// The supplementary groups.
    pub groups: Vec<u32>,
}

impl Identity {
    /// Whether this is who the process already is (then there is nothing to take on).
    pub fn is_current(&self) -> bool {
        self.uid == geteuid().as_raw() && self.gid == getegid().as_raw()
    }
}

/// Runs `work` with `who`'s rights and returns its result: on the calling thread when `who`
/// is the process itself, else on a thread of its own that becomes `who` first.
///
/// # Errors
/// The thread could not take on `who`'s credentials (`EPERM` when the process is neither
/// root nor `who`), or `work`'s own error.
pub fn run_as<T: Send>(
    who: &Identity,
    work: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    if who.is_current() {
        return work();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                become_(who)?;
                work()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("file work as another user panicked")))
    })
}

/// Makes the calling thread `who`: groups first, then the GID, then the UID (after which it
/// could not change the others any more).
fn become_(who: &Identity) -> io::Result<()> {
    let groups: Vec<Gid> = who.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    set_thread_groups(&groups)?;
    let gid = Gid::from_raw(who.gid);
    set_thread_res_gid(gid, gid, gid)?;
    let uid = Uid::from_raw(who.uid);
    set_thread_res_uid(uid, uid, uid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn me() -> Identity {
        Identity {
            uid: geteuid().as_raw(),
            gid: getegid().as_raw(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn work_as_ourselves_runs_right_here() {
        let here = std::thread::current().id();
        let ran = run_as(&me(), || Ok(std::thread::current().id())).unwrap();
        assert_eq!(ran, here);
    }

    #[test]
    fn another_user_cannot_read_what_only_root_may_and_we_stay_root() {
        if !geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = dir.path().join("secret");
        let open = dir.path().join("open");
        std::fs::write(&secret, "x").unwrap();
        std::fs::write(&open, "y").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let nobody = Identity {
            uid: 65534,
            gid: 65534,
            groups: Vec::new(),
        };
        let denied = run_as(&nobody, || std::fs::read_to_string(&secret)).unwrap_err();
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            run_as(&nobody, || std::fs::read_to_string(&open)).unwrap(),
            "y"
        );
        let uid = run_as(&nobody, || Ok(geteuid().as_raw())).unwrap();
        assert_eq!(uid, 65534);
        assert!(geteuid().is_root());
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "x");
    }
}
