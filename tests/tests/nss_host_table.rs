//! The registry's host table (`/run/systemd/machine/berth-hosts`): what it holds as machines
//! come, change and go; that the registry vouches for it only while it keeps it current; and
//! that the module answers from it without asking while it is vouched for, and asks otherwise.

use std::fs::File;
use std::path::Path;

use berth_tests::clients::raw_call;
use berth_tests::daemon::Registry;
use berth_tests::netns::NetnsLeader;
use berth_tests::nss::{Driver, Outcome};
use berth_tests::process::Proc;
use berth_tests::{require, wait};
use rustix::fs::FlockOperation;
use serde_json::{Value, json};

const SUCCESS: i64 = 1;
const UNAVAIL: i64 = -1;

fn can_run() -> bool {
    require::root()
        && require::program("unshare")
        && require::program("nsenter")
        && require::program("cc")
}

/// The entry of `name`, if there is one.
fn entry(registry: &Registry, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(registry.host_table().join(name)).ok()?;
    Some(serde_json::from_str(&text).expect("an entry is JSON"))
}

/// Whether someone holds the write lock of the table's lock file, as the module checks it.
fn vouched(registry: &Registry) -> bool {
    let Ok(lock) = File::open(registry.host_table().join(".lock")) else {
        return false;
    };
    rustix::fs::fcntl_lock(&lock, FlockOperation::NonBlockingLockShared).is_err()
}

fn lookup(driver: &Driver, socket: &Path, name: &str) -> Outcome {
    driver.call(socket, "gethostbyname4_r", name, 0, 4096)
}

fn addresses(out: &Outcome) -> Vec<&str> {
    assert_eq!(out.int("status"), SUCCESS, "{out:?}");
    out.addresses()
}

#[test]
fn the_table_follows_machines_and_their_addresses() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    // The socket is bound first; the table is complete once the registry vouches for it.
    wait::until("the table vouched for", || vouched(&registry));
    assert_eq!(
        entry(&registry, ".host"),
        Some(json!({"reply": {"class": "host"}}))
    );
    let leader = NetnsLeader::ipv4_only(&["198.51.100.7/24"]);
    registry.register("demo", "container", leader.pid(), &[]);
    let vm = Proc::sleeper();
    registry.register("vm1", "vm", vm.pid(), &[4]);
    assert_eq!(entry(&registry, "demo"), Some(json!("ask")));
    assert_eq!(
        entry(&registry, "vm1"),
        Some(json!({"reply": {"class": "vm", "ifIndices": [4]}}))
    );
    assert!(vouched(&registry));

    // The first lookup asks, and starts the watch whose view the table follows from then on.
    let (driver, socket) = (Driver::new(), registry.socket());
    assert_eq!(
        addresses(&lookup(&driver, &socket, "demo")),
        ["2 198.51.100.7 scopeid=0 name=demo"]
    );
    registry.wait_for_host_entry("demo");
    leader.ip(&["addr", "add", "198.51.100.77/24", "dev", "veth0"]);
    wait::until("the added address in the table", || {
        entry(&registry, "demo").is_some_and(|e| e.to_string().contains("[198,51,100,77]"))
    });
    registry.suspend();
    let frozen = lookup(&driver, &socket, "demo");
    let vm_frozen = lookup(&driver, &socket, "vm1");
    registry.resume();
    assert_eq!(
        addresses(&frozen),
        [
            "2 198.51.100.7 scopeid=0 name=demo",
            "2 198.51.100.77 scopeid=0 name=demo"
        ],
        "answered from the table while the registry was frozen"
    );
    assert_eq!(vm_frozen.status(), (UNAVAIL, i64::from(libc::ENOTTY), 3));

    // Gone from the registry, gone from the table.
    let reply = raw_call(
        &socket,
        "io.systemd.Machine.Unregister",
        &json!({"name": "demo"}),
    );
    assert!(reply.get("error").is_none(), "{reply}");
    assert_eq!(entry(&registry, "demo"), None);
    let out = lookup(&driver, &socket, "demo");
    assert_eq!(out.status(), (UNAVAIL, i64::from(libc::ENXIO), 3));
}

#[test]
fn a_container_sharing_the_hosts_network_is_told_apart_without_asking() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    let sharing = Proc::sleeper();
    registry.register("sharing", "container", sharing.pid(), &[]);
    let (driver, socket) = (Driver::new(), registry.socket());
    let asked = lookup(&driver, &socket, "sharing");
    assert_eq!(asked.status(), (UNAVAIL, i64::from(libc::ENOSYS), 3));
    assert_eq!(
        entry(&registry, "sharing"),
        Some(json!("noPrivateNetworking"))
    );
    registry.suspend();
    let frozen = lookup(&driver, &socket, "sharing");
    registry.resume();
    assert_eq!(frozen.status(), asked.status());
}

#[test]
fn a_dead_registrys_table_is_not_trusted_and_a_new_one_rebuilds_it() {
    if !can_run() {
        return;
    }
    let mut registry = Registry::start();
    let leader = NetnsLeader::ipv4_only(&["198.51.100.7/24"]);
    registry.register("demo", "container", leader.pid(), &[]);
    let (driver, socket) = (Driver::new(), registry.socket());
    assert_eq!(addresses(&lookup(&driver, &socket, "demo")).len(), 1);
    registry.wait_for_host_entry("demo");

    registry.kill9();
    assert!(!vouched(&registry));
    assert!(
        entry(&registry, "demo").is_some(),
        "left behind, but not vouched for"
    );
    let out = lookup(&driver, &socket, "demo");
    assert_eq!(out.int("status"), UNAVAIL, "{out:?}");
    let errno = out.status().1;
    assert!(
        [libc::ECONNREFUSED, libc::ENOENT].contains(&(errno as i32)),
        "{out:?}"
    );

    // The machine comes back from its state file; its entry starts over.
    registry.start_again();
    wait::until("the table vouched for again", || vouched(&registry));
    assert_eq!(entry(&registry, "demo"), Some(json!("ask")));
    assert_eq!(addresses(&lookup(&driver, &socket, "demo")).len(), 1);
}
