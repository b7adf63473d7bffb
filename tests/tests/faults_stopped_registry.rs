//! Fault: the registry is SIGSTOPped for seconds. Its companions keep answering from what
//! they know, within their budgets; a call made meanwhile is answered once it runs again.
//! (The NSS module's side of this fault is in `nss_failures.rs` and `nss_host_table.rs`.)

use std::time::{Duration, Instant};

use berth_tests::bridge::WithContainer;
use berth_tests::clients::RawClient;
use berth_tests::require;
use serde_json::json;

/// What a lookup answered from a cache may cost, generously (it takes microseconds).
const FAST: Duration = Duration::from_millis(500);

#[test]
fn while_the_registry_is_stopped_the_bridge_answers_and_calls_wait_for_it() {
    if !require::root() {
        return;
    }
    let world = WithContainer::start("frozen", 200_000);
    let by_uid = json!({"uid": 200_000});
    world.bridge.wait_user(&by_uid, "vu-frozen-0");

    world.registry.suspend();
    // A call to the stopped registry waits (the kernel queues it)…
    let socket = world.registry.socket();
    let stopped_at = Instant::now();
    let waiting = std::thread::spawn(move || {
        let reply = RawClient::connect(&socket)
            .method("io.systemd.Machine.List", json!({"name": "frozen"}));
        (reply, stopped_at.elapsed())
    });
    // …while the bridge answers from the machines it follows, fast, again and again.
    let stopped_for = Duration::from_secs(2);
    let started = Instant::now();
    while started.elapsed() < stopped_for {
        let asked = Instant::now();
        let reply = world.bridge.user(by_uid.clone());
        assert_eq!(
            reply["parameters"]["record"]["userName"], "vu-frozen-0",
            "{reply}"
        );
        assert!(asked.elapsed() < FAST, "{:?}", asked.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    world.registry.resume();

    let (reply, waited) = waiting.join().expect("the waiting caller");
    assert_eq!(reply["parameters"]["name"], "frozen", "{reply}");
    assert!(
        waited >= stopped_for,
        "answered only after SIGCONT: {waited:?}"
    );
    // Everything goes on as before.
    let again = RawClient::connect(&world.registry.socket())
        .method("io.systemd.Machine.List", json!({"name": "frozen"}));
    assert_eq!(again["parameters"]["name"], "frozen");
    assert_eq!(
        world.bridge.user(by_uid)["parameters"]["record"]["userName"],
        "vu-frozen-0"
    );
}
