//! Running programs as other users.

use std::ffi::OsStr;
use std::process::Command;

/// `nobody`.
pub const NOBODY: u32 = 65534;

/// The command line prefix that runs a program as UID and GID `uid`, without supplementary
/// groups (`setpriv …  --`).
pub fn prefix(uid: u32) -> Vec<String> {
    let id = uid.to_string();
    [
        "setpriv",
        "--reuid",
        &id,
        "--regid",
        &id,
        "--clear-groups",
        "--",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `program` run as UID and GID `uid`, without supplementary groups.
pub fn as_user(uid: u32, program: impl AsRef<OsStr>) -> Command {
    let prefix = prefix(uid);
    let mut command = Command::new(&prefix[0]);
    command.args(&prefix[1..]).arg(program);
    command
}
