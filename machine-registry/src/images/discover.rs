//! Finding images: each search directory's entries, their type (`directory`, `subvolume` on
//! btrfs, `raw` for `NAME.raw` files, `block` for block devices), whether they are read-only
//! (vendor directories, the immutable flag, a read-only file system, a raw file without write
//! permission), their times and usage. One `statx` per entry, one `statfs` per directory.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, StatVfsMountFlags, Statx, StatxAttributes, StatxFlags};

use super::{Pool, SearchDir, is_valid_name};

/// What an image is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory tree.
    Directory,
    /// A btrfs subvolume.
    Subvolume,
    /// A disk image file (`NAME.raw`).
    Raw,
    /// A block device.
    Block,
}

impl Kind {
    /// The IDL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Subvolume => "subvolume",
            Self::Raw => "raw",
            Self::Block => "block",
        }
    }
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its name.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// What it is stored as.
    pub kind: Kind,
    /// Whether it is read-only.
    pub read_only: bool,
    /// Whether it came with the OS (or is the host): never changed or removed.
    pub vendor: bool,
    /// Whether it is `.host`.
    pub host: bool,
    /// Whether it is the newest version of a versioned image (`NAME.v/`).
    pub versioned: bool,
    /// When it was made (µs).
    pub created: Option<u64>,
    /// When it was last changed (µs).
    pub modified: Option<u64>,
    /// Bytes used (raw images).
    pub usage: Option<u64>,
    /// Its size (raw images).
    pub limit: Option<u64>,
}

/// The `.host` image: the host's own root, read-only.
fn host() -> Image {
    Image {
        name: ".host".into(),
        path: "/".into(),
        kind: Kind::Directory,
        read_only: true,
        vendor: true,
        host: true,
        versioned: false,
        created: None,
        modified: None,
        usage: None,
        limit: None,
    }
}

/// Every image of the pool, by name (the first of a name in search order), `.host` first.
pub fn all(pool: &Pool) -> Vec<Image> {
    let mut images: Vec<Image> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if pool.host_image {
        seen.insert(".host".to_owned());
        images.push(host());
    }
    for dir in &pool.search {
        for image in in_directory(dir) {
            if seen.insert(image.name.clone()) {
                images.push(image);
            }
        }
    }
    images.sort_by(|a, b| (!a.host, &a.name).cmp(&(!b.host, &b.name)));
    images
}

/// The image `name`, if any.
pub fn find(pool: &Pool, name: &str) -> Option<Image> {
    if name == ".host" {
        return pool.host_image.then(host);
    }
    pool.search.iter().find_map(|dir| {
        let (raw, versioned) = (format!("{name}.raw"), format!("{name}.v"));
        let mut image = [name, raw.as_str(), versioned.as_str()]
            .into_iter()
            .find_map(|file| inspect(dir, OsStr::new(file)))
            .filter(|image| image.name == name)?;
        // Only for what was found: the statvfs of each directory searched in vain is saved.
        image.read_only |= read_only_file_system(&dir.path);
        Some(image)
    })
}

fn read_only_file_system(dir: &Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY))
}

fn in_directory(dir: &SearchDir) -> Vec<Image> {
    let Ok(entries) = std::fs::read_dir(&dir.path) else {
        return Vec::new();
    };
    let mut images: Vec<Image> = entries
        .flatten()
        .filter_map(|entry| inspect(dir, &entry.file_name()))
        .collect();
    if !images.is_empty() && read_only_file_system(&dir.path) {
        images.iter_mut().for_each(|image| image.read_only = true);
    }
    images
}

const BTRFS_SUBVOLUME_INODE: u64 = 256;

/// The image stored as `file` in `dir`, if it is one (read-only as far as the file itself
/// tells: the callers add a read-only file system).
fn inspect(dir: &SearchDir, file: &OsStr) -> Option<Image> {
    let path = dir.path.join(file);
    let wanted = StatxFlags::TYPE
        | StatxFlags::MODE
        | StatxFlags::INO
        | StatxFlags::MTIME
        | StatxFlags::BTIME
        | StatxFlags::SIZE
        | StatxFlags::BLOCKS;
    // Symlinks are followed: /etc/machines holds links to images elsewhere.
    let stat = rustix::fs::statx(rustix::fs::CWD, &path, AtFlags::empty(), wanted).ok()?;
    let file_type = FileType::from_raw_mode(u32::from(stat.stx_mode));
    let file_name = std::str::from_utf8(file.as_bytes()).ok()?;
    if let Some(name) = file_name.strip_suffix(".v")
        && file_type == FileType::Directory
    {
        return newest_version(dir, &path, name);
    }
    let (name, kind) = match file_type {
        FileType::Directory if stat.stx_ino == BTRFS_SUBVOLUME_INODE && is_btrfs(&path) => {
            (file_name, Kind::Subvolume)
        }
        FileType::Directory => (file_name, Kind::Directory),
        FileType::RegularFile => (file_name.strip_suffix(".raw")?, Kind::Raw),
        FileType::BlockDevice => (file_name, Kind::Block),
        _ => return None,
    };
    if !is_valid_name(name) {
        return None;
    }
    let immutable = stat.stx_attributes.contains(StatxAttributes::IMMUTABLE);
    let unwritable = kind == Kind::Raw && stat.stx_mode & 0o222 == 0;
    let raw = kind == Kind::Raw;
    Some(Image {
        name: name.to_owned(),
        path,
        kind,
        read_only: dir.vendor || immutable || unwritable,
        vendor: dir.vendor,
        host: false,
        versioned: false,
        created: microseconds(&stat, StatxFlags::BTIME, stat.stx_btime),
        modified: microseconds(&stat, StatxFlags::MTIME, stat.stx_mtime),
        usage: raw.then_some(stat.stx_blocks * 512),
        limit: raw.then_some(stat.stx_size),
    })
}

/// A versioned image (`NAME.v/` holding `NAME_VERSION` trees or `NAME_VERSION.raw` files):
/// its newest version, under `NAME`.
fn newest_version(dir: &SearchDir, versions: &Path, name: &str) -> Option<Image> {
    let prefix = format!("{name}_");
    let newest = std::fs::read_dir(versions)
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|file| {
            let version = file.strip_prefix(&prefix)?;
            let version = version.strip_suffix(".raw").unwrap_or(version).to_owned();
            Some((version, file))
        })
        .max_by(|(a, _), (b, _)| compare_versions(a, b))?;
    let inner = SearchDir {
        path: versions.to_owned(),
        vendor: dir.vendor,
    };
    let mut image = inspect(&inner, OsStr::new(&newest.1))?;
    image.name = name.to_owned();
    image.versioned = true;
    is_valid_name(name).then_some(image)
}

/// Compares versions as `strverscmp` does, roughly: runs of digits by value, the rest by
/// character.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(v: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = v.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &v[start..i]));
                start = i;
            }
        }
        out
    }
    let (a, b) = (chunks(a), chunks(b));
    for ((a_digits, a), (b_digits, b)) in a.iter().zip(b.iter()) {
        let order = match (a_digits, b_digits) {
            (true, true) => {
                let trimmed = |s: &str| s.trim_start_matches('0').to_owned();
                let (a, b) = (trimmed(a), trimmed(b));
                a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
            }
            _ => a.cmp(b),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

fn is_btrfs(path: &Path) -> bool {
    const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == BTRFS_SUPER_MAGIC)
}

fn microseconds(stat: &Statx, field: StatxFlags, time: rustix::fs::StatxTimestamp) -> Option<u64> {
    if stat.stx_mask & field.bits() == 0 {
        return None;
    }
    let us = u64::try_from(time.tv_sec).ok()? * 1_000_000 + u64::from(time.tv_nsec) / 1_000;
    (us > 0).then_some(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &Path) -> Pool {
        Pool {
            search: vec![SearchDir {
                path: dir.to_owned(),
                vendor: false,
            }],
            pool_dir: dir.to_owned(),
            settings_dirs: Vec::new(),
            lock_dir: dir.join("locks"),
            host_image: true,
        }
    }

    #[test]
    fn versioned_images_are_their_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        let versions = dir.path().join("fedora.v");
        std::fs::create_dir(&versions).unwrap();
        for version in ["39", "40", "9"] {
            std::fs::write(versions.join(format!("fedora_{version}.raw")), "x").unwrap();
        }
        let image = find(&pool(dir.path()), "fedora").unwrap();
        assert_eq!(image.path, versions.join("fedora_40.raw"));
        assert_eq!(image.kind, Kind::Raw);
        assert!(compare_versions("1.10", "1.9").is_gt());
        assert!(compare_versions("2", "10").is_lt());
    }

    #[test]
    fn directories_raw_files_and_hidden_images_are_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tree")).unwrap();
        std::fs::create_dir(dir.path().join(".hidden")).unwrap();
        std::fs::write(dir.path().join("disk.raw"), vec![0u8; 4096]).unwrap();
        std::fs::write(dir.path().join("tree.nspawn"), "").unwrap();
        std::fs::write(dir.path().join(".#tree.lck"), "").unwrap();
        let images = all(&pool(dir.path()));
        let names: Vec<(&str, Kind)> = images.iter().map(|i| (i.name.as_str(), i.kind)).collect();
        assert_eq!(
            names,
            [
                (".host", Kind::Directory),
                (".hidden", Kind::Directory),
                ("disk", Kind::Raw),
                ("tree", Kind::Directory)
            ]
        );
        let disk = find(&pool(dir.path()), "disk").unwrap();
        assert_eq!((disk.limit, disk.read_only), (Some(4096), false));
        assert!(find(&pool(dir.path()), "tree.nspawn").is_none());
        assert!(find(&pool(dir.path()), "nope").is_none());
    }
}
