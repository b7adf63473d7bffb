//! `BindMount`: host directories and files appearing inside a running container (its own
//! mount namespace), read-only respected, `mkdir`, destinations resolved inside its root;
//! machined's errors.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use berth_interfaces::client::EnterProxy;
use berth_interfaces::machine::{BindMountRequest, MachineError, MachineLookup};
use berth_tests::clients::{varlinkctl_call, varlinkctl_call_as};
use berth_tests::container::Container;
use berth_tests::daemon::Registry;
use berth_tests::machines::register_raw;
use berth_tests::process::Proc;
use berth_tests::require;
use berth_tests::users::NOBODY;
use serde_json::json;

fn bind(source: &Path, destination: &str, read_only: bool, mkdir: bool) -> BindMountRequest {
    BindMountRequest {
        lookup: MachineLookup::by_name("boxed"),
        source: source.to_str().unwrap().to_owned(),
        destination: Some(destination.to_owned()),
        read_only: Some(read_only),
        mkdir: Some(mkdir),
    }
}

#[tokio::test]
async fn host_directories_and_files_appear_inside() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 400_000);
    let host = tempfile::tempdir().unwrap();
    let shared = host.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::write(shared.join("hello"), "from the host\n").unwrap();
    let mut conn = registry.connect().await;

    conn.bind_mount(&bind(&shared, "/mnt/shared", false, true))
        .await
        .unwrap()
        .unwrap();
    let inside = container.inside("mnt/shared");
    assert_eq!(
        fs::read_to_string(inside.join("hello")).unwrap(),
        "from the host\n"
    );
    // Writable both ways, and only in the container's mount namespace.
    fs::write(inside.join("back"), "from the container\n").unwrap();
    assert_eq!(
        fs::read_to_string(shared.join("back")).unwrap(),
        "from the container\n"
    );
    assert!(!container.root().join("mnt/shared/hello").exists());
    // The mount points made belong to the container's root.
    let owner = fs::metadata(container.root().join("mnt")).unwrap();
    assert_eq!((owner.uid(), owner.gid()), (400_000, 400_000));

    conn.bind_mount(&bind(&shared, "/mnt/read-only", true, true))
        .await
        .unwrap()
        .unwrap();
    let read_only = container.inside("mnt/read-only");
    assert!(read_only.join("hello").exists());
    let refused = fs::write(read_only.join("new"), "x").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EROFS), "{refused}");

    // A file, onto a mount point made for it.
    let file = host.path().join("file");
    fs::write(&file, "a file\n").unwrap();
    conn.bind_mount(&bind(&file, "/etc/berth-file", true, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fs::read_to_string(container.inside("etc/berth-file")).unwrap(),
        "a file\n"
    );
}

#[tokio::test]
async fn destinations_resolve_inside_the_container() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 410_000);
    symlink("../../../../../../../etc", container.root().join("up-link")).unwrap();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("marker"), "marker\n").unwrap();
    let name = format!("/up-link/berth-bind-{}", std::process::id());
    let mut conn = registry.connect().await;
    conn.bind_mount(&bind(host.path(), &name, false, true))
        .await
        .unwrap()
        .unwrap();
    let in_its_etc = container.inside(&name.replace("/up-link", "etc"));
    assert!(in_its_etc.join("marker").exists());
    assert!(!Path::new(&name.replace("/up-link", "/etc")).exists());
}

#[tokio::test]
async fn errors_are_machineds() {
    if !(require::root()
        && require::program("unshare")
        && require::varlinkctl()
        && require::program("setpriv"))
    {
        return;
    }
    let registry = Registry::without_cgroup();
    let _container = Container::boxed(&registry, 420_000);
    let vm = Proc::sleeper();
    register_raw(&registry, "vm", "vm", vm.pid());
    let socket = registry.socket();
    let method = "io.systemd.Machine.BindMount";
    let cases = [
        (json!({"name": "nope", "source": "/tmp"}), "NoSuchMachine"),
        (json!({"name": "vm", "source": "/tmp"}), "NotSupported"),
        (json!({"name": ".host", "source": "/tmp"}), "NotSupported"),
        (
            json!({"name": "boxed", "source": "tmp"}),
            "InvalidParameter",
        ),
        (
            json!({"name": "boxed", "source": "/tmp/"}),
            "InvalidParameter",
        ),
        (
            json!({"name": "boxed", "source": "/tmp", "destination": "mnt"}),
            "InvalidParameter",
        ),
        // Missing source, and a missing mount point without mkdir.
        (
            json!({"name": "boxed", "source": "/nonexistent-berth"}),
            "io.systemd.System",
        ),
        (
            json!({"name": "boxed", "source": "/tmp", "destination": "/nonexistent-berth"}),
            "io.systemd.System",
        ),
    ];
    for (params, expected) in cases {
        let run = varlinkctl_call(&socket, method, &params.to_string(), false);
        assert!(run.stderr.contains(expected), "{params}: {run:?}");
    }
    let denied = varlinkctl_call_as(
        NOBODY,
        &socket,
        method,
        r#"{"name":"boxed","source":"/tmp"}"#,
    );
    assert!(
        denied
            .stderr
            .contains("org.varlink.service.PermissionDenied"),
        "{denied:?}"
    );
    let mut conn = registry.connect().await;
    let reply = conn
        .bind_mount(&BindMountRequest {
            lookup: MachineLookup::by_name("vm"),
            source: "/tmp".into(),
            destination: None,
            read_only: None,
            mkdir: None,
        })
        .await
        .unwrap();
    assert_eq!(reply.err(), Some(MachineError::NotSupported));
}
