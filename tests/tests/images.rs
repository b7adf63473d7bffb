//! `io.systemd.MachineImage`: an image pool built in a temporary directory (the test-only
//! `BERTH_IMAGE_PATH`), driven with `varlinkctl` 257, raw calls and the typed proxy: discovery of every type
//! the sandbox can make, metadata, rename/read-only/clone/remove with settings files, locks
//! held by a running container, images in use, `CleanPool`, a full disk, every error.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_interfaces::client::ImageProxy;
use berth_interfaces::image::{
    AcquireMetadata, CleanPoolMode, CleanPoolRequest, CloneRequest, ImageError, ImageListRequest,
    RemoveRequest,
};
use berth_tests::clients::{RawClient, Run, varlinkctl_call, varlinkctl_call_as};
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::Proc;
use berth_tests::require;
use berth_tests::users::NOBODY;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A pool: `debian` (a tree with metadata and a settings file), `.hidden`, `disk.raw`,
/// `frozen` (immutable), and a registry serving it.
struct Pool {
    dir: TempDir,
    registry: Registry,
}

fn tree(root: &Path, id: &str) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/os-release"),
        format!("ID={id}\nNAME=\"Test {id}\"\n"),
    )
    .unwrap();
    fs::write(root.join("etc/hostname"), format!("{id}-host\n")).unwrap();
    fs::write(
        root.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/machine-info"),
        "PRETTY_HOSTNAME=\"Pretty\"\n",
    )
    .unwrap();
}

impl Pool {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(tune: impl FnOnce(&mut Options)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir.path();
        tree(&pool.join("debian"), "debian");
        fs::write(pool.join("debian.nspawn"), "[Exec]\nBoot=yes\n").unwrap();
        fs::create_dir(pool.join(".hidden")).unwrap();
        fs::write(pool.join("disk.raw"), vec![1u8; 64 * 1024]).unwrap();
        tree(&pool.join("frozen"), "frozen");
        let mut options = Options {
            cgroup: false,
            env: vec![("BERTH_IMAGE_PATH".into(), pool.to_str().unwrap().into())],
            ..Options::default()
        };
        tune(&mut options);
        let registry = Registry::with(options);
        Self { dir, registry }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn call(&self, method: &str, parameters: Value) -> Value {
        RawClient::connect(&self.registry.socket())
            .method(&format!("io.systemd.MachineImage.{method}"), parameters)
    }

    fn varlinkctl(&self, method: &str, parameters: &Value, more: bool) -> Run {
        let method = format!("io.systemd.MachineImage.{method}");
        varlinkctl_call(
            &self.registry.socket(),
            &method,
            &parameters.to_string(),
            more,
        )
    }

    fn names(&self) -> Vec<String> {
        let listed = self.varlinkctl("List", &json!({}), true);
        assert!(listed.success, "{listed:?}");
        listed
            .json_lines()
            .iter()
            .map(|image| image["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn error(reply: &Value) -> &str {
    reply["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

fn chattr(flag: &str, path: &Path) -> bool {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_image_is_listed_with_its_type_and_flags() {
    if !require::varlinkctl() {
        return;
    }
    let pool = Pool::new();
    let immutable = require::root() && chattr("+i", &pool.path("frozen"));
    let listed = pool.varlinkctl("List", &json!({}), true);
    assert!(listed.success, "{listed:?}");
    let images = listed.json_lines();
    let by_name = |name: &str| {
        images
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {images:?}"))
    };
    assert_eq!(images[0]["name"], ".host");
    assert_eq!(by_name(".host")["readOnly"], true);
    let debian = by_name("debian");
    assert_eq!(
        (debian["type"].as_str(), debian["class"].as_str()),
        (Some("directory"), Some("machine"))
    );
    assert_eq!(debian["readOnly"], false);
    assert!(debian["modificationTimestamp"].as_u64().unwrap() > 0);
    assert!(debian.get("OSRelease").is_none());
    let disk = by_name("disk");
    assert_eq!(disk["type"], "raw");
    assert_eq!(disk["limit"], 64 * 1024);
    by_name(".hidden");
    assert!(!images.iter().any(|i| i["name"] == "debian.nspawn"));
    if immutable {
        assert_eq!(by_name("frozen")["readOnly"], true);
        chattr("-i", &pool.path("frozen"));
    }
    // A raw file without write permission is read-only.
    fs::set_permissions(pool.path("disk.raw"), fs::Permissions::from_mode(0o444)).unwrap();
    assert_eq!(
        pool.call("List", json!({"name": "disk"}))["parameters"]["readOnly"],
        true
    );
}

#[test]
fn metadata_comes_from_inside_the_image() {
    let pool = Pool::new();
    let reply = pool.call("List", json!({"name": "debian", "acquireMetadata": "yes"}));
    let debian = &reply["parameters"];
    assert_eq!(debian["hostname"], "debian-host", "{reply}");
    assert_eq!(debian["machineId"], "0123456789abcdef0123456789abcdef");
    assert_eq!(debian["machineInfo"], json!(["PRETTY_HOSTNAME=Pretty"]));
    assert_eq!(
        debian["OSRelease"],
        json!(["ID=debian", "NAME=Test debian"])
    );
    // A symlink in the image resolves inside it, never to the host's file.
    fs::remove_file(pool.path("debian/etc/os-release")).unwrap();
    std::os::unix::fs::symlink("/etc/os-release", pool.path("debian/etc/os-release")).unwrap();
    let reply = pool.call(
        "List",
        json!({"name": "debian", "acquireMetadata": "graceful"}),
    );
    assert!(reply["parameters"].get("OSRelease").is_none(), "{reply}");
    // Raw images are not opened: no metadata.
    let raw = pool.call("List", json!({"name": "disk", "acquireMetadata": "yes"}));
    assert_eq!(error(&raw), "io.systemd.MachineImage.NotSupported");
    let raw = pool.call(
        "List",
        json!({"name": "disk", "acquireMetadata": "graceful"}),
    );
    assert!(raw["parameters"].get("OSRelease").is_none());
}

#[test]
fn rename_and_read_only_carry_settings_files_along() {
    if !require::root() {
        return;
    }
    let pool = Pool::new();
    let renamed = pool.call("Update", json!({"name": "debian", "newName": "trixie"}));
    assert_eq!(renamed, json!({"parameters": {}}));
    assert!(pool.path("trixie/etc/os-release").exists() && !pool.path("debian").exists());
    assert!(pool.path("trixie.nspawn").exists() && !pool.path("debian.nspawn").exists());
    let renamed = pool.call("Update", json!({"name": "disk", "newName": "disk2"}));
    assert_eq!(renamed, json!({"parameters": {}}));
    assert!(pool.path("disk2.raw").exists());

    if chattr("+i", &pool.path(".hidden")) {
        chattr("-i", &pool.path(".hidden"));
        let read_only = pool.call("Update", json!({"name": "trixie", "readOnly": true}));
        assert_eq!(read_only, json!({"parameters": {}}));
        assert_eq!(
            pool.call("List", json!({"name": "trixie"}))["parameters"]["readOnly"],
            true
        );
        assert!(fs::write(pool.path("trixie/new"), "x").is_err());
        pool.call("Update", json!({"name": "trixie", "readOnly": false}));
        assert_eq!(
            pool.call("List", json!({"name": "trixie"}))["parameters"]["readOnly"],
            false
        );
    }
    pool.call("Update", json!({"name": "disk2", "readOnly": true}));
    assert_eq!(
        fs::metadata(pool.path("disk2.raw")).unwrap().mode() & 0o222,
        0
    );
    pool.call("Update", json!({"name": "disk2", "readOnly": false}));
    assert_ne!(
        fs::metadata(pool.path("disk2.raw")).unwrap().mode() & 0o200,
        0
    );
}

#[test]
fn clones_are_whole_and_removal_takes_settings_along() {
    if !require::root() {
        return;
    }
    let pool = Pool::new();
    let cloned = pool.call(
        "Clone",
        json!({"name": "debian", "newName": "copy", "readOnly": false}),
    );
    assert_eq!(cloned, json!({"parameters": {}}));
    assert_eq!(
        fs::read(pool.path("copy/etc/os-release")).unwrap(),
        fs::read(pool.path("debian/etc/os-release")).unwrap()
    );
    assert!(pool.path("copy.nspawn").exists());
    // The clone's progress is in the registry's log (the helper's lines).
    let log = pool.registry.log();
    assert!(log.contains("Cloning an image"), "{log}");
    assert!(log.contains("entries") && log.contains("MiB done"), "{log}");
    let cloned = pool.call("Clone", json!({"name": "disk", "newName": "disk-copy"}));
    assert_eq!(cloned, json!({"parameters": {}}));
    assert_eq!(
        fs::read(pool.path("disk-copy.raw")).unwrap(),
        vec![1u8; 64 * 1024]
    );
    let exists = pool.call("Clone", json!({"name": "debian", "newName": "copy"}));
    assert_eq!(error(&exists), "io.systemd.System", "{exists}");

    let removed = pool.call("Remove", json!({"name": "copy"}));
    assert_eq!(removed, json!({"parameters": {}}));
    assert!(!pool.path("copy").exists() && !pool.path("copy.nspawn").exists());
    let host = pool.call("Remove", json!({"name": ".host"}));
    assert_eq!(error(&host), "io.systemd.System");
    assert_eq!(host["parameters"]["errno"], libc::EROFS);
    let leftovers = fs::read_dir(pool.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".#berth")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_clone_that_fills_the_disk_leaves_nothing() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let small = tempfile::tempdir().unwrap();
    let pool = Pool::with(|options| {
        let search = format!("{}:{}", small.path().display(), options.env[0].1);
        options.env = vec![("BERTH_IMAGE_PATH".into(), search)];
        options.tmpfs_at = Some((small.path().to_owned(), "256k".into()));
    });
    fs::write(pool.path("debian/big"), vec![7u8; 1024 * 1024]).unwrap();
    let full = pool.call("Clone", json!({"name": "debian", "newName": "big-copy"}));
    assert_eq!(error(&full), "io.systemd.System", "{full}");
    assert_eq!(full["parameters"]["errno"], libc::ENOSPC);
    assert!(!pool.names().contains(&"big-copy".to_owned()));
}

#[test]
fn locked_and_used_images_are_not_removed_or_renamed() {
    if !require::root() {
        return;
    }
    let pool = Pool::new();
    // A running container holds nspawn's lock on the image's inode.
    let stat = fs::metadata(pool.path("debian")).unwrap();
    let locks = pool.registry.runtime_dir().join("systemd/nspawn/locks");
    fs::create_dir_all(&locks).unwrap();
    let lock =
        fs::File::create(locks.join(format!("inode-{}:{}", stat.dev(), stat.ino()))).unwrap();
    rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::LockShared).unwrap();
    for (method, parameters) in [
        ("Remove", json!({"name": "debian"})),
        ("Update", json!({"name": "debian", "newName": "other"})),
    ] {
        let busy = pool.call(method, parameters);
        assert_eq!(busy["parameters"]["errno"], libc::EBUSY, "{method}: {busy}");
    }
    drop(lock);
    assert!(pool.path("debian").exists());

    // A registered machine runs from it.
    let leader = Proc::sleeper();
    let register = json!({
        "name": "user-of-disk", "class": "container", "leader": leader.pid(),
        "rootDirectory": pool.path("disk.raw"),
    });
    let reply =
        RawClient::connect(&pool.registry.socket()).method("io.systemd.Machine.Register", register);
    assert!(reply.get("error").is_none(), "{reply}");
    let busy = pool.call("Remove", json!({"name": "disk"}));
    assert_eq!(busy["parameters"]["errno"], libc::EBUSY, "{busy}");
    assert!(pool.path("disk.raw").exists());
}

#[test]
fn clean_pool_removes_hidden_then_all_unused_images() {
    if !(require::root() && require::varlinkctl()) {
        return;
    }
    let pool = Pool::new();
    let hidden = pool.varlinkctl("CleanPool", &json!({"mode": "hidden"}), true);
    assert!(hidden.success, "{hidden:?}");
    let removed: Vec<Value> = hidden.json_lines();
    assert_eq!(removed, [json!({"name": ".hidden"})]);
    assert!(!pool.path(".hidden").exists());

    let leader = Proc::sleeper();
    let register = json!({
        "name": "uses-debian", "class": "container", "leader": leader.pid(),
        "rootDirectory": pool.path("debian"),
    });
    RawClient::connect(&pool.registry.socket()).method("io.systemd.Machine.Register", register);
    let all = pool.varlinkctl("CleanPool", &json!({"mode": "all"}), true);
    assert!(all.success, "{all:?}");
    let names: Vec<String> = all
        .json_lines()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["disk", "frozen"]);
    assert_eq!(pool.names(), [".host", "debian"]);
    let no_more = pool.call("CleanPool", json!({"mode": "all"}));
    assert_eq!(error(&no_more), "org.varlink.service.ExpectedMore");
}

#[test]
fn errors_are_machineds() {
    if !(require::root() && require::varlinkctl() && require::program("setpriv")) {
        return;
    }
    let pool = Pool::new();
    let cases = [
        (
            "List",
            json!({"name": "nope"}),
            "io.systemd.MachineImage.NoSuchImage",
        ),
        (
            "List",
            json!({"name": "a/b"}),
            "org.varlink.service.InvalidParameter",
        ),
        ("List", json!({}), "org.varlink.service.ExpectedMore"),
        (
            "Remove",
            json!({"name": "nope"}),
            "io.systemd.MachineImage.NoSuchImage",
        ),
        (
            "Update",
            json!({"name": "debian", "newName": ".#x"}),
            "org.varlink.service.InvalidParameter",
        ),
        (
            "Update",
            json!({"name": "debian", "limit": -1}),
            "org.varlink.service.InvalidParameter",
        ),
        (
            "Update",
            json!({"name": "debian", "limit": 1000000}),
            "io.systemd.MachineImage.NotSupported",
        ),
        (
            "Clone",
            json!({"name": "debian", "newName": "a/b"}),
            "org.varlink.service.InvalidParameter",
        ),
        (
            "SetPoolLimit",
            json!({"limit": 1000000}),
            "io.systemd.MachineImage.NotSupported",
        ),
        (
            "SetPoolLimit",
            json!({"limit": -5}),
            "org.varlink.service.InvalidParameter",
        ),
    ];
    for (method, parameters, expected) in cases {
        let run = pool.varlinkctl(method, &parameters, false);
        assert!(
            run.stderr.contains(expected),
            "{method} {parameters}: {run:?}"
        );
    }
    let invalid = pool.call("Update", json!({"name": "debian", "newName": ".#x"}));
    assert_eq!(invalid["parameters"]["parameter"], "newName");
    let invalid = pool.call("Update", json!({"name": "debian", "limit": -1}));
    assert_eq!(invalid["parameters"]["parameter"], "limit");

    // Others may list, not change.
    let socket = pool.registry.socket();
    let listed = varlinkctl_call_as(
        NOBODY,
        &socket,
        "io.systemd.MachineImage.List",
        r#"{"name":"debian"}"#,
    );
    assert!(listed.success, "{listed:?}");
    for (method, parameters) in [
        ("Remove", r#"{"name":"debian"}"#),
        ("Clone", r#"{"name":"debian","newName":"mine"}"#),
        ("Update", r#"{"name":"debian","readOnly":true}"#),
    ] {
        let method = format!("io.systemd.MachineImage.{method}");
        let denied = varlinkctl_call_as(NOBODY, &socket, &method, parameters);
        assert!(
            denied.stderr.contains("PermissionDenied"),
            "{method}: {denied:?}"
        );
    }
    assert!(pool.path("debian").exists());
    // The image interface's own socket answers too.
    let image_socket = socket.with_file_name("io.systemd.MachineImage");
    let run = varlinkctl_call(
        &image_socket,
        "io.systemd.MachineImage.List",
        r#"{"name":"debian"}"#,
        false,
    );
    assert!(run.success, "{run:?}");
}

#[tokio::test]
async fn the_typed_proxy_drives_the_pool() {
    if !require::root() {
        return;
    }
    let pool = Pool::new();
    let mut conn = pool.registry.connect().await;
    let all = conn
        .list_images(&ImageListRequest::default())
        .await
        .unwrap()
        .unwrap();
    assert!(
        all.iter()
            .any(|image| image.name == "debian" && image.kind == "directory")
    );
    let clone = CloneRequest {
        name: "debian".into(),
        new_name: "proxied".into(),
        read_only: Some(true),
        allow_interactive_authentication: None,
    };
    conn.clone_image(&clone).await.unwrap().unwrap();
    let request = ImageListRequest {
        name: Some("proxied".into()),
        acquire_metadata: Some(AcquireMetadata::Yes),
        ..ImageListRequest::default()
    };
    let proxied = conn.list_image(&request).await.unwrap().unwrap();
    assert_eq!(proxied.hostname.as_deref(), Some("debian-host"));
    let remove = RemoveRequest {
        name: "proxied".into(),
        allow_interactive_authentication: None,
    };
    conn.remove_image(&remove).await.unwrap().unwrap();
    let gone = conn.remove_image(&remove).await.unwrap();
    assert_eq!(gone.err(), Some(ImageError::NoSuchImage));
    let hidden = CleanPoolRequest {
        allow_interactive_authentication: None,
        mode: CleanPoolMode::Hidden,
    };
    let cleaned = conn.clean_pool(&hidden).await.unwrap().unwrap();
    assert_eq!(cleaned.len(), 1);
    assert_eq!(cleaned[0].name, ".hidden");
}

#[test]
fn a_user_manages_the_images_of_their_own_pool() {
    if !(require::root() && require::varlinkctl() && require::program("setpriv")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pool_dir = dir.path().join("machines");
    tree(&pool_dir.join("mine"), "mine");
    let status = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let registry = Registry::with(Options {
        user: true,
        cgroup: false,
        run_as: Some(NOBODY),
        env: vec![("BERTH_IMAGE_PATH".into(), pool_dir.to_str().unwrap().into())],
        ..Options::default()
    });
    let socket = registry.socket();
    let call = |method: &str, parameters: &str| {
        varlinkctl_call_as(
            NOBODY,
            &socket,
            &format!("io.systemd.MachineImage.{method}"),
            parameters,
        )
    };
    let cloned = call("Clone", r#"{"name":"mine","newName":"mine2"}"#);
    assert!(cloned.success, "{cloned:?}");
    let copy = fs::metadata(pool_dir.join("mine2/etc/os-release")).unwrap();
    assert_eq!(copy.uid(), NOBODY);
    let listed = call("List", r#"{"name":"mine2","acquireMetadata":"yes"}"#);
    assert!(listed.stdout.contains("ID=mine"), "{listed:?}");
    let removed = call("Remove", r#"{"name":"mine2"}"#);
    assert!(removed.success, "{removed:?}");
    assert!(!pool_dir.join("mine2").exists());
    // No .host image in user scope.
    let host = call("List", r#"{"name":".host"}"#);
    assert!(host.stderr.contains("NoSuchImage"), "{host:?}");
}

#[test]
fn a_versioned_image_is_its_newest_version() {
    if !require::root() {
        return;
    }
    let pool = Pool::new();
    let versions = pool.path("fedora.v");
    fs::create_dir(&versions).unwrap();
    for version in ["39", "40"] {
        fs::write(versions.join(format!("fedora_{version}.raw")), version).unwrap();
    }
    let listed = pool.call("List", json!({"name": "fedora"}));
    assert_eq!(listed["parameters"]["type"], "raw", "{listed}");
    assert_eq!(
        listed["parameters"]["path"],
        versions.join("fedora_40.raw").to_str().unwrap()
    );
    let removed = pool.call("Remove", json!({"name": "fedora"}));
    assert_eq!(error(&removed), "io.systemd.MachineImage.NotSupported");
    let cloned = pool.call("Clone", json!({"name": "fedora", "newName": "f40"}));
    assert_eq!(cloned, json!({"parameters": {}}));
    assert_eq!(fs::read_to_string(pool.path("f40.raw")).unwrap(), "40");
}
