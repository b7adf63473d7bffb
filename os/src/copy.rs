//! Copying files and trees between two places given as directory descriptors and names, as
//! `CopyFrom`/`CopyTo` do between a machine and the host.
//!
//! * Nothing is ever followed below the two starting directories: every step is an `*at`
//!   call relative to a descriptor with `O_NOFOLLOW`, so a symlink in the tree (or one swapped
//!   in while the copy runs) is copied as a symlink, never read through or written through.
//! * The copy is built under a temporary name (`.#berth-copy-…`) next to its destination and
//!   renamed into place at the end (`RENAME_NOREPLACE`, or `RENAME_EXCHANGE` to replace), so
//!   a failure or a cancellation leaves no half-written destination, only nothing.
//! * Regular files are cloned (`FICLONE`) where the file system shares extents, else copied
//!   with `copy_file_range` over their data segments only (`SEEK_DATA`/`SEEK_HOLE`), so sparse
//!   files stay sparse; modes, owners (through a caller's mapping), times and extended
//!   attributes are kept. Hard links are copied as separate files; sockets are skipped.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, RenameFlags, SeekFrom, Stat, Timestamps, chownat,
    copy_file_range, fchmod, fchown, ioctl_ficlone, mkdirat, mknodat, openat, readlinkat,
    renameat_with, seek, statat, symlinkat, unlinkat, utimensat,
};
use rustix::fs::{Gid, Uid};
use rustix::time::Timespec;

/// How owners of copied files are chosen: from the source's `(uid, gid)`.
pub type OwnerMap<'a> = &'a (dyn Fn(u32, u32) -> (u32, u32) + Sync);

/// How to copy.
#[derive(Clone, Copy)]
pub struct CopyOptions<'a> {
    /// Whether an existing destination is replaced (else the copy fails with `EEXIST`).
    pub replace: bool,
    /// The owner each copy gets, or `None` to leave files to whoever copies them.
    pub owner: Option<OwnerMap<'a>>,
    /// Set by another thread to stop the copy (it then fails with `ECANCELED`).
    pub cancel: &'a AtomicBool,
    /// Counts what was copied, for another thread to report.
    pub progress: Option<&'a Progress>,
}

/// What a copy has done so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// Files, directories and links made.
    pub entries: AtomicU64,
    /// Bytes of regular files copied.
    pub bytes: AtomicU64,
}

/// An entry of a directory: the directory's descriptor and a name in it (`.` for the
/// directory itself).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The directory.
    pub dir: BorrowedFd<'a>,
    /// The name in it, one component.
    pub name: &'a OsStr,
}

/// Splits an absolute path into its parent and its last component (`/` is `("/", ".")`).
pub fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        None if trimmed.is_empty() => ("/", "."),
        None => (".", trimmed),
        Some(0) => ("/", &trimmed[1..]),
        Some(at) => (&trimmed[..at], &trimmed[at + 1..]),
    }
}

/// Copies `from` (a file, symlink, special file or directory tree) to `to`.
///
/// # Errors
/// `EEXIST` when `to` exists and `replace` is off, `ECANCELED` when cancelled, or the first
/// error of the kernel; in every case nothing is left at `to` that was not there before.
pub fn copy(from: Place<'_>, to: Place<'_>, options: &CopyOptions<'_>) -> io::Result<()> {
    let exists = statat(to.dir, to.name, AtFlags::SYMLINK_NOFOLLOW).is_ok();
    if exists && !options.replace {
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    let temp = temporary_name();
    let built = Place {
        dir: to.dir,
        name: &temp,
    };
    if let Err(error) =
        copy_entry(from, built, 0, options).and_then(|()| install(built, to, options))
    {
        remove_tree(built);
        return Err(error);
    }
    Ok(())
}

impl std::fmt::Debug for CopyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("replace", &self.replace)
            .field("maps_owners", &self.owner.is_some())
            .field("cancel", &self.cancel)
            .field("progress", &self.progress)
            .finish()
    }
}

fn temporary_name() -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    OsString::from(format!(".#berth-copy-{}-{n}", std::process::id()))
}

/// Moves the finished copy to its name; a replaced destination is exchanged with it, then
/// removed.
fn install(built: Place<'_>, to: Place<'_>, options: &CopyOptions<'_>) -> io::Result<()> {
    match renameat_with(
        built.dir,
        built.name,
        to.dir,
        to.name,
        RenameFlags::NOREPLACE,
    ) {
        Err(rustix::io::Errno::EXIST) if options.replace => {
            renameat_with(
                built.dir,
                built.name,
                to.dir,
                to.name,
                RenameFlags::EXCHANGE,
            )?;
            remove_tree(built);
            Ok(())
        }
        result => Ok(result?),
    }
}

fn check(options: &CopyOptions<'_>) -> io::Result<()> {
    if options.cancel.load(Ordering::Relaxed) {
        return Err(io::Error::from_raw_os_error(libc::ECANCELED));
    }
    Ok(())
}

/// How deep a tree may be (deeper ones fail with `ELOOP`): every level is a frame of the
/// copying thread's stack and two descriptors.
pub const MAX_DEPTH: usize = 256;

fn copy_entry(
    from: Place<'_>,
    to: Place<'_>,
    depth: usize,
    options: &CopyOptions<'_>,
) -> io::Result<()> {
    check(options)?;
    if depth > MAX_DEPTH {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    if let Some(progress) = options.progress {
        progress.entries.fetch_add(1, Ordering::Relaxed);
    }
    let stat = statat(from.dir, from.name, AtFlags::SYMLINK_NOFOLLOW)?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => copy_file(from, to, &stat, options),
        FileType::Directory => copy_directory(from, to, &stat, depth, options),
        FileType::Symlink => {
            let target = readlinkat(from.dir, from.name, Vec::new())?;
            symlinkat(target.as_c_str(), to.dir, to.name)?;
            set_owner_and_times_at(to, &stat, options)
        }
        FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
            let kind = FileType::from_raw_mode(stat.st_mode);
            mknodat(
                to.dir,
                to.name,
                kind,
                Mode::from_raw_mode(0o600),
                stat.st_rdev,
            )?;
            set_owner_and_times_at(to, &stat, options)?;
            set_mode_of_node(to, kind, &stat)
        }
        FileType::Socket | FileType::Unknown => Ok(()),
    }
}

fn open_in(place: Place<'_>, flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    Ok(openat(
        place.dir,
        place.name,
        flags,
        Mode::from_raw_mode(0o600),
    )?)
}

fn copy_file(
    from: Place<'_>,
    to: Place<'_>,
    stat: &Stat,
    options: &CopyOptions<'_>,
) -> io::Result<()> {
    let source = open_in(from, OFlags::RDONLY)?;
    let target = open_in(to, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)?;
    copy_data(&source, &target, stat.st_size as u64, options)?;
    if let Some(progress) = options.progress {
        progress
            .bytes
            .fetch_add(stat.st_size as u64, Ordering::Relaxed);
    }
    set_attributes(&source, &target, stat, options)
}

fn copy_directory(
    from: Place<'_>,
    to: Place<'_>,
    stat: &Stat,
    depth: usize,
    options: &CopyOptions<'_>,
) -> io::Result<()> {
    let source = open_in(from, OFlags::RDONLY | OFlags::DIRECTORY)?;
    mkdirat(to.dir, to.name, Mode::from_raw_mode(0o700))?;
    let target = open_in(to, OFlags::RDONLY | OFlags::DIRECTORY)?;
    for entry in Dir::read_from(&source)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let name = OsStr::from_bytes(name.to_bytes());
        copy_entry(
            Place {
                dir: source.as_fd(),
                name,
            },
            Place {
                dir: target.as_fd(),
                name,
            },
            depth + 1,
            options,
        )?;
    }
    set_attributes(&source, &target, stat, options)
}

/// The most one `copy_file_range` moves, so that a cancellation is seen soon.
const CHUNK: u64 = 16 * 1024 * 1024;

/// Copies the bytes of `source` to `target`: a clone if the file system can, else the data
/// segments only, leaving holes as holes.
fn copy_data(
    source: &OwnedFd,
    target: &OwnedFd,
    size: u64,
    options: &CopyOptions<'_>,
) -> io::Result<()> {
    if ioctl_ficlone(target, source).is_ok() {
        return Ok(());
    }
    let mut offset = 0;
    while offset < size {
        let data = match seek(source, SeekFrom::Data(offset)) {
            Ok(data) => data,
            Err(rustix::io::Errno::NXIO) => break, // only a hole is left
            Err(rustix::io::Errno::INVAL) => offset, // no SEEK_DATA here: all data
            Err(e) => return Err(e.into()),
        };
        let hole = seek(source, SeekFrom::Hole(data)).unwrap_or(size).min(size);
        copy_range(source, target, data, hole, options)?;
        offset = hole;
    }
    rustix::fs::ftruncate(target, size)?;
    Ok(())
}

fn copy_range(
    source: &OwnedFd,
    target: &OwnedFd,
    start: u64,
    end: u64,
    options: &CopyOptions<'_>,
) -> io::Result<()> {
    let mut position = start;
    while position < end {
        check(options)?;
        let length = (end - position).min(CHUNK) as usize;
        let (mut from, mut to) = (position, position);
        let copied = match copy_file_range(source, Some(&mut from), target, Some(&mut to), length) {
            Ok(copied) => copied,
            Err(rustix::io::Errno::XDEV | rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                copy_through_buffer(source, target, position, length)?
            }
            Err(e) => return Err(e.into()),
        };
        if copied == 0 {
            return Ok(()); // the file shrank meanwhile
        }
        position += copied as u64;
    }
    Ok(())
}

/// `copy_file_range` refused (another file system type): read and write; 0 at the end of the
/// file.
fn copy_through_buffer(
    source: &OwnedFd,
    target: &OwnedFd,
    position: u64,
    length: usize,
) -> io::Result<usize> {
    let mut buffer = vec![0u8; length.min(256 * 1024)];
    let read = rustix::io::pread(source, &mut buffer[..], position)?;
    let mut written = 0;
    while written < read {
        written += rustix::io::pwrite(target, &buffer[written..read], position + written as u64)?;
    }
    Ok(read)
}

fn owner_of(stat: &Stat, options: &CopyOptions<'_>) -> Option<(Uid, Gid)> {
    let (uid, gid) = options.owner?(stat.st_uid, stat.st_gid);
    Some((Uid::from_raw(uid), Gid::from_raw(gid)))
}

fn times_of(stat: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: stat.st_atime,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: stat.st_mtime,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    }
}

/// Extended attributes, owner, mode (after the owner: a change of owner clears set-ID bits)
/// and times, of a file or directory open at `target`.
fn set_attributes(
    source: &OwnedFd,
    target: &OwnedFd,
    stat: &Stat,
    options: &CopyOptions<'_>,
) -> io::Result<()> {
    copy_xattrs(source, target)?;
    if let Some((uid, gid)) = owner_of(stat, options) {
        fchown(target, Some(uid), Some(gid))?;
    }
    fchmod(target, Mode::from_raw_mode(stat.st_mode & 0o7777))?;
    rustix::fs::futimens(target, &times_of(stat))?;
    Ok(())
}

/// Owner and times of a symlink or special file, by name.
fn set_owner_and_times_at(to: Place<'_>, stat: &Stat, options: &CopyOptions<'_>) -> io::Result<()> {
    if let Some((uid, gid)) = owner_of(stat, options) {
        chownat(
            to.dir,
            to.name,
            Some(uid),
            Some(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    utimensat(to.dir, to.name, &times_of(stat), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// The mode of a special file, through an `O_PATH` descriptor of it (opening it for real could
/// block or reach a device), checked to still be the node made (not a symlink swapped in).
fn set_mode_of_node(to: Place<'_>, kind: FileType, stat: &Stat) -> io::Result<()> {
    let node = open_in(to, OFlags::PATH)?;
    if FileType::from_raw_mode(rustix::fs::fstat(&node)?.st_mode) != kind {
        return Err(io::Error::from_raw_os_error(libc::ESTALE));
    }
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&node));
    rustix::fs::chmod(path.as_str(), Mode::from_raw_mode(stat.st_mode & 0o7777))?;
    Ok(())
}

/// Copies every extended attribute the target's file system and our rights allow (a
/// `trusted.` or `security.` name may be refused; user attributes on a file system without
/// them are skipped).
fn copy_xattrs(source: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
    // The kernel's limits: XATTR_LIST_MAX and XATTR_SIZE_MAX.
    let mut names = vec![0u8; 64 * 1024];
    let length = match rustix::fs::flistxattr(source, &mut names[..]) {
        Ok(length) => length,
        Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::NOSYS) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..length].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = OsStr::from_bytes(name);
        let length = match rustix::fs::fgetxattr(source, name, &mut value[..]) {
            Ok(length) => length,
            Err(rustix::io::Errno::NODATA) => continue, // removed meanwhile
            Err(e) => return Err(e.into()),
        };
        let flags = rustix::fs::XattrFlags::empty();
        match rustix::fs::fsetxattr(target, name, &value[..length], flags) {
            Ok(()) | Err(rustix::io::Errno::PERM | rustix::io::Errno::NOTSUP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes `place` and everything below it, as far as it can; errors are ignored (this
/// cleans up after a failure).
pub fn remove_tree(place: Place<'_>) {
    let _ = remove_below(place, 0);
}

/// Removes `place` and everything below it (never following a symlink).
///
/// # Errors
/// The first error met (everything removable is removed all the same).
pub fn remove_all(place: Place<'_>) -> io::Result<()> {
    remove_below(place, 0)
}

fn remove_below(place: Place<'_>, depth: usize) -> io::Result<()> {
    match unlinkat(place.dir, place.name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::ISDIR | rustix::io::Errno::PERM) if depth <= 2 * MAX_DEPTH => {}
        Err(e) => return Err(e.into()),
    }
    let mut first_error = None;
    if let Ok(dir) = open_in(place, OFlags::RDONLY | OFlags::DIRECTORY) {
        let names: Vec<OsString> = Dir::read_from(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| OsStr::from_bytes(entry.file_name().to_bytes()).to_owned())
            .filter(|name| name != "." && name != "..")
            .collect();
        for name in &names {
            let entry = Place {
                dir: dir.as_fd(),
                name,
            };
            if let Err(e) = remove_below(entry, depth + 1) {
                first_error.get_or_insert(e);
            }
        }
    }
    let removed = unlinkat(place.dir, place.name, AtFlags::REMOVEDIR).map_err(io::Error::from);
    match first_error {
        Some(error) => Err(error),
        None => removed,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use std::path::Path;

    use super::*;

    fn dir_fd(path: &Path) -> OwnedFd {
        rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    fn copy_between(
        from: &Path,
        name: &str,
        to: &Path,
        target: &str,
        options: &CopyOptions<'_>,
    ) -> io::Result<()> {
        let (from, to) = (dir_fd(from), dir_fd(to));
        let from = Place {
            dir: from.as_fd(),
            name: OsStr::new(name),
        };
        let to = Place {
            dir: to.as_fd(),
            name: OsStr::new(target),
        };
        copy(from, to, options)
    }

    fn plain(cancel: &AtomicBool, replace: bool) -> CopyOptions<'_> {
        CopyOptions {
            replace,
            owner: None,
            cancel,
            progress: None,
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".#berth-copy"))
            .collect()
    }

    #[test]
    fn splits_paths() {
        assert_eq!(split_path("/"), ("/", "."));
        assert_eq!(split_path("/etc"), ("/", "etc"));
        assert_eq!(split_path("/etc/passwd"), ("/etc", "passwd"));
        assert_eq!(split_path("/a/b/"), ("/a", "b"));
    }

    #[test]
    fn a_tree_keeps_modes_times_symlinks_xattrs_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/file"), "hello").unwrap();
        fs::set_permissions(src.join("sub/file"), fs::Permissions::from_mode(0o640)).unwrap();
        symlink("/etc/shadow", src.join("hostile")).unwrap();
        let sparse = fs::File::create(src.join("sparse")).unwrap();
        sparse.set_len(64 * 1024 * 1024).unwrap();
        std::os::unix::fs::FileExt::write_at(&sparse, b"end", 64 * 1024 * 1024 - 3).unwrap();
        let has_xattrs = rustix::fs::setxattr(
            src.join("sub/file"),
            "user.berth",
            b"1",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok();
        let old = Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 5,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            src.join("sub/file"),
            &Timestamps {
                last_access: old,
                last_modification: old,
            },
            AtFlags::empty(),
        )
        .unwrap();

        let cancel = AtomicBool::new(false);
        copy_between(dir.path(), "src", dir.path(), "dst", &plain(&cancel, false)).unwrap();
        let dst = dir.path().join("dst");
        assert_eq!(fs::read_to_string(dst.join("sub/file")).unwrap(), "hello");
        let meta = fs::metadata(dst.join("sub/file")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_000_000_000, 5));
        assert_eq!(
            fs::read_link(dst.join("hostile")).unwrap(),
            Path::new("/etc/shadow")
        );
        let sparse = fs::metadata(dst.join("sparse")).unwrap();
        assert_eq!(sparse.len(), 64 * 1024 * 1024);
        assert!(
            sparse.blocks() * 512 < 1024 * 1024,
            "the hole was written: {} blocks",
            sparse.blocks()
        );
        if has_xattrs {
            let mut value = [0u8; 8];
            let length =
                rustix::fs::getxattr(dst.join("sub/file"), "user.berth", &mut value[..]).unwrap();
            assert_eq!(&value[..length], b"1");
        }
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn an_existing_destination_is_kept_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("new"), "new").unwrap();
        fs::create_dir(dir.path().join("old")).unwrap();
        fs::write(dir.path().join("old/inside"), "old").unwrap();
        let cancel = AtomicBool::new(false);
        let err =
            copy_between(dir.path(), "new", dir.path(), "old", &plain(&cancel, false)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(
            fs::read_to_string(dir.path().join("old/inside")).unwrap(),
            "old"
        );
        copy_between(dir.path(), "new", dir.path(), "old", &plain(&cancel, true)).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("old")).unwrap(), "new");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn progress_counts_entries_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/a"), "abc").unwrap();
        fs::write(dir.path().join("src/b"), "de").unwrap();
        let cancel = AtomicBool::new(false);
        let progress = Progress::default();
        let options = CopyOptions {
            progress: Some(&progress),
            ..plain(&cancel, false)
        };
        copy_between(dir.path(), "src", dir.path(), "dst", &options).unwrap();
        assert_eq!(progress.entries.load(Ordering::Relaxed), 3);
        assert_eq!(progress.bytes.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn a_cancelled_copy_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/a"), "a").unwrap();
        let cancel = AtomicBool::new(true);
        let err =
            copy_between(dir.path(), "src", dir.path(), "dst", &plain(&cancel, false)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
        assert!(!dir.path().join("dst").exists());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn owners_come_from_the_mapping() {
        if !rustix::process::geteuid().is_root() {
            return; // chown needs root
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "x").unwrap();
        let cancel = AtomicBool::new(false);
        let shift = |uid: u32, gid: u32| (uid + 65536, gid + 65536);
        let options = CopyOptions {
            replace: false,
            owner: Some(&shift),
            cancel: &cancel,
            progress: None,
        };
        copy_between(dir.path(), "f", dir.path(), "g", &options).unwrap();
        let meta = fs::symlink_metadata(dir.path().join("g")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65536, 65536));
    }
}
