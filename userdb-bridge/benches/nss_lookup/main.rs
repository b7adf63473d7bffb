//! `getpwnam("vu-NAME-ID")` and `getpwuid(UID)` through glibc and nss-systemd, answered by
//! Berth's userdb bridge and, in the same run, by the real systemd-machined 257, with 10 and
//! then 1,000 registered user-namespaced containers. Prints median and p99 of each and the
//! ratios. Needs root, the trixie chroot (`scripts/setup-test-deps.sh`) and cgroup2 at
//! `/sys/fs/cgroup/unified`; otherwise it says what is missing and does nothing.
//!
//! Run with `scripts/bench-userdb` (or `cargo bench -p berth-userdb-bridge`). It changes
//! nothing on the host: every client runs in a private mount namespace, machined's chroot
//! mounts live in one too, and the processes and cgroups it starts are removed at the end.

mod fleet;
mod lookups;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::bridge::{Bridge, register_container};
use berth_tests::clients::raw_call;
use berth_tests::daemon::Registry;
use berth_tests::machined257::{self, Machined257};
use fleet::Fleet;
use lookups::{Call, Key, Timing};
use serde_json::json;

/// The numbers of containers measured at.
const PHASES: [usize; 2] = [10, 1000];
/// Timed calls per lookup, system and phase.
const CALLS: usize = 2000;
/// In how many alternating rounds they are made.
const ROUNDS: usize = 4;

fn main() {
    if let Some(code) = lookups::helper_main() {
        std::process::exit(code);
    }
    if !can_run() {
        return;
    }
    build_registry();
    let work = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start();
    let env = vec![("RUST_LOG".to_owned(), "warn".to_owned())];
    let bridge = Bridge::with_env(&registry.socket(), env);
    let machined = Machined257::start();
    let mut fleet = Fleet::new();
    let mut rows = Vec::new();
    for n in PHASES {
        for container in fleet.grow_to(n) {
            register_container(&registry.socket(), &container.name, container.pid());
            register_container(&machined.socket(), &container.name, container.pid());
        }
        let last = format!("vu-b{:04}-0", n - 1);
        bridge.wait_user(&json!({"userName": last}), &last);
        let keys = keys(fleet.len());
        for call in [Call::Getpwnam, Call::Getpwuid] {
            let (mut berth, mut real) = (Vec::new(), Vec::new());
            // Alternating rounds, so that both see the same load from the rest of the machine.
            for round in keys.chunks(CALLS / ROUNDS) {
                berth.extend(lookups::measure(
                    &bridge.userdb_dir(),
                    work.path(),
                    call,
                    round,
                ));
                real.extend(lookups::measure(
                    &machined.userdb_dir(),
                    work.path(),
                    call,
                    round,
                ));
            }
            rows.push(Row {
                containers: n,
                call,
                berth: Timing::of(berth),
                real: Timing::of(real),
            });
        }
    }
    compare_records(
        &bridge.socket(),
        &machined.userdb_dir().join("io.systemd.Machine"),
    );
    print_table(&rows);
}

/// Whether everything the benchmark needs is here; says what is missing otherwise.
fn can_run() -> bool {
    let missing = [
        (rustix::process::geteuid().is_root(), "root"),
        (
            machined257::available(),
            "systemd-machined 257 in /opt/trixie (scripts/setup-test-deps.sh)",
        ),
        (
            machined257::cgroup2_available(),
            "cgroup2 at /sys/fs/cgroup/unified",
        ),
    ];
    let missing: Vec<_> = missing
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| *what)
        .collect();
    if !missing.is_empty() {
        eprintln!("nss_lookup: not run, it needs {}", missing.join(", "));
    }
    missing.is_empty()
}

/// `cargo bench -p berth-userdb-bridge` builds the bridge but not the registry it follows.
fn build_registry() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "berth-machine-registry",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo");
    assert!(status.success(), "building berth-machine-registry failed");
}

/// `CALLS` users spread over all containers and their ID ranges.
fn keys(containers: usize) -> Vec<Key> {
    (0..CALLS)
        .map(|i| {
            let container = (i * 7919) % containers;
            let id = u32::try_from((i * 31) % 65535).expect("small");
            let name = format!("vu-b{container:04}-{id}");
            (name, fleet::shift(container) + id)
        })
        .collect()
}

/// Both services must give the very same records.
fn compare_records(berth: &Path, real: &Path) {
    let user = json!({"userName": "vu-b0001-1000", "service": "io.systemd.Machine"});
    let group = json!({"gid": fleet::shift(7) + 5, "service": "io.systemd.Machine"});
    for (method, params) in [("GetUserRecord", user), ("GetGroupRecord", group)] {
        let method = format!("io.systemd.UserDatabase.{method}");
        let ours = raw_call(berth, &method, &params);
        let theirs = raw_call(real, &method, &params);
        assert_eq!(
            ours, theirs,
            "{method} {params}: Berth and machined 257 differ"
        );
    }
    println!("Records of vu-b0001-1000 and vg-b0007-5: identical in Berth and machined 257.");
}

struct Row {
    containers: usize,
    call: Call,
    berth: Timing,
    real: Timing,
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "glibc lookups through nss-systemd 252, {CALLS} calls each in {ROUNDS} alternating rounds:"
    );
    println!(
        "{:>10}  {:<26} {:>12} {:>9}   {:>14} {:>9}   {:>9}",
        "containers", "call", "Berth median", "p99", "machined 257", "p99", "Berth/257"
    );
    for row in rows {
        let call = match row.call {
            Call::Getpwnam => "getpwnam(\"vu-bNNNN-ID\")",
            Call::Getpwuid => "getpwuid(UID)",
        };
        println!(
            "{:>10}  {:<26} {:>12} {:>9}   {:>14} {:>9}   {:>9.2}",
            row.containers,
            call,
            micros(row.berth.median),
            micros(row.berth.p99),
            micros(row.real.median),
            micros(row.real.p99),
            row.berth.median.as_secs_f64() / row.real.median.as_secs_f64(),
        );
    }
    print_verdict(rows);
}

fn print_verdict(rows: &[Row]) {
    let find = |n: usize, call: Call| rows.iter().find(|r| r.containers == n && r.call == call);
    let (Some(nam), Some(uid), Some(uid_small)) = (
        find(1000, Call::Getpwnam),
        find(1000, Call::Getpwuid),
        find(10, Call::Getpwuid),
    ) else {
        return;
    };
    let yes = |ok: bool| if ok { "met" } else { "MISSED" };
    println!();
    println!(
        "Target getpwnam no slower than machined 257 (1,000 containers, median): {}",
        yes(nam.berth.median <= nam.real.median)
    );
    println!(
        "Target getpwuid under 150 µs at 1,000 containers (median): {} ({})",
        yes(uid.berth.median < Duration::from_micros(150)),
        micros(uid.berth.median)
    );
    println!(
        "getpwuid from 10 to 1,000 containers: Berth x{:.2}, machined 257 x{:.2}",
        uid.berth.median.as_secs_f64() / uid_small.berth.median.as_secs_f64(),
        uid.real.median.as_secs_f64() / uid_small.real.median.as_secs_f64(),
    );
}
