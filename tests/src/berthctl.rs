//! Running `berthctl` against a test registry.

use std::process::{Command, Stdio};

use crate::clients::{Run, run};
use crate::daemon::Registry;

/// `berthctl --runtime-dir DIR ARGS…` for `registry`, to be run.
pub fn berthctl_command(registry: &Registry, args: &[&str]) -> Command {
    let mut command = Command::new(crate::workspace_binary("berthctl"));
    command
        .arg("--runtime-dir")
        .arg(registry.runtime_dir())
        .args(args);
    command
}

/// `berthctl --runtime-dir DIR ARGS…` for `registry`, standard input closed.
pub fn berthctl(registry: &Registry, args: &[&str]) -> Run {
    run(berthctl_command(registry, args).stdin(Stdio::null()))
}

/// Its exit code and standard error.
pub fn berthctl_code(registry: &Registry, args: &[&str]) -> (i32, String) {
    let output = berthctl_command(registry, args)
        .output()
        .expect("berthctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}
