//! The image pool (`io.systemd.MachineImage`): the images containers and VMs boot from, found
//! where upstream looks for them. Reading (discovery, metadata) happens here; every change
//! (clone, rename, read-only, remove) is a job for the machine helper, which runs outside the
//! registry's sandbox and takes systemd-nspawn's image locks.

pub mod discover;
pub mod metadata;

use std::path::{Path, PathBuf};

/// Where images are, where new ones go, and where their settings and locks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The directories searched, in order (the first image of a name wins).
    pub search: Vec<SearchDir>,
    /// Where clones are made.
    pub pool_dir: PathBuf,
    /// Directories of `.nspawn` and `.vmspawn` settings files besides the image's own.
    pub settings_dirs: Vec<PathBuf>,
    /// systemd-nspawn's global lock directory (`/run/systemd/nspawn/locks`).
    pub lock_dir: PathBuf,
    /// Whether `.host` is an image (system scope).
    pub host_image: bool,
}

/// A directory images are searched in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    /// The directory.
    pub path: PathBuf,
    /// Whether its images come with the OS (read-only, never removed).
    pub vendor: bool,
}

/// The variable that replaces the search path (test-only; colon-separated; the first
/// directory is then the pool, settings live beside images and below the runtime
/// directory).
pub const SEARCH_PATH_OVERRIDE: &str = "BERTH_IMAGE_PATH";

const SYSTEM_SEARCH: [(&str, bool); 6] = [
    ("/etc/machines", false),
    ("/run/machines", false),
    ("/var/lib/machines", false),
    ("/var/lib/container", false),
    ("/usr/local/lib/machines", true),
    ("/usr/lib/machines", true),
];

impl Pool {
    /// The pool of the system (`user` false) or of the calling user, with nspawn's runtime
    /// files below `runtime_dir`.
    pub fn new(user: bool, runtime_dir: &Path) -> Self {
        let nspawn_runtime = runtime_dir.join("systemd/nspawn");
        let lock_dir = nspawn_runtime.join("locks");
        if let Some(paths) = std::env::var_os(SEARCH_PATH_OVERRIDE) {
            let search: Vec<SearchDir> = std::env::split_paths(&paths)
                .map(|path| SearchDir {
                    path,
                    vendor: false,
                })
                .collect();
            return Self {
                pool_dir: search.first().map(|d| d.path.clone()).unwrap_or_default(),
                search,
                settings_dirs: vec![nspawn_runtime],
                lock_dir,
                host_image: !user,
            };
        }
        if user {
            return Self::user(runtime_dir, nspawn_runtime, lock_dir);
        }
        Self {
            search: SYSTEM_SEARCH
                .iter()
                .map(|&(path, vendor)| SearchDir {
                    path: path.into(),
                    vendor,
                })
                .collect(),
            pool_dir: "/var/lib/machines".into(),
            settings_dirs: vec!["/etc/systemd/nspawn".into(), nspawn_runtime],
            lock_dir,
            host_image: true,
        }
    }

    fn user(runtime_dir: &Path, nspawn_runtime: PathBuf, lock_dir: PathBuf) -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let xdg = |variable: &str, fallback: &str| {
            std::env::var_os(variable).map_or_else(|| home.join(fallback), PathBuf::from)
        };
        let config = xdg("XDG_CONFIG_HOME", ".config");
        let data = xdg("XDG_DATA_HOME", ".local/share");
        let search = [
            config.join("machines"),
            runtime_dir.join("machines"),
            data.join("machines"),
        ]
        .into_iter()
        .map(|path| SearchDir {
            path,
            vendor: false,
        })
        .collect();
        Self {
            search,
            pool_dir: data.join("machines"),
            settings_dirs: vec![config.join("systemd/nspawn"), nspawn_runtime],
            lock_dir,
            host_image: false,
        }
    }
}

/// Whether `name` is an image name as upstream accepts it: a file name (not `.` or `..`, no
/// `/`, at most 255 bytes), no control characters, not a temporary file (`.#…`).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.starts_with(".#")
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names_but_not_temporary_ones() {
        for good in ["debian", ".hidden", "a.b-c_d", "ünïcode"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            ".#temp",
            "tab\there",
            &"x".repeat(256),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
