//! The image pool beside the real systemd-machined 257 (from the trixie chroot of
//! `scripts/setup-test-deps.sh`) on the same tree: both list the same images with the same
//! types, flags and metadata, and answer the same errors; a rename, a clone and a removal
//! leave the same tree.

use std::fs;
use std::path::Path;

use berth_tests::clients::{Run, varlinkctl_call};
use berth_tests::daemon::{Options, Registry};
use berth_tests::machined257::{self, Machined257};
use berth_tests::require;
use serde_json::{Value, json};

fn pool(dir: &Path) {
    let debian = dir.join("debian");
    fs::create_dir_all(debian.join("etc")).unwrap();
    fs::write(debian.join("etc/os-release"), "ID=debian\nVERSION_ID=13\n").unwrap();
    fs::write(debian.join("etc/hostname"), "deb\n").unwrap();
    fs::write(
        debian.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    fs::create_dir(dir.join(".hidden")).unwrap();
    fs::write(dir.join("disk.raw"), vec![0u8; 8192]).unwrap();
}

fn list(socket: &Path, parameters: Value, more: bool) -> Run {
    varlinkctl_call(
        socket,
        "io.systemd.MachineImage.List",
        &parameters.to_string(),
        more,
    )
}

/// The fields both must agree on, of every image but `.host`, by name.
fn comparable(run: &Run) -> Vec<Value> {
    assert!(run.success, "{run:?}");
    let mut images: Vec<Value> = run
        .json_lines()
        .into_iter()
        .filter(|image| image["name"] != ".host")
        .map(|image| {
            let mut kept = serde_json::Map::new();
            for key in [
                "name",
                "path",
                "type",
                "class",
                "readOnly",
                "hostname",
                "machineId",
                "OSRelease",
                "limit",
            ] {
                if let Some(value) = image.get(key) {
                    kept.insert(key.to_owned(), value.clone());
                }
            }
            Value::Object(kept)
        })
        .collect();
    images.sort_by_key(|image| image["name"].as_str().unwrap_or_default().to_owned());
    images
}

#[test]
fn berth_and_machined_257_agree_on_the_same_pool() {
    if !(require::root()
        && require::varlinkctl()
        && require::check(machined257::available(), "/opt/trixie (setup-test-deps.sh)"))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    pool(dir.path());
    // machined sees the directory as its /var/lib/machines; Berth is pointed at it.
    let machined = Machined257::start_with_images(Some(dir.path()));
    let berth = Registry::with(Options {
        cgroup: false,
        env: vec![(
            "BERTH_IMAGE_PATH".into(),
            dir.path().to_str().unwrap().into(),
        )],
        ..Options::default()
    });
    let strip_path = |mut images: Vec<Value>| {
        for image in &mut images {
            image.as_object_mut().unwrap().remove("path");
        }
        images
    };
    let theirs = strip_path(comparable(&list(&machined.socket(), json!({}), true)));
    let ours = strip_path(comparable(&list(&berth.socket(), json!({}), true)));
    let names: Vec<&str> = ours.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, [".hidden", "debian", "disk"]);
    assert_eq!(ours, theirs, "List --more");

    let with_metadata = json!({"name": "debian", "acquireMetadata": "yes"});
    let theirs = strip_path(comparable(&list(
        &machined.socket(),
        with_metadata.clone(),
        false,
    )));
    let ours = strip_path(comparable(&list(&berth.socket(), with_metadata, false)));
    assert_eq!(ours[0]["hostname"], "deb", "{ours:?}");
    assert_eq!(ours, theirs, "List with metadata");

    for (parameters, more) in [
        (json!({"name": "nope"}), false),
        (json!({"name": "a/b"}), false),
        (json!({}), false),
    ] {
        let theirs = list(&machined.socket(), parameters.clone(), more);
        let ours = list(&berth.socket(), parameters.clone(), more);
        let name = |run: &Run| run.stderr.split_whitespace().last().map(str::to_owned);
        assert_eq!(
            name(&ours),
            name(&theirs),
            "{parameters}: {ours:?} / {theirs:?}"
        );
    }
}

/// One call's answer, as both should give it: the reply, or the error's name (and errno).
fn answer(socket: &Path, method: &str, parameters: &Value) -> Value {
    let run = varlinkctl_call(
        socket,
        &format!("io.systemd.MachineImage.{method}"),
        &parameters.to_string(),
        false,
    );
    if run.success {
        return json!("ok");
    }
    let error = run
        .stderr
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    let errno = run.json().get("errno").cloned().unwrap_or(Value::Null);
    json!({"error": error, "errno": errno})
}

#[test]
fn changes_give_the_same_answers_and_trees_as_machined_257() {
    if !(require::root()
        && require::varlinkctl()
        && require::check(machined257::available(), "/opt/trixie (setup-test-deps.sh)"))
    {
        return;
    }
    let (theirs_dir, ours_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    pool(theirs_dir.path());
    pool(ours_dir.path());
    let machined = Machined257::start_with_images(Some(theirs_dir.path()));
    let berth = Registry::with(Options {
        cgroup: false,
        env: vec![(
            "BERTH_IMAGE_PATH".into(),
            ours_dir.path().to_str().unwrap().into(),
        )],
        ..Options::default()
    });
    let steps = [
        ("Clone", json!({"name": "debian", "newName": "copy"})),
        ("Clone", json!({"name": "debian", "newName": "copy"})),
        ("Update", json!({"name": "copy", "newName": "renamed"})),
        ("Update", json!({"name": "renamed", "readOnly": true})),
        ("List", json!({"name": "renamed"})),
        ("Update", json!({"name": "renamed", "readOnly": false})),
        ("Remove", json!({"name": "renamed"})),
        ("Remove", json!({"name": "renamed"})),
        ("Update", json!({"name": "nope", "readOnly": true})),
        ("Clone", json!({"name": "disk", "newName": "disk2"})),
        ("Remove", json!({"name": "disk2"})),
    ];
    for (method, parameters) in steps {
        let theirs = answer(&machined.socket(), method, &parameters);
        let ours = answer(&berth.socket(), method, &parameters);
        assert_eq!(ours, theirs, "{method} {parameters}");
    }
    let tree = |dir: &Path| {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.starts_with(".#"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(tree(ours_dir.path()), tree(theirs_dir.path()));
}
