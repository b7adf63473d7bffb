//! The routing hints on the socket inode (`docs/USER_GROUP_API.md`): which UIDs, GIDs and
//! names this provider can answer, so clients may skip it for others.

use std::path::Path;

use rustix::io::Errno;

use crate::lookup::HOST_RANGE_END;

/// The extended attributes machined sets on its userdb socket.
fn hints() -> [(&'static str, String); 4] {
    let ids = format!("{HOST_RANGE_END}-4294967294");
    [
        ("user.userdb.uid", ids.clone()),
        ("user.userdb.gid", ids),
        ("user.userdb.username", "vu-*".to_owned()),
        ("user.userdb.groupname", "vg-*".to_owned()),
    ]
}

/// Sets the routing hints on `socket`, best effort: kernels before 7.1 refuse user xattrs on
/// sockets (`EPERM`), some file systems have none (`ENOTSUP`); clients then ask anyway.
pub fn set_routing_hints(socket: &Path) {
    for (name, value) in hints() {
        match rustix::fs::setxattr(
            socket,
            name,
            value.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            Err(Errno::PERM | Errno::NOTSUP) => {
                tracing::debug!(name, "The socket takes no routing xattrs, ignoring");
                return;
            }
            Err(error) => {
                tracing::warn!(name, %error, "Cannot set a routing xattr on the socket, ignoring");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_cover_the_container_range_and_names() {
        let hints = hints();
        assert_eq!(hints[0], ("user.userdb.uid", "65536-4294967294".into()));
        assert_eq!(hints[3], ("user.userdb.groupname", "vg-*".into()));
    }

    #[test]
    fn a_file_that_takes_xattrs_gets_them_and_others_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        set_routing_hints(&file);
        let mut value = [0u8; 64];
        if let Ok(n) = rustix::fs::getxattr(&file, "user.userdb.username", &mut value) {
            assert_eq!(&value[..n], b"vu-*");
        }
        set_routing_hints(&dir.path().join("missing"));
    }
}
