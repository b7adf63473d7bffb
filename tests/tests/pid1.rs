//! Berth on a real systemd host: systemd 257 booted as PID 1 in a container, Berth installed
//! there by `scripts/install` in place of systemd-machined, its hardened units enabled. Checks,
//! with real clients inside the container: the sockets listen and the registry does not run
//! before the first call; `varlinkctl`, `getent hosts` and `userdbctl` activate what they need;
//! the hardening is in force (capability bounding sets, no new privileges, seccomp) and what
//! the registry needs its capabilities for works (addresses through setns, os-release read as
//! an unprivileged caller, signals to another user's process, cgroups of its own);
//! `systemctl restart` of each service keeps every machine; the journal holds their lines with
//! fields of their own (`MACHINE=`), `supervise`'s too; jobs inside machines run in the
//! socket-activated helper, outside the registry's sandbox; a newcomer's `berthctl spawn`,
//! `list`, `shell` and `poweroff` work; the image pool is listed, cloned and cleaned up;
//! `systemctl stop` is clean.

use std::time::Instant;

use berth_tests::clients::Run;
use berth_tests::pid1::{self, Container};
use berth_tests::{require, wait};
use serde_json::Value;

const MACHINE_SOCKET: &str = "/run/systemd/machine/io.systemd.Machine";
const REGISTRY: &str = "berth-machine-registry.service";
const BRIDGE: &str = "berth-userdb-bridge.service";
const SOCKETS: [&str; 4] = [
    "berth-machine-registry.socket",
    "berth-machine-registry-resolve-hook.socket",
    "berth-userdb-bridge.socket",
    "berth-machine-helper.socket",
];
/// The capabilities the registry's unit keeps: KILL (5), SETGID (6), SETUID (7), SYS_PTRACE
/// (19), SYS_ADMIN (21).
const REGISTRY_CAPABILITIES: u64 = 1 << 5 | 1 << 6 | 1 << 7 | 1 << 19 | 1 << 21;

fn ok(run: Run, what: &str) -> Run {
    assert!(run.success, "{what}: {run:?}");
    run
}

fn state(container: &Container, unit: &str) -> String {
    let run = container.exec(&["systemctl", "is-active", unit]);
    run.stdout.trim().to_owned()
}

fn call(container: &Container, method: &str, parameters: &str) -> Run {
    container.exec(&["varlinkctl", "call", MACHINE_SOCKET, method, parameters])
}

fn machine_names(container: &Container) -> Vec<String> {
    let run = container.exec(&[
        "varlinkctl",
        "call",
        "--more",
        "-j",
        MACHINE_SOCKET,
        "io.systemd.Machine.List",
        "{}",
    ]);
    let mut names: Vec<String> = ok(run, "List")
        .json_lines()
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Starts `command` as the transient service `unit` (optionally as `user`, group `nogroup`)
/// and returns its
/// main PID, as the container numbers it.
fn start_leader(container: &Container, unit: &str, user: Option<&str>, command: &[&str]) -> u32 {
    let mut args = vec!["systemd-run", "--quiet", "--unit", unit, "--collect"];
    if let Some(user) = user {
        args.extend(["--uid", user, "--gid", "nogroup"]);
    }
    args.extend(command);
    ok(container.exec(&args), "systemd-run");
    let mut pid = 0;
    wait::until(&format!("{unit}'s main process"), || {
        let run = container.exec(&["systemctl", "show", "-P", "MainPID", unit]);
        pid = run.stdout.trim().parse().unwrap_or(0);
        // unshare has made the namespace and exec'd sleep.
        pid != 0
            && std::fs::read_to_string(container.proc(pid).join("comm"))
                .is_ok_and(|c| c.trim() == "sleep")
    });
    pid
}

/// A line of the journal of `unit` with `field` = `value` (`journalctl -o json`).
fn journal_entry(container: &Container, unit: &str, field: &str, value: &str) -> Option<Value> {
    let run = container.exec(&["journalctl", "--no-pager", "-o", "json", "-u", unit]);
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|entry| entry[field].as_str() == Some(value))
}

/// `CapBnd`, `NoNewPrivs` and `Seccomp` of a service's main process.
fn confinement(container: &Container, unit: &str) -> (u64, String, String) {
    let run = container.exec(&["systemctl", "show", "-P", "MainPID", unit]);
    let pid: u32 = run.stdout.trim().parse().expect("a main PID");
    let status = std::fs::read_to_string(container.proc(pid).join("status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let bounding = u64::from_str_radix(&field("CapBnd:"), 16).unwrap();
    (bounding, field("NoNewPrivs:"), field("Seccomp:"))
}

#[test]
fn berth_runs_under_systemd_257_as_pid1() {
    if !require::check(
        pid1::available(),
        "root, /opt/trixie and t257 (setup-test-deps.sh)",
    ) {
        return;
    }
    let started = Instant::now();
    let built = berth_tests::workspace_binary("berth-machine-registry");
    let container = Container::boot("berthpid1", built.parent().unwrap());
    println!("booted with Berth installed in {:?}", container.boot_time);

    // Sockets listen; the registry waits for its first call. (The bridge may have been asked
    // by boot-time lookups, `initgroups()` asks every userdb service: it follows the registry
    // only from the first lookup of a container user on, so that does not start the registry.)
    for socket in SOCKETS {
        assert_eq!(state(&container, socket), "active", "{socket}");
    }
    assert_eq!(state(&container, REGISTRY), "inactive");
    println!("after boot: bridge {}", state(&container, BRIDGE));
    assert_eq!(machine_names(&container), [".host"]);
    assert_eq!(
        state(&container, REGISTRY),
        "active",
        "varlinkctl activates the registry"
    );

    // The hardening is in force.
    let (bounding, no_new_privs, seccomp) = confinement(&container, REGISTRY);
    assert_eq!(bounding, REGISTRY_CAPABILITIES, "{bounding:x}");
    assert_eq!((no_new_privs.as_str(), seccomp.as_str()), ("1", "2"));

    // A container with its own network namespace and an address: its name resolves through
    // the NSS module (and the registry enters the namespace: CAP_SYS_ADMIN).
    let web = start_leader(
        &container,
        "web-leader",
        None,
        &["unshare", "-n", "sleep", "infinity"],
    );
    let netns = container.proc(web).join("ns/net");
    let netns = format!("--net={}", netns.display());
    let address = "sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip link add veth0 type veth peer name veth1
        ip link set veth0 up; ip link set veth1 up
        ip addr add 192.0.2.7/24 dev veth0";
    let run = berth_tests::clients::run(std::process::Command::new("nsenter").args([
        netns.as_str(),
        "sh",
        "-ec",
        address,
    ]));
    ok(run, "an address in the container's namespace");
    let register = format!(r#"{{"name":"web","class":"container","leader":{web}}}"#);
    ok(
        call(&container, "io.systemd.Machine.Register", &register),
        "Register web",
    );
    let hosts = ok(
        container.exec(&["getent", "hosts", "web"]),
        "getent hosts web",
    );
    assert!(hosts.stdout.starts_with("192.0.2.7 "), "{hosts:?}");

    // A user-namespaced container: its users resolve through the bridge.
    let uns = start_leader(
        &container,
        "uns-leader",
        None,
        &["unshare", "--user", "sleep", "infinity"],
    );
    for map in ["uid_map", "gid_map"] {
        std::fs::write(container.proc(uns).join(map), "0 131072 65536\n").unwrap();
    }
    let register = format!(r#"{{"name":"uns","class":"container","leader":{uns}}}"#);
    ok(
        call(&container, "io.systemd.Machine.Register", &register),
        "Register uns",
    );
    let user = ok(
        container.exec(&["userdbctl", "user", "vu-uns-0"]),
        "userdbctl",
    );
    assert!(user.stdout.contains("131072"), "{user:?}");
    assert_eq!(state(&container, BRIDGE), "active");
    let (bounding, no_new_privs, seccomp) = confinement(&container, BRIDGE);
    assert_eq!(
        (bounding, no_new_privs.as_str(), seccomp.as_str()),
        (0, "1", "2")
    );

    // An unprivileged user's machine: its os-release is read with its rights (CAP_SETUID,
    // CAP_SETGID), root may signal it (CAP_KILL).
    let nobody = start_leader(
        &container,
        "nobody-leader",
        Some("nobody"),
        &["sleep", "infinity"],
    );
    let register = format!(r#"{{"name":"nob","class":"container","leader":{nobody}}}"#);
    let as_nobody = |args: &[&str]| {
        let mut all = vec![
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ];
        all.extend(args);
        container.exec(&all)
    };
    let registered = as_nobody(&[
        "varlinkctl",
        "call",
        MACHINE_SOCKET,
        "io.systemd.Machine.Register",
        &register,
    ]);
    ok(registered, "Register as nobody");
    let list = r#"{"name":"nob","acquireMetadata":"graceful"}"#;
    let metadata = ok(
        as_nobody(&[
            "varlinkctl",
            "call",
            MACHINE_SOCKET,
            "io.systemd.Machine.List",
            list,
        ]),
        "os-release as nobody",
    );
    assert!(metadata.stdout.contains("ID=debian"), "{metadata:?}");
    let kill = r#"{"name":"nob","whom":"leader","signal":18}"#;
    ok(
        call(&container, "io.systemd.Machine.Kill", kill),
        "Kill nobody's leader",
    );

    // Jobs inside machines run in helpers systemd starts per job, outside the registry's
    // sandbox: a copy out of a machine lands in the real /tmp (the registry's is private) and
    // is owned as its source is (the registry keeps no CAP_CHOWN).
    let copy = r#"{"name":"nob","source":"/etc/os-release","destination":"/tmp/berth-copied"}"#;
    ok(
        call(&container, "io.systemd.Machine.CopyFrom", copy),
        "CopyFrom through the helper",
    );
    let copied = ok(container.exec(&["cat", "/tmp/berth-copied"]), "the copy");
    assert!(copied.stdout.contains("ID=debian"), "{copied:?}");
    let accepted = container.exec(&[
        "systemctl",
        "show",
        "-p",
        "NAccepted",
        "--value",
        "berth-machine-helper.socket",
    ]);
    assert_eq!(accepted.stdout.trim(), "1", "{accepted:?}");

    // A cgroup of the registry's own (Delegate=, the cgroup tree writable).
    let alloc = start_leader(&container, "alloc-leader", None, &["sleep", "infinity"]);
    let register =
        format!(r#"{{"name":"alloc","class":"container","leader":{alloc},"allocateUnit":true}}"#);
    ok(
        call(&container, "io.systemd.Machine.Register", &register),
        "allocateUnit",
    );
    let cgroup = std::fs::read_to_string(container.proc(alloc).join("cgroup")).unwrap();
    assert!(
        cgroup.contains("/berth-machine-registry.service/machine-alloc.scope"),
        "{cgroup}"
    );

    // supervise under a unit: its machine's life is in the journal with MACHINE=.
    let supervise = [
        "systemd-run",
        "--quiet",
        "--unit",
        "sv-demo",
        "-p",
        "Delegate=yes",
        "--collect",
        "/usr/bin/supervise",
        "--name",
        "sv",
        "--",
        "sleep",
        "infinity",
    ];
    ok(container.exec(&supervise), "supervise");
    wait::until("supervise's machine", || {
        machine_names(&container).contains(&"sv".to_owned())
    });
    let all = ["alloc", "nob", "sv", "uns", "web"];

    // Restarts keep every machine.
    ok(
        container.exec(&["systemctl", "restart", REGISTRY]),
        "restart the registry",
    );
    let mut expected: Vec<String> = all.iter().map(|s| (*s).to_owned()).collect();
    expected.insert(0, ".host".into());
    assert_eq!(machine_names(&container), expected);
    let hosts = ok(
        container.exec(&["getent", "hosts", "web"]),
        "getent after restart",
    );
    assert!(hosts.stdout.starts_with("192.0.2.7 "), "{hosts:?}");
    ok(
        container.exec(&["systemctl", "restart", BRIDGE]),
        "restart the bridge",
    );
    ok(
        container.exec(&["userdbctl", "user", "vu-uns-0"]),
        "userdbctl after restart",
    );
    assert_eq!(machine_names(&container), expected);

    // supervise's end.
    ok(
        container.exec(&["systemctl", "stop", "sv-demo"]),
        "stop supervise",
    );
    wait::until("the end of sv", || {
        !machine_names(&container).contains(&"sv".to_owned())
    });

    // A newcomer's day with berthctl: a supervised machine spawned, listed, a shell in it
    // (through the socket-activated helper), powered off through its controller.
    let spawn = [
        "systemd-run",
        "--quiet",
        "--unit",
        "bc-demo",
        "-p",
        "Delegate=yes",
        "--collect",
        "/usr/bin/berthctl",
        "spawn",
        "daily",
        "--",
        "sleep",
        "infinity",
    ];
    ok(container.exec(&spawn), "berthctl spawn");
    wait::until("berthctl's machine", || {
        machine_names(&container).contains(&"daily".to_owned())
    });
    let list = ok(container.exec(&["berthctl", "list"]), "berthctl list");
    assert!(list.stdout.contains("daily"), "{list:?}");
    let shell = ok(
        container.exec(&[
            "berthctl",
            "shell",
            "daily",
            "/bin/sh",
            "-c",
            "echo inside-$((6*7))",
        ]),
        "berthctl shell",
    );
    assert!(shell.stdout.contains("inside-42"), "{shell:?}");
    ok(
        container.exec(&["berthctl", "poweroff", "daily"]),
        "berthctl poweroff",
    );
    wait::until("the end of daily", || {
        !machine_names(&container).contains(&"daily".to_owned())
    });

    // The image pool: the registry reads /var/lib/machines (read-only in its sandbox), the
    // helper changes it; the socket unit's symlink reaches the same service.
    ok(
        container.exec(&["sh", "-c", "mkdir -p /var/lib/machines/demo/etc && echo ID=demo > /var/lib/machines/demo/etc/os-release"]),
        "an image",
    );
    let listed = ok(
        container.exec(&[
            "varlinkctl",
            "call",
            "/run/systemd/machine/io.systemd.MachineImage",
            "io.systemd.MachineImage.List",
            r#"{"name":"demo","acquireMetadata":"yes"}"#,
        ]),
        "MachineImage.List",
    );
    assert!(listed.stdout.contains("ID=demo"), "{listed:?}");
    ok(
        container.exec(&["berthctl", "clone", "demo", "demo2"]),
        "berthctl clone",
    );
    let images = ok(
        container.exec(&["berthctl", "list-images"]),
        "berthctl list-images",
    );
    assert!(images.stdout.contains("demo2"), "{images:?}");
    ok(
        container.exec(&["berthctl", "remove", "demo2"]),
        "berthctl remove",
    );
    ok(
        container.exec(&["test", "!", "-e", "/var/lib/machines/demo2"]),
        "the clone removed",
    );

    // The journal: fields of their own.
    let entry = journal_entry(&container, REGISTRY, "MACHINE", "web").expect("MACHINE=web");
    println!("registry: {entry}");
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "berth-machine-registry");
    assert!(
        entry["LEADER"].is_string() && entry["PRIORITY"] == "6",
        "{entry}"
    );
    let booted = journal_entry(&container, "sv-demo", "BOOT", "1").expect("supervise started");
    println!("supervise: {booted}");
    assert_eq!(
        (&booted["MACHINE"], &booted["SYSLOG_IDENTIFIER"]),
        (&"sv".into(), &"supervise".into())
    );
    assert!(journal_entry(&container, "sv-demo", "REGISTRY", MACHINE_SOCKET).is_some());
    let exited = journal_entry(&container, "sv-demo", "EXIT_CODE", "killed").expect("exit");
    assert_eq!(exited["MACHINE"], "sv");

    // A clean stop.
    ok(
        container.exec(&["systemctl", "stop", BRIDGE, REGISTRY]),
        "stop",
    );
    for unit in [BRIDGE, REGISTRY] {
        let show = container.exec(&["systemctl", "show", "-p", "Result,ExecMainStatus", unit]);
        assert_eq!(show.stdout, "Result=success\nExecMainStatus=0\n", "{unit}");
    }
    let failed = container.exec(&[
        "systemctl",
        "list-units",
        "--failed",
        "--plain",
        "--no-legend",
    ]);
    assert!(!failed.stdout.contains("berth"), "{failed:?}");
    println!("PID 1 test: {:?} in all", started.elapsed());
}
