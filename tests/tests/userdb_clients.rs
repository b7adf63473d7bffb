//! The userdb bridge through real clients: userdbctl 252 (the host's) and 257, and glibc's
//! `getent` and `id` through nss-systemd, each seeing only the bridge's socket.

use berth_tests::bridge::WithContainer;
use berth_tests::clients::Run;
use berth_tests::require;
use serde_json::{Value, json};

const USERDBCTL_257: &str = "/usr/local/bin/userdbctl-257";
const SHIFT: u32 = 131_072;

fn needs_clients() -> bool {
    require::root()
        && require::program("unshare")
        && require::program("/usr/bin/userdbctl")
        && require::program(USERDBCTL_257)
        && require::program("getent")
}

fn json_of(run: &Run) -> Value {
    assert!(run.success, "{run:?}");
    run.json()
}

#[test]
fn userdbctl_252_and_257_show_container_users_and_groups() {
    if !needs_clients() {
        return;
    }
    let setup = WithContainer::start("demo", SHIFT);
    let bridge = &setup.bridge;
    let expected_user = json!({
        "userName": "vu-demo-0",
        "uid": SHIFT,
        "gid": 65534,
        "realName": "UID 0 of Container demo",
        "homeDirectory": "/",
        "shell": "/usr/sbin/nologin",
        "locked": true,
        "service": "io.systemd.Machine",
        "disposition": "container"
    });
    for userdbctl in ["/usr/bin/userdbctl", USERDBCTL_257] {
        let by_name = json_of(&bridge.client(userdbctl, &["-j", "user", "vu-demo-0"]));
        assert_eq!(by_name, expected_user, "{userdbctl}");
        let uid = (SHIFT + 1000).to_string();
        let by_uid = json_of(&bridge.client(userdbctl, &["-j", "user", &uid]));
        assert_eq!(by_uid["userName"], "vu-demo-1000", "{userdbctl}");
        assert_eq!(by_uid["realName"], "UID 1000 of Container demo");
        let group = json_of(&bridge.client(userdbctl, &["-j", "group", "vg-demo-0"]));
        assert_eq!(
            group,
            json!({
                "groupName": "vg-demo-0",
                "gid": SHIFT,
                "description": "GID 0 of Container demo",
                "service": "io.systemd.Machine",
                "disposition": "container"
            }),
            "{userdbctl}"
        );
        let gid = (SHIFT + 5).to_string();
        let by_gid = json_of(&bridge.client(userdbctl, &["-j", "group", &gid]));
        assert_eq!(by_gid["groupName"], "vg-demo-5", "{userdbctl}");
        let missing = bridge.client(userdbctl, &["user", "vu-nothere-0"]);
        assert!(!missing.success, "{missing:?}");
    }
}

#[test]
fn getent_and_id_resolve_through_nss_systemd() {
    if !(needs_clients() && require::program("id")) {
        return;
    }
    let setup = WithContainer::start("demo", SHIFT);
    let bridge = &setup.bridge;
    let line = |args: &[&str]| {
        let run = bridge.client("getent", args);
        assert!(run.success, "getent {args:?}: {run:?}");
        run.stdout.trim().to_owned()
    };
    let user_line =
        format!("vu-demo-0:x:{SHIFT}:65534:UID 0 of Container demo:/:/usr/sbin/nologin");
    assert_eq!(line(&["passwd", "vu-demo-0"]), user_line);
    assert_eq!(line(&["passwd", &SHIFT.to_string()]), user_line);
    let gid = SHIFT + 7;
    assert_eq!(line(&["group", "vg-demo-7"]), format!("vg-demo-7:x:{gid}:"));
    assert_eq!(
        line(&["group", &gid.to_string()]),
        format!("vg-demo-7:x:{gid}:")
    );
    let id = bridge.client("id", &["vu-demo-1000"]);
    assert!(id.success, "{id:?}");
    assert!(
        id.stdout
            .starts_with(&format!("uid={}(vu-demo-1000) gid=65534(", SHIFT + 1000)),
        "{id:?}"
    );
    let nobody_else = bridge.client("getent", &["passwd", "vu-nothere-0"]);
    assert!(!nobody_else.success, "{nobody_else:?}");
    assert!(
        !bridge.client("getent", &["passwd", "65535"]).success,
        "no host UID is ever answered"
    );
}
