//! The jobs the registry gives `berth-machine-helper`, and its answers: one JSON message each
//! way over a `SOCK_SEQPACKET` socket (the helper's standard input), with descriptors passed
//! alongside (`SCM_RIGHTS`). Not Varlink: the helper is a private part of the registry.

use serde::{Deserialize, Serialize};

use crate::machine::OpenMode;

/// What the helper is to do, with whose rights, in which machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperRequest {
    /// The job.
    pub job: Job,
    /// The caller the helper becomes first (UID, GID, groups), unless it is root.
    pub caller: Caller,
    /// Index of the machine leader's pidfd among the passed descriptors (none: the host).
    pub leader: Option<usize>,
    /// Index of the cgroup2 directory (`O_PATH`) a started program is born in.
    pub cgroup: Option<usize>,
}

/// Whose rights a job runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The UID.
    pub uid: u32,
    /// The primary GID.
    pub gid: u32,
    /// The supplementary groups.
    pub groups: Vec<u32>,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Job {
    /// A pseudo-terminal of the machine, and what runs on it.
    Open {
        /// `tty`, `login` or `shell`.
        mode: OpenMode,
        /// `shell`: the user inside.
        user: String,
        /// `shell`: the program (none: the user's login shell).
        path: Option<String>,
        /// `shell`: its `argv`, from `argv[0]` (none: as machined chooses).
        args: Option<Vec<String>>,
        /// `shell`: environment to add, `KEY=VALUE` each.
        environment: Vec<String>,
    },
    /// A file or tree copied between the machine and the host; the registry hanging up
    /// cancels it.
    Copy {
        /// Into the machine (`CopyTo`), else out of it (`CopyFrom`).
        to_machine: bool,
        /// The absolute source path (on the side it comes from).
        source: String,
        /// The absolute destination path (on the other side).
        destination: String,
        /// Replace an existing destination.
        replace: bool,
    },
    /// A change to an image of the pool, under systemd-nspawn's locks (in `lock_dir`).
    Image {
        /// The change.
        change: ImageChange,
        /// systemd-nspawn's global lock directory.
        lock_dir: String,
    },
    /// A host file or directory mounted into the machine.
    BindMount {
        /// The absolute host path.
        source: String,
        /// The absolute path inside the machine.
        destination: String,
        /// Read-only.
        read_only: bool,
        /// Make a missing mount point.
        mkdir: bool,
    },
}

/// A change to an image (paths decided by the registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "what")]
pub enum ImageChange {
    /// Remove the image and its settings files.
    Remove {
        /// The image.
        path: String,
        /// Its settings files.
        settings: Vec<String>,
    },
    /// Rename the image and its settings files.
    Rename {
        /// The image.
        path: String,
        /// Its new path.
        new_path: String,
        /// Its settings files, old and new path.
        settings: Vec<(String, String)>,
    },
    /// Make the image read-only or writable (the immutable flag; write permission for raw
    /// files).
    SetReadOnly {
        /// The image.
        path: String,
        /// Whether it is a raw file.
        raw: bool,
        /// Read-only or not.
        read_only: bool,
    },
    /// Copy the image (reflinks where possible) under a new name, with its settings files.
    Clone {
        /// The image.
        source: String,
        /// The copy's path.
        destination: String,
        /// Whether it is a raw file.
        raw: bool,
        /// Whether the copy is read-only.
        read_only: bool,
        /// Its settings files, and where their copies go.
        settings: Vec<(String, String)>,
    },
}

/// The helper's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum HelperReply {
    /// Done; for `Open`, the pty's master is the one passed descriptor.
    Done {
        /// `Open`: the pty's path inside the machine.
        pty_path: Option<String>,
    },
    /// Failed.
    Failed(HelperFailure),
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "error")]
pub enum HelperFailure {
    /// The user is not in the machine's `/etc/passwd`.
    NoSuchUser,
    /// The machine has nothing to show a login prompt with.
    NoLogin,
    /// A system call failed.
    System {
        /// Its errno.
        errno: i32,
        /// What was being done.
        doing: String,
    },
}
