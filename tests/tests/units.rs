//! The systemd units in `dist/systemd/` pass `systemd-analyze verify` (the host's systemd and
//! systemd 257), and their `systemd-analyze security` exposure scores, printed here, stay
//! within the goals: at most 3.0 for the registry, at most 1.5 for the userdb bridge.
//!
//! The scores are systemd 257's (`systemd-analyze` from the trixie chroot of
//! `scripts/setup-test-deps.sh`, run through `t257`, `--offline=true`): its analyzer weighs a
//! few settings differently from 252's, which scores each unit 0.1 higher. Whether the
//! hardened units actually work is `pid1.rs`'s question: it runs them under systemd 257 as
//! PID 1.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::clients::run;
use berth_tests::require;

/// systemd 257's analyzer, run on the host through the chroot's loader.
const T257: &str = "/usr/local/bin/t257";
const ANALYZE_257: &str = "/opt/trixie/usr/bin/systemd-analyze";

/// The placeholder the unit templates (`*.service.in`) have for the service binaries'
/// directory; `scripts/install` puts `$PREFIX/libexec/berth` there.
const LIBEXECDIR: &str = "@libexecdir@";

/// The highest exposure each system service may have (systemd 257's score).
const GOALS: &[(&str, f64)] = &[
    ("berth-machine-registry.service", 3.0),
    ("berth-userdb-bridge.service", 1.5),
];

/// The units of `dir` (templates and sockets), as `(installed name, file)`.
fn units(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut units: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let installed = name.strip_suffix(".in").unwrap_or(name);
            (installed.ends_with(".service") || installed.ends_with(".socket"))
                .then(|| (installed.to_owned(), path.clone()))
        })
        .collect();
    units.sort();
    units
}

/// Copies the units of `dir` into `into` with the built binaries' directory in `ExecStart=`.
fn instantiate(dir: &Path, into: &Path) -> Vec<PathBuf> {
    let built = berth_tests::workspace_binary("berth-machine-registry");
    let built_dir = built.parent().unwrap().display().to_string();
    let copies: Vec<PathBuf> = units(dir)
        .into_iter()
        .map(|(name, unit)| {
            let text = std::fs::read_to_string(&unit)
                .unwrap()
                .replace(LIBEXECDIR, &built_dir);
            assert!(!text.contains("dir@"), "{name}: a placeholder is left");
            let copy = into.join(name);
            std::fs::write(&copy, text).unwrap();
            copy
        })
        .collect();
    assert!(!copies.is_empty(), "no units in {}", dir.display());
    copies
}

/// `systemd-analyze` of the host, or systemd 257's.
fn analyze(systemd257: bool) -> Command {
    if systemd257 {
        let mut command = Command::new(T257);
        command.arg(ANALYZE_257);
        command
    } else {
        Command::new("systemd-analyze")
    }
}

fn verify(units: &[PathBuf], user: bool, systemd257: bool, runtime: &Path) {
    let mut command = analyze(systemd257);
    if user {
        command.arg("--user");
    }
    // The man pages named in Documentation= are installed by scripts/install, not here.
    let out = run(command
        .args(["verify", "--man=no"])
        .args(units)
        .env("XDG_RUNTIME_DIR", runtime));
    assert!(out.success && out.stderr.trim().is_empty(), "{out:?}");
}

/// The overall exposure `systemd-analyze security` gives `unit`.
fn exposure(unit: &Path, user: bool, runtime: &Path) -> f64 {
    let mut command = analyze(true);
    if user {
        command.arg("--user");
    }
    let out = run(command
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .env("XDG_RUNTIME_DIR", runtime));
    assert!(out.success, "{out:?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall score: {out:?}"));
    let score = line.rsplit(':').next().unwrap().split_whitespace().next();
    score.and_then(|s| s.parse().ok()).expect("a score")
}

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd")
}

#[test]
fn system_and_user_units_verify() {
    if !require::program("systemd-analyze") {
        return;
    }
    let copies = tempfile::tempdir().unwrap();
    let (system, user) = (copies.path().join("system"), copies.path().join("user"));
    std::fs::create_dir_all(&system).unwrap();
    std::fs::create_dir_all(&user).unwrap();
    let system_units = instantiate(&dist(), &system);
    let user_units = instantiate(&dist().join("user"), &user);
    verify(&system_units, false, false, copies.path());
    verify(&user_units, true, false, copies.path());
    if require::program(T257) && require::program(ANALYZE_257) {
        verify(&system_units, false, true, copies.path());
        verify(&user_units, true, true, copies.path());
    }
}

#[test]
fn services_are_hardened_within_their_goals() {
    if !require::program(T257) || !require::program(ANALYZE_257) {
        return;
    }
    let copies = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for copy in instantiate(&dist(), copies.path()) {
        let name = copy.file_name().unwrap().to_string_lossy().into_owned();
        let Some(&(_, goal)) = GOALS.iter().find(|(unit, _)| *unit == name) else {
            continue;
        };
        let score = exposure(&copy, false, copies.path());
        println!("{name}: exposure {score:.1} (goal: at most {goal:.1}; systemd-analyze 257)");
        if score > goal {
            failed.push(format!("{name}: {score:.1} > {goal:.1}"));
        }
    }
    let user = copies.path().join("user");
    std::fs::create_dir_all(&user).unwrap();
    for copy in instantiate(&dist().join("user"), &user) {
        if copy.extension().is_some_and(|e| e == "service") {
            let score = exposure(&copy, true, copies.path());
            let name = copy.file_name().unwrap().to_string_lossy();
            println!("user {name}: exposure {score:.1} (scored as if it ran as root; no goal)");
        }
    }
    assert!(failed.is_empty(), "above the goal: {failed:?}");
}
