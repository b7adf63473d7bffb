//! Changes to images of the pool, as the registry decided them: under systemd-nspawn's locks
//! (a global one per inode in `lock_dir`, a local `.#NAME.lck` beside the image), so that the
//! image of a running container is neither removed nor renamed under it. A clone is built
//! under a temporary name and renamed into place ([`berth_os::copy`]), and stops, leaving
//! nothing, when the registry hangs up.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_interfaces::helper::ImageChange;
use berth_os::copy::{self, CopyOptions, Place, Progress};
use berth_os::files::{self, LockFile};
use rustix::fs::{Mode, OFlags, RenameFlags};

use crate::Failure;
use crate::copy::{Reporter, with_cancellation};

/// Carries out `change`.
///
/// # Errors
/// `EBUSY` when the image is locked (in use), else the kernel's error.
pub fn run(change: &ImageChange, lock_dir: &str, channel: BorrowedFd<'_>) -> Result<(), Failure> {
    match change {
        ImageChange::Remove { path, settings } => {
            let _locks = lock(Path::new(path), Path::new(lock_dir))?;
            let _ = set_read_only(Path::new(path), false, false);
            in_place(path, copy::remove_all).map_err(|e| Failure::system("removing", e))?;
            for file in settings {
                remove_file(file)?;
            }
            Ok(())
        }
        ImageChange::Rename {
            path,
            new_path,
            settings,
        } => {
            let _locks = lock(Path::new(path), Path::new(lock_dir))?;
            rename(path, new_path)?;
            for (from, to) in settings {
                match rename(from, to) {
                    Err(Failure(berth_interfaces::helper::HelperFailure::System {
                        errno: libc::ENOENT,
                        ..
                    })) => {}
                    other => other?,
                }
            }
            Ok(())
        }
        ImageChange::SetReadOnly {
            path,
            raw,
            read_only,
        } => set_read_only(Path::new(path), *raw, *read_only)
            .map_err(|e| Failure::system("changing the read-only flag", e)),
        ImageChange::Clone {
            source,
            destination,
            raw,
            read_only,
            settings,
        } => {
            let what = format!("cloning {source}");
            let progress = Progress::default();
            with_cancellation(channel, &Reporter::new(&what, &progress), |cancel| {
                let same = |uid, gid| (uid, gid);
                // Only root can keep others' files theirs.
                let root = rustix::process::geteuid().is_root();
                let options = CopyOptions {
                    replace: false,
                    owner: root.then_some(&same as copy::OwnerMap<'_>),
                    cancel,
                    progress: Some(&progress),
                };
                between(source, destination, |from, to| {
                    copy::copy(from, to, &options)
                })?;
                for (from, to) in settings {
                    match between(from, to, |from, to| copy::copy(from, to, &options)) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        other => other?,
                    }
                }
                Ok(())
            })
            .map_err(|e| Failure::system("cloning", e))?;
            if *read_only {
                set_read_only(Path::new(destination), *raw, true)
                    .map_err(|e| Failure::system("making the clone read-only", e))?;
            }
            Ok(())
        }
    }
}

/// Takes the image's local and global locks, exclusively, without waiting.
fn lock(image: &Path, lock_dir: &Path) -> Result<[LockFile; 2], Failure> {
    let busy = |e: std::io::Error| match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => {
            Failure::system("locking the image (in use)", rustix::io::Errno::BUSY)
        }
        _ => Failure::system("locking the image", e),
    };
    let stat = std::fs::metadata(image).map_err(|e| Failure::system("looking at the image", e))?;
    let name = image.file_name().unwrap_or_default().to_string_lossy();
    let local = image.with_file_name(format!(".#{name}.lck"));
    std::fs::create_dir_all(lock_dir)
        .map_err(|e| Failure::system("making the lock directory", e))?;
    let global = lock_dir.join(format!("inode-{}:{}", stat.dev(), stat.ino()));
    Ok([
        files::lock_exclusive(&local).map_err(busy)?,
        files::lock_exclusive(&global).map_err(busy)?,
    ])
}

/// Runs `work` on `path` as a place (its directory and name).
fn in_place<T>(
    path: &str,
    work: impl FnOnce(Place<'_>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let (dir, name) = copy::split_path(path);
    let dir = open_dir(dir)?;
    work(Place {
        dir: dir.as_fd(),
        name: name.as_ref(),
    })
}

/// Runs `work` on two paths as places.
fn between(
    from: &str,
    to: &str,
    work: impl FnOnce(Place<'_>, Place<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    in_place(from, |from| in_place(to, |to| work(from, to)))
}

fn open_dir(path: &str) -> std::io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(path, flags, Mode::empty())?)
}

fn rename(from: &str, to: &str) -> Result<(), Failure> {
    let immutable = is_immutable(Path::new(from));
    if immutable {
        let _ = set_read_only(Path::new(from), false, false);
    }
    let renamed = between(from, to, |from, to| {
        Ok(rustix::fs::renameat_with(
            from.dir,
            from.name,
            to.dir,
            to.name,
            RenameFlags::NOREPLACE,
        )?)
    });
    let now = if renamed.is_ok() { to } else { from };
    if immutable {
        let _ = set_read_only(Path::new(now), false, true);
    }
    renamed.map_err(|e| Failure::system("renaming", e))
}

fn remove_file(path: &str) -> Result<(), Failure> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Failure::system("removing settings", e))
        }
        _ => Ok(()),
    }
}

fn is_immutable(path: &Path) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    rustix::fs::open(path, flags, Mode::empty())
        .and_then(|fd| rustix::fs::ioctl_getflags(&fd))
        .is_ok_and(|f| f.contains(rustix::fs::IFlags::IMMUTABLE))
}

/// The immutable flag of a directory; a raw file's write permission (and immutable flag).
fn set_read_only(path: &Path, raw: bool, read_only: bool) -> std::io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    if raw {
        if !read_only {
            files::set_immutable(&fd, false).ok();
        }
        let mode = std::fs::metadata(path)?.permissions().mode();
        let mode = if read_only {
            mode & !0o222
        } else {
            mode | 0o200
        };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))?;
        return Ok(());
    }
    files::set_immutable(&fd, read_only)
}
