//! The registry through Berth's own typed proxies: every field, every lookup, introspection.

use std::process::{Command, Stdio};

use berth_interfaces::client::{MachineProxy, ServiceProxy};
use berth_interfaces::machine::{
    AcquireMetadata, KillRequest, KillWhom, ListRequest, MachineClass, MachineError, MachineLookup,
    ProcessId, RegisterRequest,
};
use berth_tests::daemon::Registry;
use berth_tests::machines::{by_name, children_of, container};
use berth_tests::process::Proc;
use berth_tests::wait;

#[tokio::test]
async fn every_register_field_comes_back_in_list_and_the_state_file() {
    let registry = Registry::start();
    let leader = Proc::sleeper();
    let mut conn = registry.connect().await;
    let request = RegisterRequest {
        id: Some("0123456789ABCDEF0123456789abcdef".into()),
        service: Some("berth-test".into()),
        class: MachineClass::Vm,
        root_directory: Some("/var/lib/machines/full".into()),
        if_indices: Some(vec![1, 3]),
        v_sock_cid: Some(77),
        ssh_address: Some("vsock/77".into()),
        ssh_private_key_path: Some("/etc/ssh/key".into()),
        control_address: Some("/run/full/control".into()),
        ..container("full", leader.pid())
    };
    conn.register(&request).await.unwrap().unwrap();
    let info = conn.list(&by_name("full")).await.unwrap().unwrap();
    assert_eq!(info.name, "full");
    assert_eq!(info.id.as_deref(), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(info.class, MachineClass::Vm);
    assert_eq!(info.service.as_deref(), Some("berth-test"));
    assert_eq!(
        info.root_directory.as_deref(),
        Some("/var/lib/machines/full")
    );
    assert_eq!(info.v_sock_cid, Some(77));
    assert_eq!(info.ssh_address.as_deref(), Some("vsock/77"));
    assert_eq!(info.ssh_private_key_path.as_deref(), Some("/etc/ssh/key"));
    assert_eq!(info.control_address.as_deref(), Some("/run/full/control"));
    assert_eq!(info.uid, Some(0));
    let leader_id = info.leader.as_ref().unwrap();
    assert_eq!(leader_id.pid, leader.pid());
    assert!(leader_id.pidfd_id.is_some() && leader_id.boot_id.is_some());
    // The test process made the call for another leader: it is the supervisor.
    assert_eq!(info.supervisor.as_ref().unwrap().pid, std::process::id());

    let state = std::fs::read_to_string(registry.state_dir().join("full")).unwrap();
    for line in [
        "NAME=full",
        "CLASS=vm",
        "ID=0123456789abcdef0123456789abcdef",
        "SERVICE=berth-test",
        "ROOT=/var/lib/machines/full",
        "NETIF=\"1 3\"",
        "VSOCK_CID=77",
        &format!("LEADER={}", leader.pid()),
        &format!("LEADER_PIDFDID={}", leader_id.pidfd_id.unwrap()),
        &format!("SUPERVISOR={}", std::process::id()),
    ] {
        assert!(
            state.lines().any(|l| l == line),
            "{line} missing from:\n{state}"
        );
    }
}

#[tokio::test]
async fn leader_defaults_to_the_caller_and_duplicates_are_refused() {
    let registry = Registry::start();
    let mut conn = registry.connect().await;
    let request = RegisterRequest {
        name: "me".into(),
        ..RegisterRequest::default()
    };
    conn.register(&request).await.unwrap().unwrap();
    let info = conn.list(&by_name("me")).await.unwrap().unwrap();
    assert_eq!(info.leader.unwrap().pid, std::process::id());
    assert!(info.supervisor.is_none());
    assert_eq!(
        conn.register(&request).await.unwrap(),
        Err(MachineError::MachineExists)
    );
    // The same leader cannot lead a second machine.
    let again = RegisterRequest {
        name: "me-too".into(),
        ..RegisterRequest::default()
    };
    let error = conn.register(&again).await.unwrap_err();
    assert!(
        format!("{error:?}").contains("io.systemd.System"),
        "{error:?}"
    );
}

#[tokio::test]
async fn machines_are_found_by_pid_of_leader_descendant_or_caller() {
    let registry = Registry::start();
    let mut leader = Proc::spawn(
        Command::new("sh")
            .args(["-c", r#"sleep 100000 & read go; "$VARLINKCTL" call "$SOCKET" io.systemd.Machine.List '{"pid":{"pid":0}}' > "$OUT"; wait"#])
            .env("VARLINKCTL", berth_tests::require::VARLINKCTL)
            .env("SOCKET", registry.socket())
            .env("OUT", registry.runtime_dir().join("self.json"))
            .stdin(Stdio::piped()),
    );
    let mut conn = registry.connect().await;
    conn.register(&container("tree", leader.pid()))
        .await
        .unwrap()
        .unwrap();

    let by_leader = ListRequest {
        lookup: MachineLookup::by_pid(leader.pid()),
        ..ListRequest::default()
    };
    assert_eq!(conn.list(&by_leader).await.unwrap().unwrap().name, "tree");

    let child = children_of(leader.pid(), 1)[0];
    let by_child = ListRequest {
        lookup: MachineLookup::by_pid(child),
        ..ListRequest::default()
    };
    assert_eq!(conn.list(&by_child).await.unwrap().unwrap().name, "tree");

    let both_disagree = ListRequest {
        lookup: MachineLookup {
            name: Some(".host".into()),
            pid: Some(ProcessId::from_pid(child)),
            ..MachineLookup::default()
        },
        ..ListRequest::default()
    };
    assert_eq!(
        conn.list(&both_disagree).await.unwrap(),
        Err(MachineError::NoSuchMachine)
    );
    let outsider = ListRequest {
        lookup: MachineLookup::by_pid(std::process::id()),
        ..ListRequest::default()
    };
    assert_eq!(
        conn.list(&outsider).await.unwrap(),
        Err(MachineError::NoSuchMachine)
    );

    if berth_tests::require::varlinkctl() {
        use std::io::Write;
        leader
            .child()
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
        let out = registry.runtime_dir().join("self.json");
        wait::until("the in-machine lookup", || {
            std::fs::read_to_string(&out).is_ok_and(|s| s.contains("\"tree\""))
        });
    }
}

#[tokio::test]
async fn unregister_leaves_the_processes_and_kill_reaches_them() {
    let registry = Registry::start();
    let mut kept = Proc::sleeper();
    let mut killed = Proc::sleeper();
    let mut conn = registry.connect().await;
    conn.register(&container("kept", kept.pid()))
        .await
        .unwrap()
        .unwrap();
    conn.register(&container("killed", killed.pid()))
        .await
        .unwrap()
        .unwrap();

    conn.unregister(&MachineLookup::by_name("kept"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conn.list(&by_name("kept")).await.unwrap(),
        Err(MachineError::NoSuchMachine)
    );
    assert!(!registry.state_dir().join("kept").exists());
    assert!(!kept.has_exited());

    let kill = KillRequest {
        lookup: MachineLookup::by_name("killed"),
        whom: Some(KillWhom::Leader),
        signal: "SIGKILL".to_owned().into_signal(),
    };
    conn.kill(&kill).await.unwrap().unwrap();
    wait::until("the killed leader", || killed.has_exited());
    wait::until_async("the machine to go", || async {
        let mut conn = registry.connect().await;
        conn.list(&by_name("killed")).await.unwrap() == Err(MachineError::NoSuchMachine)
    })
    .await;
}

trait IntoSignal {
    fn into_signal(self) -> berth_interfaces::machine::SignalSpec;
}

impl IntoSignal for String {
    fn into_signal(self) -> berth_interfaces::machine::SignalSpec {
        berth_interfaces::machine::SignalSpec::Name(self)
    }
}

#[tokio::test]
async fn os_release_is_read_through_the_machines_own_root() {
    if !berth_tests::require::root() {
        return;
    }
    let registry = Registry::start();
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(
        etc.path().join("os-release"),
        "ID=berthtest\nPRETTY_NAME=\"Berth Test OS\"\n",
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc && exec sleep 100000",
        etc.path().display()
    );
    let leader = Proc::spawn(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    let mut conn = registry.connect().await;
    // The bind mount happens inside the new namespace; wait until the leader is `sleep`.
    wait::until("the leader to set up its root", || {
        std::fs::read_to_string(format!("/proc/{}/comm", leader.pid()))
            .is_ok_and(|c| c.trim() == "sleep")
    });
    conn.register(&container("rooted", leader.pid()))
        .await
        .unwrap()
        .unwrap();
    let request = ListRequest {
        acquire_metadata: Some(AcquireMetadata::Graceful),
        ..by_name("rooted")
    };
    let info = conn.list(&request).await.unwrap().unwrap();
    assert_eq!(
        info.os_release,
        Some(vec![
            "ID=berthtest".to_owned(),
            "PRETTY_NAME=Berth Test OS".to_owned()
        ])
    );
    // It shares the host's network namespace: "yes" says so instead of leaving addresses out.
    let strict = ListRequest {
        acquire_metadata: Some(AcquireMetadata::Yes),
        ..by_name("rooted")
    };
    assert_eq!(
        conn.list(&strict).await.unwrap(),
        Err(MachineError::NoPrivateNetworking)
    );

    let host = conn
        .list(&ListRequest {
            acquire_metadata: Some(AcquireMetadata::Graceful),
            ..by_name(".host")
        })
        .await
        .unwrap()
        .unwrap();
    assert!(
        host.os_release
            .unwrap()
            .iter()
            .any(|kv| kv.starts_with("ID="))
    );
    assert_eq!(host.uid_shift, Some(0));
}

#[tokio::test]
async fn every_interface_answers_with_the_text_of_its_idl_file() {
    let registry = Registry::start();
    let interfaces = [
        "io.berth.Registry",
        "io.systemd",
        "io.systemd.Machine",
        "io.systemd.MachineImage",
        "io.systemd.service",
        "org.varlink.service",
    ];
    berth_tests::clients::assert_serves_idl_files(&registry.socket(), &interfaces).await;
    let image_socket = registry.socket().with_file_name("io.systemd.MachineImage");
    berth_tests::clients::assert_serves_idl_files(&image_socket, &interfaces).await;
    let hook = registry
        .runtime_dir()
        .join("systemd/resolve.hook/io.systemd.Machine");
    let hook_interfaces = ["io.systemd.Resolve.Hook", "org.varlink.service"];
    berth_tests::clients::assert_serves_idl_files(&hook, &hook_interfaces).await;
}

#[tokio::test]
async fn the_service_interface_pings_reports_its_environment_and_sets_the_log_level() {
    let registry = Registry::start();
    let mut conn = registry.connect().await;
    conn.ping().await.unwrap().unwrap();
    let environment = conn
        .get_environment()
        .await
        .unwrap()
        .unwrap()
        .environment
        .unwrap();
    assert!(
        environment.iter().any(|e| e == "RUST_LOG=debug"),
        "{environment:?}"
    );
    conn.set_log_level(3).await.unwrap().unwrap();
    let error = conn.set_log_level(9).await.unwrap_err();
    assert!(
        format!("{error:?}").contains("InvalidParameter"),
        "{error:?}"
    );
}
