//! Conditions some tests need: root, real clients.

use std::path::Path;

/// Where `real-clients-setup.sh` installs varlinkctl 257.
pub const VARLINKCTL: &str = "/usr/local/bin/varlinkctl";
/// The python varlink venv.
pub const PYTHON_VARLINK: &str = "/opt/varlink-py/bin/python";

/// `true` if the condition holds; otherwise prints a skip notice and returns `false`, or —
/// under `BERTH_TESTS_REQUIRE_ALL=1` — fails the test.
pub fn check(condition: bool, what: &str) -> bool {
    if condition {
        return true;
    }
    assert!(
        std::env::var_os("BERTH_TESTS_REQUIRE_ALL").is_none(),
        "required but missing: {what}"
    );
    eprintln!("SKIPPED: needs {what}");
    false
}

/// Root (for cgroups, other users, namespaces).
pub fn root() -> bool {
    check(rustix::process::geteuid().is_root(), "root")
}

/// systemd 257's varlinkctl.
pub fn varlinkctl() -> bool {
    check(
        Path::new(VARLINKCTL).exists(),
        "varlinkctl 257 (scripts/setup-test-deps.sh)",
    )
}

/// The python varlink package.
pub fn python_varlink() -> bool {
    check(
        Path::new(PYTHON_VARLINK).exists(),
        "python varlink (scripts/setup-test-deps.sh)",
    )
}

/// A program on `$PATH` or at an absolute path.
pub fn program(name: &str) -> bool {
    let found = if name.starts_with('/') {
        Path::new(name).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).exists()))
    };
    check(found, name)
}
