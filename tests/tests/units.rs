//! The systemd units in `dist/systemd/` pass `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::clients::run;
use berth_tests::require;

/// The installed binary path the units name, replaced by the built one for verification.
const INSTALLED: &str = "/usr/libexec/berth/";

fn units(dir: &Path) -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "socket")
        })
        .collect();
    units.sort();
    units
}

/// Copies the units of `dir` with `ExecStart=` pointing at the built binaries and verifies them.
fn verify(dir: &Path, user: bool) {
    let copies = tempfile::tempdir().unwrap();
    let built = berth_tests::workspace_binary("berth-machine-registry");
    let built_dir = format!("{}/", built.parent().unwrap().display());
    let mut copied = Vec::new();
    for unit in units(dir) {
        let text = std::fs::read_to_string(&unit)
            .unwrap()
            .replace(INSTALLED, &built_dir);
        let copy = copies.path().join(unit.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        copied.push(copy);
    }
    assert!(!copied.is_empty(), "no units in {}", dir.display());
    let mut command = Command::new("systemd-analyze");
    if user {
        command.arg("--user");
    }
    let out = run(command
        .arg("verify")
        .args(&copied)
        .env("XDG_RUNTIME_DIR", copies.path()));
    assert!(out.success && out.stderr.trim().is_empty(), "{out:?}");
}

#[test]
fn system_and_user_units_verify() {
    if !require::program("systemd-analyze") {
        return;
    }
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd");
    verify(&dist, false);
    verify(&dist.join("user"), true);
}
