//! `scripts/install` puts Berth where a distribution would below `DESTDIR`, and
//! `scripts/uninstall` takes exactly that away again.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::clients::run;

/// What an install with the default `PREFIX` (`/usr/local`) puts below `DESTDIR`.
const INSTALLED: &[(&str, u32)] = &[
    ("usr/local/bin/supervise", 0o755),
    ("usr/local/bin/berthctl", 0o755),
    ("usr/local/share/man/man1/berthctl.1", 0o644),
    (
        "usr/local/share/bash-completion/completions/berthctl",
        0o644,
    ),
    ("usr/local/share/zsh/site-functions/_berthctl", 0o644),
    (
        "usr/local/share/fish/vendor_completions.d/berthctl.fish",
        0o644,
    ),
    ("usr/local/libexec/berth/berth-machine-registry", 0o755),
    ("usr/local/libexec/berth/berth-userdb-bridge", 0o755),
    ("usr/local/libexec/berth/berth-machine-helper", 0o755),
    (
        "usr/local/lib/systemd/system/berth-machine-helper.socket",
        0o644,
    ),
    (
        "usr/local/lib/systemd/system/berth-machine-helper@.service",
        0o644,
    ),
    (
        "usr/local/lib/systemd/user/berth-machine-helper.socket",
        0o644,
    ),
    (
        "usr/local/lib/systemd/user/berth-machine-helper@.service",
        0o644,
    ),
    (
        "usr/local/lib/x86_64-linux-gnu/libnss_mymachines.so.2",
        0o644,
    ),
    (
        "usr/local/lib/systemd/system/berth-machine-registry.service",
        0o644,
    ),
    (
        "usr/local/lib/systemd/system/berth-machine-registry.socket",
        0o644,
    ),
    (
        "usr/local/lib/systemd/system/berth-machine-registry-resolve-hook.socket",
        0o644,
    ),
    (
        "usr/local/lib/systemd/system/berth-userdb-bridge.service",
        0o644,
    ),
    (
        "usr/local/lib/systemd/system/berth-userdb-bridge.socket",
        0o644,
    ),
    (
        "usr/local/lib/systemd/user/berth-machine-registry.service",
        0o644,
    ),
    (
        "usr/local/lib/systemd/user/berth-machine-registry.socket",
        0o644,
    ),
    ("usr/local/share/man/man8/berth-machine-registry.8", 0o644),
    ("usr/local/share/man/man8/berth-userdb-bridge.8", 0o644),
    ("usr/local/share/man/man1/supervise.1", 0o644),
    (
        "usr/local/share/bash-completion/completions/berth-machine-registry",
        0o644,
    ),
    (
        "usr/local/share/bash-completion/completions/berth-userdb-bridge",
        0o644,
    ),
    (
        "usr/local/share/bash-completion/completions/supervise",
        0o644,
    ),
    (
        "usr/local/share/zsh/site-functions/_berth-machine-registry",
        0o644,
    ),
    (
        "usr/local/share/zsh/site-functions/_berth-userdb-bridge",
        0o644,
    ),
    ("usr/local/share/zsh/site-functions/_supervise", 0o644),
    (
        "usr/local/share/fish/vendor_completions.d/berth-machine-registry.fish",
        0o644,
    ),
    (
        "usr/local/share/fish/vendor_completions.d/berth-userdb-bridge.fish",
        0o644,
    ),
    (
        "usr/local/share/fish/vendor_completions.d/supervise.fish",
        0o644,
    ),
    ("usr/local/share/berth/install-manifest", 0o644),
];

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// `scripts/NAME` over the binaries this test run was built with (no build of its own).
fn install_step(name: &str, destdir: &Path) -> Command {
    let built = berth_tests::workspace_binary("berth-xtask");
    let profile_dir = built.parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    };
    let mut command = Command::new(script(name));
    command
        .arg("--no-build")
        .env("DESTDIR", destdir)
        .env("PROFILE", profile)
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .env_remove("PREFIX");
    if name == "uninstall" {
        command.env_remove("PROFILE");
    }
    command
}

/// Every file and directory below `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            found.insert(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found
}

#[test]
fn install_places_everything_and_uninstall_removes_exactly_that() {
    if std::env::consts::ARCH != "x86_64" || !berth_tests::require::program("gcc") {
        return; // the multiarch directory below is x86_64's, as gcc names it
    }
    let destdir = tempfile::tempdir().unwrap();
    let root = destdir.path();
    // Something of someone else's in a directory Berth shares: it stays.
    let other = root.join("usr/local/share/man/man1/other.1");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(&other, "").unwrap();
    let before = tree(root);

    let out = run(&mut install_step("install", root));
    assert!(out.success, "{out:?}");
    let files: BTreeSet<String> = tree(root)
        .into_iter()
        .filter(|p| root.join(p).is_file())
        .collect();
    let expected: BTreeSet<String> = INSTALLED
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .chain(["usr/local/share/man/man1/other.1".to_owned()])
        .collect();
    assert_eq!(files, expected);
    for (path, mode) in INSTALLED {
        let meta = std::fs::metadata(root.join(path)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, *mode, "{path}");
    }
    let registry = std::fs::read_to_string(
        root.join("usr/local/lib/systemd/system/berth-machine-registry.service"),
    )
    .unwrap();
    assert!(
        registry.contains("ExecStart=/usr/local/libexec/berth/berth-machine-registry\n"),
        "{registry}"
    );
    let page = std::fs::read_to_string(root.join("usr/local/share/man/man1/supervise.1")).unwrap();
    assert!(page.contains("tie\\-to\\-stdin"), "{page}");
    let manifest =
        std::fs::read_to_string(root.join("usr/local/share/berth/install-manifest")).unwrap();
    for (path, _) in INSTALLED {
        assert!(
            manifest.contains(&format!("f /{path}\n")),
            "{path}: {manifest}"
        );
    }

    // Installing again over it changes nothing, and one uninstall still takes it all away.
    let out = run(&mut install_step("install", root));
    assert!(out.success, "{out:?}");
    let out = run(&mut install_step("uninstall", root));
    assert!(out.success, "{out:?}");
    assert_eq!(tree(root), before);
}
