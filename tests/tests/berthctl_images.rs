//! `berthctl`'s image verbs against the real registry and a pool in a temporary directory
//! (the test-only `BERTH_IMAGE_PATH`): what they print, what they change, their errors.

use std::fs;
use std::path::Path;

use berth_tests::berthctl::{berthctl, berthctl_code};
use berth_tests::daemon::{Options, Registry};
use berth_tests::require;

fn exit_code(registry: &Registry, args: &[&str]) -> i32 {
    berthctl_code(registry, args).0
}

fn pool(dir: &Path) -> Registry {
    let etc = dir.join("debian/etc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("os-release"),
        "ID=debian\nPRETTY_NAME=\"Debian Test\"\n",
    )
    .unwrap();
    fs::write(etc.join("hostname"), "deb\n").unwrap();
    fs::create_dir(dir.join(".hidden")).unwrap();
    fs::write(dir.join("disk.raw"), vec![0u8; 3 * 1024 * 1024]).unwrap();
    Registry::with(Options {
        cgroup: false,
        env: vec![("BERTH_IMAGE_PATH".into(), dir.to_str().unwrap().into())],
        ..Options::default()
    })
}

#[test]
fn list_images_and_image_status_show_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let registry = pool(dir.path());
    let list = berthctl(&registry, &["list-images"]);
    assert!(list.success, "{list:?}");
    assert!(list.stdout.starts_with("NAME"), "{list:?}");
    assert!(
        list.stdout.contains("debian") && list.stdout.contains("raw"),
        "{list:?}"
    );
    assert!(list.stdout.contains("3.0M"), "{list:?}");
    assert!(!list.stdout.contains(".hidden"), "{list:?}");
    let all = berthctl(&registry, &["list-images", "--all", "--no-legend"]);
    assert!(
        all.stdout.contains(".hidden") && !all.stdout.contains("NAME"),
        "{all:?}"
    );

    let status = berthctl(&registry, &["image-status", "debian"]);
    assert!(status.success, "{status:?}");
    assert!(status.stdout.contains("Hostname: deb"), "{status:?}");
    assert!(status.stdout.contains("OS: Debian Test"), "{status:?}");
    assert!(status.stdout.contains("RO: writable"), "{status:?}");
    assert_eq!(exit_code(&registry, &["image-status", "nope"]), 4);
}

#[test]
fn clone_rename_read_only_remove_and_clean() {
    if !require::root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = pool(dir.path());
    let ok = |args: &[&str]| {
        let ran = berthctl(&registry, args);
        assert!(ran.success, "{args:?}: {ran:?}");
        ran
    };
    ok(&["clone", "debian", "copy"]);
    assert!(dir.path().join("copy/etc/os-release").exists());
    ok(&["rename", "copy", "renamed"]);
    assert!(dir.path().join("renamed").exists() && !dir.path().join("copy").exists());
    ok(&["read-only", "renamed"]);
    assert!(
        ok(&["image-status", "renamed"])
            .stdout
            .contains("RO: read-only")
    );
    ok(&["read-only", "renamed", "false"]);
    assert!(
        ok(&["image-status", "renamed"])
            .stdout
            .contains("RO: writable")
    );
    ok(&["remove", "renamed"]);
    assert!(!dir.path().join("renamed").exists());

    let cleaned = ok(&["clean"]);
    assert_eq!(cleaned.stdout, "Removed image '.hidden'.\n");
    let cleaned = ok(&["clean", "--all"]);
    assert!(
        cleaned.stdout.contains("Removed image 'debian'"),
        "{cleaned:?}"
    );
    assert!(
        cleaned.stdout.contains("Removed image 'disk' (3.0M freed)"),
        "{cleaned:?}"
    );

    let limit = berthctl(&registry, &["set-limit", "1000000"]);
    assert!(
        !limit.success && limit.stderr.contains("NotSupported"),
        "{limit:?}"
    );
    assert_eq!(exit_code(&registry, &["remove", "nope"]), 4);
    assert_eq!(exit_code(&registry, &["set-limit", "many"]), 1);
}
