//! `BindMount`: a host file or directory into the machine, with the new mount API: the
//! source is cloned as a detached tree (`open_tree`) on the host's side, made read-only
//! there if asked (before anyone can see it), then attached (`move_mount`) inside the
//! machine's mount namespace onto the destination, resolved strictly inside its root.

use std::os::fd::OwnedFd;

use berth_os::copy::split_path;
use berth_os::sys;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::mount::{MoveMountFlags, OpenTreeFlags};

use crate::Failure;
use crate::enter::{self, Scope};

/// Mounts the host's `source` at `destination` in the machine of `leader`.
///
/// # Errors
/// The source is missing, the destination is missing (without `mkdir`) or unusable, or the
/// kernel refused.
pub fn mount(
    leader: &OwnedFd,
    source: &str,
    destination: &str,
    read_only: bool,
    mkdir: bool,
) -> Result<(), Failure> {
    let flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_RECURSIVE;
    let tree = rustix::mount::open_tree(rustix::fs::CWD, source, flags)
        .map_err(|e| Failure::system("opening the source", e))?;
    let is_directory = rustix::fs::fstat(&tree)
        .map(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Directory)
        .map_err(|e| Failure::system("opening the source", e))?;
    if read_only {
        sys::make_mount_tree_read_only(std::os::fd::AsFd::as_fd(&tree))
            .map_err(|e| Failure::system("making the mount read-only", e))?;
    }
    let root = enter::machine(Some(leader), Scope::MountOnly)?
        .ok_or_else(|| Failure::system("entering the machine", rustix::io::Errno::INVAL))?;
    if mkdir {
        make_mount_point(&root, destination, is_directory)?;
    }
    let target = root
        .open_location(destination)
        .map_err(|e| Failure::system("resolving the destination", e))?;
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    rustix::mount::move_mount(&tree, "", &target, "", flags)
        .map_err(|e| Failure::system("mounting", e))
}

/// Makes the missing directories of `path` (`mkdir -p`), each resolved inside the root.
fn make_directories(root: &berth_os::root::Root, path: &str) -> Result<(), Failure> {
    let mut done = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        let parent = root
            .open_directory(if done.is_empty() { "/" } else { &done })
            .map_err(|e| Failure::system("resolving the destination's directory", e))?;
        match rustix::fs::mkdirat(&parent, part, Mode::from_raw_mode(0o755)) {
            Ok(()) => give_to_its_root(root, &parent, part)?,
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(Failure::system("making the destination's directory", e)),
        }
        done = format!("{done}/{part}");
    }
    Ok(())
}

/// Makes a missing mount point: a directory for a directory, an empty file for a file.
fn make_mount_point(
    root: &berth_os::root::Root,
    destination: &str,
    is_directory: bool,
) -> Result<(), Failure> {
    let (parent, name) = split_path(destination);
    make_directories(root, parent)?;
    let parent = root
        .open_directory(parent)
        .map_err(|e| Failure::system("resolving the destination's directory", e))?;
    let made = if is_directory {
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))
    } else {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        rustix::fs::openat(
            &parent,
            name,
            flags | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop)
    };
    match made {
        Ok(()) => give_to_its_root(root, &parent, name),
        Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(Failure::system("making the mount point", e)),
    }
}

/// Gives what we made in the machine to the owner of its root directory (its root user: we
/// make it as the host's root, whom a user namespace does not map).
fn give_to_its_root(
    root: &berth_os::root::Root,
    parent: &OwnedFd,
    name: &str,
) -> Result<(), Failure> {
    let top = root
        .open_directory("/")
        .and_then(|top| Ok(rustix::fs::fstat(&top)?))
        .map_err(|e| Failure::system("looking at its root", e))?;
    let (uid, gid) = (Uid::from_raw(top.st_uid), Gid::from_raw(top.st_gid));
    rustix::fs::chownat(
        parent,
        name,
        Some(uid),
        Some(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Failure::system("giving the mount point to its root", e))
}
