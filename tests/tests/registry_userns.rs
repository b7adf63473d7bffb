//! User namespaces of containers: `UIDShift`, `MapFrom`, `MapTo`, and the maps `Watch` reports.

use berth_interfaces::client::{MachineProxy, Watch};
use berth_interfaces::machine::{
    AcquireMetadata, ListRequest, MachineError, MachineLookup, MapFromRequest, MapToReply,
    MappedIds,
};
use berth_interfaces::registry::{IdMapping, MachineEvent};
use berth_tests::daemon::Registry;
use berth_tests::machines::container;
use berth_tests::netns::UsernsLeader;
use berth_tests::process::Proc;
use berth_tests::require;

fn uid_shift_request(name: &str) -> ListRequest {
    ListRequest {
        lookup: MachineLookup::by_name(name),
        acquire_metadata: Some(AcquireMetadata::Graceful),
    }
}

fn map_from(name: &str, uid: Option<u32>, gid: Option<u32>) -> MapFromRequest {
    MapFromRequest {
        lookup: MachineLookup::by_name(name),
        uid,
        gid,
    }
}

#[tokio::test]
async fn uid_shift_and_id_translation_follow_the_maps() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::start();
    let shifted = UsernsLeader::start(131072);
    let complex = UsernsLeader::with_maps("0 200000 1\n1 300000 65535");
    let plain = Proc::sleeper();
    let mut conn = registry.connect().await;
    for (name, pid) in [
        ("shifted", shifted.pid()),
        ("complex", complex.pid()),
        ("plain", plain.pid()),
    ] {
        conn.register(&container(name, pid)).await.unwrap().unwrap();
    }
    for (name, expected) in [
        ("shifted", Some(131072)),
        ("complex", None),
        ("plain", Some(0)),
    ] {
        let info = conn.list(&uid_shift_request(name)).await.unwrap().unwrap();
        assert_eq!(info.uid_shift, expected, "{name}");
    }

    let strict = ListRequest {
        acquire_metadata: Some(AcquireMetadata::Yes),
        ..uid_shift_request("complex")
    };
    // Addresses come first and a container without its own network namespace has none.
    assert_eq!(
        conn.list(&strict).await.unwrap(),
        Err(MachineError::NoPrivateNetworking)
    );

    let mapped = conn
        .map_from(&map_from("shifted", Some(1000), Some(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mapped,
        MappedIds {
            uid: Some(132072),
            gid: Some(131077)
        }
    );
    assert_eq!(
        conn.map_from(&map_from("shifted", Some(70000), None))
            .await
            .unwrap(),
        Err(MachineError::NoSuchUser)
    );
    assert_eq!(
        conn.map_from(&map_from("shifted", None, Some(70000)))
            .await
            .unwrap(),
        Err(MachineError::NoSuchGroup)
    );
    let complex_mapped = conn
        .map_from(&map_from("complex", Some(2), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(complex_mapped.uid, Some(300001));

    let back = conn
        .map_to(&MappedIds {
            uid: Some(132072),
            gid: Some(131077),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        back,
        MapToReply {
            uid: Some(1000),
            gid: Some(5),
            machine_name: Some("shifted".into())
        }
    );
    let other = conn
        .map_to(&MappedIds {
            uid: Some(300001),
            gid: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.machine_name.as_deref(), Some("complex"));
    assert_eq!(
        conn.map_to(&MappedIds {
            uid: Some(132072),
            gid: Some(300001)
        })
        .await
        .unwrap(),
        Err(MachineError::NoSuchMachine)
    );
    assert_eq!(
        conn.map_to(&MappedIds {
            uid: Some(500000),
            gid: None
        })
        .await
        .unwrap(),
        Err(MachineError::NoSuchUser)
    );
}

#[tokio::test]
async fn watch_lists_the_machines_then_follows_every_change() {
    let registry = Registry::start();
    let early = Proc::sleeper();
    let mut conn = registry.connect().await;
    conn.register(&container("early", early.pid()))
        .await
        .unwrap()
        .unwrap();

    let mut watch = Watch::start(registry.connect().await).await.unwrap();
    let mut existing = Vec::new();
    loop {
        let reply = watch.next().await.unwrap().unwrap();
        if reply.event == MachineEvent::Synchronized {
            assert!(reply.machine.is_none());
            break;
        }
        assert_eq!(reply.event, MachineEvent::Existing);
        existing.push(reply.machine.unwrap().name);
    }
    existing.sort();
    assert_eq!(existing, [".host", "early"]);

    if !require::varlinkctl() {
        return;
    }
    // Registered by varlinkctl, so that Terminate signals the machine, not this test.
    let late = Proc::sleeper();
    let params = serde_json::json!({"name": "late", "class": "container", "leader": late.pid()});
    berth_tests::machines::register_with_varlinkctl(&registry, &params);
    let added = watch.next().await.unwrap().unwrap();
    assert_eq!(added.event, MachineEvent::Added);
    let summary = added.machine.unwrap();
    assert_eq!(
        (summary.name.as_str(), summary.leader),
        ("late", late.pid())
    );
    assert_eq!(
        summary.uid_map, None,
        "a leader in the host's user namespace has no maps"
    );

    conn.terminate(&berth_interfaces::machine::MachineLookup::by_name("late"))
        .await
        .unwrap()
        .unwrap();
    let changed = watch.next().await.unwrap().unwrap();
    assert_eq!(changed.event, MachineEvent::Changed);
    let removed = watch.next().await.unwrap().unwrap();

    assert_eq!(
        (removed.event, removed.machine.unwrap().name),
        (MachineEvent::Removed, "late".into())
    );
}

#[tokio::test]
async fn watch_reports_user_namespace_maps() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::start();
    let leader = UsernsLeader::start(196608);
    let mut conn = registry.connect().await;
    conn.register(&container("mapped", leader.pid()))
        .await
        .unwrap()
        .unwrap();
    let mut watch = Watch::start(registry.connect().await).await.unwrap();
    let line = IdMapping {
        inside: 0,
        outside: 196608,
        count: 65536,
    };
    loop {
        let reply = watch.next().await.unwrap().unwrap();
        let Some(machine) = reply.machine.filter(|m| m.name == "mapped") else {
            continue;
        };
        assert_eq!(machine.uid_map, Some(vec![line]));
        assert_eq!(machine.gid_map, Some(vec![line]));
        break;
    }
}
