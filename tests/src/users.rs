//! Running programs as other users.

use std::ffi::OsStr;
use std::process::Command;

/// `nobody`.
pub const NOBODY: u32 = 65534;

/// `program` run with `setpriv` as UID and GID `uid`, without supplementary groups.
pub fn as_user(uid: u32, program: impl AsRef<OsStr>) -> Command {
    let id = uid.to_string();
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", &id, "--regid", &id, "--clear-groups", "--"])
        .arg(program);
    command
}
