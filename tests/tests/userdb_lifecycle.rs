//! The userdb bridge follows the registry: containers that come and go, a registry that
//! restarts under it, and containers that must never have users.

use std::process::Command;

use berth_tests::bridge::{Bridge, NOT_AVAILABLE, outcome, register_container};
use berth_tests::daemon::Registry;
use berth_tests::netns::UsernsLeader;
use berth_tests::process::Proc;
use berth_tests::{require, wait};
use serde_json::json;

const MISSING: &str = "io.systemd.UserDatabase.NoRecordFound";

fn needs_userns() -> bool {
    require::root() && require::program("unshare")
}

fn started() -> (Registry, Bridge) {
    let registry = Registry::start();
    let bridge = Bridge::start(&registry.socket());
    bridge.wait_synchronized();
    (registry, bridge)
}

#[test]
fn users_appear_with_their_container_and_vanish_with_it() {
    if !(needs_userns() && require::program("getent")) {
        return;
    }
    let (registry, bridge) = started();
    let by_name = json!({"userName": "vu-late-1"});
    let by_uid = json!({"uid": 262_145});
    assert_eq!(outcome(&bridge.user(by_name.clone())), MISSING);

    let leader = UsernsLeader::start(262_144);
    register_container(&registry.socket(), "late", leader.pid());
    bridge.wait_user(&by_name, "vu-late-1");
    assert_eq!(outcome(&bridge.user(by_uid.clone())), "vu-late-1");
    assert!(bridge.client("getent", &["group", "vg-late-1"]).success);

    drop(leader);
    bridge.wait_user(&by_name, MISSING);
    assert_eq!(outcome(&bridge.user(by_uid)), MISSING);
    assert_eq!(
        outcome(&bridge.group(json!({"groupName": "vg-late-1"}))),
        MISSING
    );
    let gone = bridge.client("getent", &["passwd", "vu-late-1"]);
    assert!(!gone.success, "{gone:?}");
}

#[test]
fn a_registry_restarted_under_the_bridge_never_leaves_a_stale_user() {
    if !needs_userns() {
        return;
    }
    let (mut registry, bridge) = started();
    let stays = UsernsLeader::start(327_680);
    let dies = UsernsLeader::start(393_216);
    register_container(&registry.socket(), "stays", stays.pid());
    register_container(&registry.socket(), "dies", dies.pid());
    let stays_query = json!({"userName": "vu-stays-0"});
    let dies_query = json!({"uid": 393_216});
    bridge.wait_user(&stays_query, "vu-stays-0");
    bridge.wait_user(&dies_query, "vu-dies-0");

    registry.kill9();
    bridge.wait_user(&stays_query, NOT_AVAILABLE);
    assert_eq!(outcome(&bridge.user(dies_query.clone())), NOT_AVAILABLE);
    assert_eq!(
        outcome(&bridge.user(json!({"userName": "root"}))),
        MISSING,
        "what can never be a container user is answered without the registry"
    );
    assert_eq!(outcome(&bridge.user(json!({"uid": 1000}))), MISSING);

    drop(dies);
    registry.start_again();
    bridge.wait_user(&stays_query, "vu-stays-0");
    assert_eq!(outcome(&bridge.user(dies_query)), MISSING);
    assert_eq!(
        outcome(&bridge.group(json!({"gid": 327_680 + 3}))),
        "vg-stays-3"
    );
}

#[test]
fn a_bridge_started_before_the_registry_waits_for_it() {
    if !needs_userns() {
        return;
    }
    let mut registry = Registry::start();
    registry.kill9();
    let bridge = Bridge::start(&registry.socket());
    let query = json!({"userName": "vu-early-0"});
    assert_eq!(outcome(&bridge.user(query.clone())), NOT_AVAILABLE);
    registry.start_again();
    let leader = UsernsLeader::start(458_752);
    register_container(&registry.socket(), "early", leader.pid());
    bridge.wait_user(&query, "vu-early-0");
    assert!(bridge.log().contains("Following the machine registry"));
}

#[test]
fn containers_sharing_host_ids_never_yield_host_users() {
    if !(needs_userns() && require::program("getent")) {
        return;
    }
    let (registry, bridge) = started();
    let plain = Proc::sleeper();
    let identity = UsernsLeader::with_maps("0 0 131072");
    let low = UsernsLeader::with_maps("0 1000 65536");
    let marker = UsernsLeader::start(524_288);
    register_container(&registry.socket(), "plain", plain.pid());
    register_container(&registry.socket(), "ident", identity.pid());
    register_container(&registry.socket(), "low", low.pid());
    register_container(&registry.socket(), "marker", marker.pid());
    bridge.wait_user(&json!({"userName": "vu-marker-0"}), "vu-marker-0");

    for name in [
        "vu-plain-0",
        "vu-plain-1000",
        "vu-ident-0",
        "vu-ident-70000",
        "vu-low-0",
    ] {
        assert_eq!(
            outcome(&bridge.user(json!({"userName": name}))),
            MISSING,
            "{name}"
        );
    }
    for group in ["vg-plain-0", "vg-ident-0", "vg-low-64535"] {
        let reply = bridge.group(json!({"groupName": group}));
        assert_eq!(outcome(&reply), MISSING, "{group}");
    }
    for uid in [0, 1000, 65534, 70_000] {
        assert_eq!(outcome(&bridge.user(json!({"uid": uid}))), MISSING, "{uid}");
    }
    assert_eq!(
        outcome(&bridge.user(json!({"userName": "vu-low-64536"}))),
        "vu-low-64536",
        "the part of a map above the host range has users"
    );
    assert_eq!(outcome(&bridge.user(json!({"uid": 65536}))), "vu-low-64536");
    let root = bridge.client("getent", &["passwd", "vu-plain-0"]);
    assert!(!root.success, "{root:?}");
}

#[test]
fn users_appear_once_the_maps_are_written_after_registration() {
    if !needs_userns() {
        return;
    }
    let (registry, bridge) = started();
    let leader = Proc::spawn(Command::new("unshare").args(["--user", "--", "sleep", "100000"]));
    let pid = leader.pid();
    wait::until("the new user namespace", || {
        std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
            != std::fs::read_link("/proc/self/ns/user").ok()
    });
    register_container(&registry.socket(), "unmapped", pid);
    let query = json!({"userName": "vu-unmapped-0"});
    assert_eq!(
        outcome(&bridge.user(query.clone())),
        MISSING,
        "no maps, no users"
    );
    std::fs::write(format!("/proc/{pid}/uid_map"), "0 589824 65536").unwrap();
    std::fs::write(format!("/proc/{pid}/gid_map"), "0 589824 65536").unwrap();
    bridge.wait_user(&query, "vu-unmapped-0");
    assert_eq!(
        outcome(&bridge.user(json!({"uid": 589_824 + 9}))),
        "vu-unmapped-9"
    );
}
