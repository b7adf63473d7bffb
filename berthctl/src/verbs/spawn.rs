//! `spawn NAME -- PROGRAM…`: runs PROGRAM as the payload of a new machine under `supervise`,
//! which registers it; `berthctl` becomes `supervise` (and so returns the payload's status).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::cli::Scope;
use crate::client;
use crate::error::{Error, Result};

/// Replaces this process with `supervise --name NAME … -- PROGRAM…`.
///
/// # Errors
/// `supervise` could not be started.
pub fn spawn(scope: &Scope, name: &str, program: &[OsString]) -> Result<()> {
    let mut command = Command::new(supervise());
    command.arg("--name").arg(name);
    if scope.user {
        command.arg("--user");
    }
    if scope.runtime_dir.is_some() {
        let runtime = client::runtime_dir(scope);
        command
            .arg("--registry")
            .arg(client::registry_socket(scope))
            .arg("--control-socket")
            .arg(runtime.join(format!("berth/supervise/{name}.sock")));
    }
    command.arg("--").args(program);
    Err(Error::local("Starting supervise")(command.exec()))
}

/// `supervise` next to `berthctl` (as installed, and in a build tree), else from `$PATH`.
fn supervise() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|me| Some(me.parent()?.join("supervise")))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("supervise"))
}
