//! Every error of the userdb bridge through varlinkctl 257, and connections that stay usable
//! after bad calls.

use berth_tests::bridge::{Bridge, WithContainer};
use berth_tests::clients::{Run, varlinkctl_call};
use berth_tests::require;
use serde_json::{Value, json};

const SHIFT: u32 = 196_608;
const USER: &str = "io.systemd.UserDatabase.GetUserRecord";
const GROUP: &str = "io.systemd.UserDatabase.GetGroupRecord";
const MEMBERSHIPS: &str = "io.systemd.UserDatabase.GetMemberships";
const INVALID: &str = "org.varlink.service.InvalidParameter";

/// The error name varlinkctl reports, if the call failed.
fn error_of(run: &Run) -> Option<String> {
    run.stderr
        .lines()
        .find_map(|line| line.split_once("failed: "))
        .map(|(_, name)| name.trim().to_owned())
}

struct Check<'a> {
    bridge: &'a Bridge,
}

impl Check<'_> {
    fn call(&self, method: &str, params: &Value, more: bool) -> Run {
        varlinkctl_call(&self.bridge.socket(), method, &params.to_string(), more)
    }

    /// Asserts that the call fails with `error` (and, for InvalidParameter, names `field`).
    fn fails(&self, method: &str, params: Value, error: &str, field: Option<&str>) {
        for more in [false, true] {
            let run = self.call(method, &params, more);
            assert_eq!(
                error_of(&run).as_deref(),
                Some(error),
                "{method} {params} (more: {more}): {run:?}"
            );
            if let Some(field) = field {
                assert_eq!(run.json_lines()[0]["parameter"], field, "{params}: {run:?}");
            }
        }
    }

    fn invalid(&self, method: &str, params: Value, field: &str) {
        self.fails(method, params, INVALID, Some(field));
    }

    fn record(&self, method: &str, params: Value, more: bool) -> Value {
        let run = self.call(method, &params, more);
        assert!(run.success, "{params}: {run:?}");
        let replies = run.json_lines();
        assert_eq!(replies.len(), 1, "one reply, also with more: {run:?}");
        replies[0]["record"].clone()
    }
}

fn service(mut params: Value) -> Value {
    params["service"] = json!("io.systemd.Machine");
    params
}

fn setup() -> Option<WithContainer> {
    let ready = require::root() && require::program("unshare") && require::varlinkctl();
    ready.then(|| WithContainer::start("demo", SHIFT))
}

#[test]
fn user_lookups_fail_with_machineds_errors() {
    let Some(setup) = setup() else { return };
    let check = Check {
        bridge: &setup.bridge,
    };
    let record = check.record(
        USER,
        service(json!({"uid": SHIFT, "userName": "vu-demo-0"})),
        true,
    );
    assert_eq!(record["userName"], "vu-demo-0");

    check.fails(
        USER,
        service(json!({})),
        "io.systemd.UserDatabase.EnumerationNotSupported",
        None,
    );
    let other = json!({"userName": "vu-demo-0", "service": "io.systemd.Home"});
    check.fails(USER, other, "io.systemd.UserDatabase.BadService", None);
    check.invalid(USER, json!({"userName": "vu-demo-0"}), "service");
    for uid in [
        json!(65535),
        json!(4_294_967_295u32),
        json!(-1),
        json!(4_294_967_296u64),
        json!("x"),
        json!(1.5),
    ] {
        check.invalid(USER, service(json!({"uid": uid})), "uid");
    }
    check.invalid(USER, json!({"uid": 65535, "service": "elsewhere"}), "uid");
    for name in ["a:b", "1234", ".", " a", "a/b", ""] {
        check.invalid(USER, service(json!({"userName": name})), "userName");
    }
    for filter in ["fuzzyNames", "dispositionMask", "uidMin", "uidMax", "bogus"] {
        for value in [json!(null), json!(["x"])] {
            let params = service(json!({"userName": "vu-demo-0", filter: value}));
            check.invalid(USER, params, filter);
        }
    }
    let missing = "io.systemd.UserDatabase.NoRecordFound";
    for params in [
        json!({"userName": "vu-nothere-0"}),
        json!({"userName": "root"}),
        json!({"userName": "vu-demo-65536"}),
        json!({"uid": 0}),
        json!({"uid": 1000}),
        json!({"uid": SHIFT + 65536}),
    ] {
        check.fails(USER, service(params), missing, None);
    }
    let conflict = service(json!({"uid": SHIFT, "userName": "vu-demo-1"}));
    check.fails(
        USER,
        conflict,
        "io.systemd.UserDatabase.ConflictingRecordFound",
        None,
    );
}

#[test]
fn group_and_membership_lookups_fail_with_machineds_errors() {
    let Some(setup) = setup() else { return };
    let check = Check {
        bridge: &setup.bridge,
    };
    let record = check.record(GROUP, service(json!({"gid": SHIFT + 5})), false);
    assert_eq!(record["groupName"], "vg-demo-5");

    check.fails(
        GROUP,
        service(json!({"gid": null})),
        "io.systemd.UserDatabase.EnumerationNotSupported",
        None,
    );
    check.fails(
        GROUP,
        json!({"groupName": "vg-demo-0", "service": "x"}),
        "io.systemd.UserDatabase.BadService",
        None,
    );
    check.invalid(GROUP, service(json!({"gid": 65535})), "gid");
    check.invalid(GROUP, service(json!({"groupName": "a:b"})), "groupName");
    check.invalid(
        GROUP,
        service(json!({"groupName": "vg-demo-0", "gidMin": 1})),
        "gidMin",
    );
    check.invalid(
        GROUP,
        service(json!({"groupName": "vg-demo-0", "uid": 1})),
        "uid",
    );
    check.fails(
        GROUP,
        service(json!({"groupName": "vu-demo-0"})),
        "io.systemd.UserDatabase.NoRecordFound",
        None,
    );
    check.fails(
        GROUP,
        service(json!({"gid": SHIFT, "groupName": "vg-demo-1"})),
        "io.systemd.UserDatabase.ConflictingRecordFound",
        None,
    );

    let none = "io.systemd.UserDatabase.NoRecordFound";
    check.fails(MEMBERSHIPS, service(json!({})), none, None);
    check.fails(
        MEMBERSHIPS,
        service(json!({"userName": "vu-demo-0"})),
        none,
        None,
    );
    check.fails(
        MEMBERSHIPS,
        json!({"groupName": "vg-demo-0", "service": "x"}),
        "io.systemd.UserDatabase.BadService",
        None,
    );
    check.invalid(
        MEMBERSHIPS,
        json!({"userName": "a:b", "service": "x"}),
        "userName",
    );

    check.fails(
        "io.systemd.UserDatabase.Nope",
        json!({}),
        "org.varlink.service.MethodNotFound",
        None,
    );
    check.fails(
        "io.systemd.service.Ping",
        json!({}),
        "org.varlink.service.MethodNotFound",
        None,
    );
}

#[test]
fn a_connection_stays_usable_after_bad_calls_and_bad_json_closes_only_itself() {
    let Some(setup) = setup() else { return };
    let bridge = &setup.bridge;
    let mut raw = bridge.raw();
    let bad_calls = [
        json!({"method": USER, "parameters": {"uid": -5, "service": "io.systemd.Machine"}}),
        json!({"method": USER, "parameters": {"service": 7}}),
        json!({"method": USER}),
        json!({"method": USER, "parameters": {"service": "io.systemd.Machine"}, "more": true}),
        json!({"method": "io.systemd.UserDatabase.Gone", "parameters": {}}),
        json!({"method": MEMBERSHIPS, "parameters": {"service": "io.systemd.Machine"}, "more": true}),
    ];
    for call in &bad_calls {
        let reply = raw.call(call);
        assert!(reply["error"].is_string(), "{call}: {reply}");
        assert!(reply.get("continues").is_none(), "{reply}");
    }
    let reply = raw.method(USER, service(json!({"userName": "vu-demo-0"})));
    assert_eq!(reply["parameters"]["record"]["uid"], SHIFT);

    let mut broken = bridge.raw();
    broken.send_raw(b"{not json");
    assert!(
        broken.recv().is_none(),
        "invalid JSON closes the connection"
    );
    let reply = raw.method(GROUP, service(json!({"groupName": "vg-demo-0"})));
    assert_eq!(reply["parameters"]["record"]["gid"], SHIFT);
}
