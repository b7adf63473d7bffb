//! Real clients resolve container names through the module, installed in private mount
//! namespaces with `hosts: mymachines files`: `getent` (hosts, ahosts, ahostsv4, ahostsv6),
//! python's `socket`, and glibc's `gethostbyname_r` from C. There the registry sits at the
//! system path, `/run/systemd/machine/io.systemd.Machine`, where the module looks by default.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use berth_tests::clients::Run;
use berth_tests::daemon::Registry;
use berth_tests::netns::NetnsLeader;
use berth_tests::nss::{Driver, Outcome, Sandbox};
use berth_tests::process::Proc;
use berth_tests::{require, wait};

const ETC_HOSTS: &str = "127.0.0.1 localhost\n198.51.100.250 hostsonly\n";

fn can_run() -> bool {
    require::root()
        && require::program("unshare")
        && require::program("nsenter")
        && require::program("getent")
}

fn sandbox(registry: &Registry) -> Sandbox {
    Sandbox::new("mymachines files", ETC_HOSTS).with_registry_at_system_path(&registry.socket())
}

/// The distinct addresses `getent` printed, in order (the first column, scope cut off).
fn addresses(out: &Run) -> Vec<String> {
    let mut seen = BTreeSet::new();
    out.stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(|a| a.split('%').next().unwrap_or(a).to_owned())
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

fn getent(sandbox: &Sandbox, database: &str, name: &str) -> Run {
    sandbox.run("getent", &[database, name])
}

/// A container `demo` at 198.51.100.7 and 2001:db8::7.
fn demo(registry: &Registry) -> NetnsLeader {
    let leader = NetnsLeader::start();
    leader.ip(&["addr", "add", "198.51.100.7/24", "dev", "veth0"]);
    leader.ip(&["addr", "add", "2001:db8::7/64", "dev", "veth0"]);
    registry.register("demo", "container", leader.pid(), &[]);
    leader
}

#[test]
fn getent_resolves_a_container_in_each_family() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    let _leader = demo(&registry);
    let sandbox = sandbox(&registry);

    // `getent hosts` asks for IPv6 first, then IPv4.
    let out = getent(&sandbox, "hosts", "demo");
    assert!(out.success, "{out:?}");
    assert!(
        out.stdout
            .lines()
            .all(|l| l.ends_with(" demo") || l.ends_with("\tdemo")),
        "{out:?}"
    );
    let v6 = addresses(&out);
    assert_eq!(v6[0], "2001:db8::7", "{out:?}");
    assert!(v6[1..].iter().all(|a| a.starts_with("fe80::")), "{out:?}");

    let out = getent(&sandbox, "ahostsv4", "demo");
    assert_eq!(addresses(&out), ["198.51.100.7"], "{out:?}");
    assert!(
        out.stdout.starts_with("198.51.100.7    STREAM demo"),
        "{out:?}"
    );
    let out = getent(&sandbox, "ahostsv6", "demo");
    assert_eq!(addresses(&out)[0], "2001:db8::7", "{out:?}");
    assert!(addresses(&out).iter().all(|a| a.contains(':')), "{out:?}");
    let all = addresses(&getent(&sandbox, "ahosts", "demo"));
    assert!(
        all.contains(&"198.51.100.7".to_owned()) && all.contains(&"2001:db8::7".to_owned()),
        "{all:?}"
    );
}

#[test]
fn what_the_module_does_not_resolve_falls_through_to_files() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    let (vm, shared) = (Proc::sleeper(), Proc::sleeper());
    registry.register("vmachine", "vm", vm.pid(), &[]);
    registry.register("shared", "container", shared.pid(), &[]);
    let sandbox = sandbox(&registry);

    for name in ["nope", "vmachine", "shared", "bad_name"] {
        for database in ["hosts", "ahosts"] {
            let out = getent(&sandbox, database, name);
            assert!(
                !out.success && out.stdout.is_empty(),
                "{database} {name}: {out:?}"
            );
        }
    }
    let out = getent(&sandbox, "hosts", "hostsonly");
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["198.51.100.250", "hostsonly"]
    );
}

#[test]
fn python_resolves_a_container_with_the_scope_of_its_interface() {
    if !(can_run() && require::program("python3")) {
        return;
    }
    let registry = Registry::start();
    let leader = NetnsLeader::start();
    leader.ip(&["addr", "add", "198.51.100.7/24", "dev", "veth0"]);
    leader.ip(&["addr", "add", "fe80::7/64", "dev", "veth0"]);
    // One registered host-side interface: it scopes the link-local addresses. Index 1 (lo)
    // exists everywhere.
    registry.register("demo", "container", leader.pid(), &[1]);
    let script = "import json, socket, sys\n\
        infos = socket.getaddrinfo(sys.argv[1], 80, type=socket.SOCK_STREAM)\n\
        print(json.dumps([[sa[0].split('%')[0]] + list(sa[2:]) for *_, sa in infos]))\n\
        print(json.dumps(socket.gethostbyname_ex(sys.argv[1])))\n";
    let out = sandbox(&registry).run("python3", &["-c", script, "demo"]);
    assert!(out.success, "{out:?}");
    let mut lines = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let infos = lines.next().unwrap();
    let infos = infos.as_array().unwrap();
    assert!(
        infos.contains(&serde_json::json!(["198.51.100.7"])),
        "{infos:?}"
    );
    assert!(
        infos.contains(&serde_json::json!(["fe80::7", 0, 1])),
        "scope id 1: {infos:?}"
    );
    assert_eq!(
        lines.next().unwrap(),
        serde_json::json!(["demo", [], ["198.51.100.7"]])
    );
}

#[test]
fn gethostbyname_r_with_too_small_a_buffer_says_erange() {
    if !(can_run() && require::program("cc")) {
        return;
    }
    let registry = Registry::start();
    let _leader = demo(&registry);
    let sandbox = sandbox(&registry);
    let driver = Driver::new();
    let call = |buflen: &str| {
        Outcome::of(
            sandbox
                .command(driver.binary())
                .args(["glibc", "demo", buflen]),
        )
    };
    let small = call("16");
    assert_eq!(
        (small.int("rc"), small.int("found")),
        (i64::from(libc::ERANGE), 0),
        "{small:?}"
    );
    let enough = call("1024");
    assert_eq!(
        (enough.int("rc"), enough.int("h_errnop")),
        (0, 0),
        "{enough:?}"
    );
    assert_eq!(enough.addresses(), ["2 198.51.100.7"]);
}

#[test]
fn an_address_added_later_and_a_stopped_registry_show_on_the_next_lookup() {
    if !can_run() {
        return;
    }
    let mut registry = Registry::start();
    let leader = demo(&registry);
    let sandbox = sandbox(&registry);
    leader.ip(&["addr", "add", "198.51.100.77/24", "dev", "veth0"]);
    wait::until("the new address", || {
        addresses(&getent(&sandbox, "ahostsv4", "demo")) == ["198.51.100.7", "198.51.100.77"]
    });

    // Frozen: the host table still says which names are no machines (or asking waits out the
    // timeout), then files answers.
    registry.suspend();
    let started = Instant::now();
    let out = getent(&sandbox, "hosts", "hostsonly");
    let elapsed = started.elapsed();
    registry.resume();
    assert!(out.success, "{out:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "two lookups of at most 100 ms: {elapsed:?}"
    );
    assert!(!getent(&sandbox, "hosts", "nope").success);

    registry.stop();
    assert!(!getent(&sandbox, "ahosts", "demo").success);
    assert!(getent(&sandbox, "ahosts", "hostsonly").success);
}
