//! How long `getaddrinfo()` of a machine name takes through the module, beside an
//! `/etc/hosts` name and beside the real nss-mymachines 257 asking the real systemd-machined
//! 257, all with `hosts: files mymachines` (the order Debian ships). After the first lookup,
//! which asks the registry and starts the watch of the container's addresses, Berth's lookups
//! read the registry's host table.
//!
//! Run as root, after building the registry in release mode (`scripts/bench-nss` does both):
//! `cargo build --release -p berth-machine-registry && cargo bench -p berth-nss-module`.
//! Each measurement runs this binary again as a worker inside a private mount namespace (the
//! module's sandbox of the test harness, or the trixie chroot of `scripts/machined257-lookups`),
//! so nothing of the host changes. `BERTH_BENCH_ITERATIONS` sets the number of lookups (5000;
//! a fifth of that for machined 257, which is much slower).

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use berth_interfaces::blocking::Connection;
use berth_interfaces::registry::{ResolveHostReply, ResolveHostRequest};
use berth_tests::clients::run;
use berth_tests::daemon::{Options, Registry};
use berth_tests::netns::NetnsLeader;
use berth_tests::nss::Sandbox;

const MACHINE: &str = "benchbox";
const ADDRESS: &str = "198.51.100.10";
const FILES_NAME: &str = "localhost";
const WARMUP: usize = 50;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name, expected, count] = args.as_slice()
        && flag == "--worker"
    {
        return worker(name, expected, count.parse().unwrap_or(0));
    }
    if let Some(what) = missing() {
        eprintln!("resolve bench cannot run: {what}");
        return ExitCode::FAILURE;
    }
    bench(iterations());
    ExitCode::SUCCESS
}

fn iterations() -> usize {
    std::env::var("BERTH_BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000)
}

/// What keeps the bench from running, if anything.
fn missing() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (namespaces, a registry in system scope)".into());
    }
    let dir = profile_dir();
    ["berth-machine-registry", "libnss_mymachines.so"]
        .iter()
        .find(|binary| !dir.join(binary).exists())
        .map(|binary| {
            format!(
                "{} is missing: run `cargo build --release -p berth-machine-registry \
                 -p berth-nss-module` first (scripts/bench-nss does)",
                dir.join(binary).display()
            )
        })
}

/// `target/release`, where the bench runs from (`target/release/deps/resolve-…`).
fn profile_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .unwrap_or_default()
}

fn bench(iterations: usize) {
    let registry = Registry::with(Options {
        env: vec![("RUST_LOG".into(), "info".into())],
        ..Options::default()
    });
    let leader = NetnsLeader::ipv4_only(&[&format!("{ADDRESS}/24")]);
    registry.register(MACHINE, "container", leader.pid(), &[]);
    let etc_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let sandbox = Sandbox::new("files mymachines", &etc_hosts)
        .with_registry_at_system_path(&registry.socket());
    let worker = std::env::current_exe().expect("the bench's own path");
    let in_sandbox = |name: &str, expected: &str| {
        let mut command = sandbox.command(&worker);
        command.args(worker_args(name, expected, iterations));
        measure(&mut command)
    };
    let ours = in_sandbox(MACHINE, ADDRESS);
    let files = in_sandbox(FILES_NAME, &files_address(&etc_hosts));
    let real = machined257(&worker, (iterations / 5).max(WARMUP));
    report(iterations, &ours, &files, real.as_ref());
    round_trips(&registry.socket(), iterations);
}

/// What a lookup costs when the module has to ask the registry (a container's first lookup,
/// or no host table vouched for): its one call alone, from this process, on a new connection
/// each time (as the module does) and on one open connection, beside the least any round trip
/// between two processes costs here. (The lookups timed above read the host table.)
fn round_trips(socket: &Path, iterations: usize) {
    let request = ResolveHostRequest {
        name: MACHINE.into(),
    };
    let call = |connection: &mut Connection| {
        connection
            .call::<_, ResolveHostReply>("io.berth.Registry.ResolveHost", &request)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let timeout = Duration::from_secs(1);
    let fresh = sample(iterations, || {
        call(&mut Connection::connect(socket, timeout).map_err(|e| e.to_string())?)
    });
    let mut open = Connection::connect(socket, timeout).expect("a connection to the registry");
    let reused = sample(iterations, || call(&mut open));
    println!("when the module has to ask: io.berth.Registry.ResolveHost alone");
    let row = |what: &str, samples: Result<Vec<u64>, String>| match samples {
        Ok(samples) => Stats::of(samples).row(what),
        Err(e) => println!("{what:<58} failed: {e}"),
    };
    row("  on a new connection each (as the module asks)", fresh);
    row("  on one open connection", reused);
    row(
        "  floor: 1-byte ping-pong between two threads",
        Ok(ping_pong(iterations)),
    );
}

/// The least any request and reply between two processes costs on this machine: one byte
/// there and back over a socket pair, between two threads (which, like the lookup and the
/// registry, usually sit on different CPUs; waking a sleeping CPU dominates in a VM).
fn ping_pong(iterations: usize) -> Vec<u64> {
    use std::io::{Read, Write};
    let (mut near, mut far) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    let echo = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while far.read_exact(&mut byte).is_ok() && far.write_all(&byte).is_ok() {}
    });
    let samples = sample(iterations, || {
        let mut byte = [7u8; 1];
        near.write_all(&byte).map_err(|e| e.to_string())?;
        near.read_exact(&mut byte).map_err(|e| e.to_string())
    });
    drop(near);
    let _ = echo.join();
    samples.unwrap_or_default()
}

/// Runs `f` [`WARMUP`] times, then `count` times timed; the times in nanoseconds.
fn sample(count: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<Vec<u64>, String> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let started = Instant::now();
        f()?;
        let elapsed = started.elapsed();
        if i >= WARMUP {
            samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    Ok(samples)
}

fn worker_args(name: &str, expected: &str, count: usize) -> [String; 4] {
    [
        "--worker".into(),
        name.into(),
        expected.into(),
        count.to_string(),
    ]
}

/// The address /etc/hosts gives [`FILES_NAME`].
fn files_address(etc_hosts: &str) -> String {
    etc_hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .find(|line| line.split_whitespace().skip(1).any(|n| n == FILES_NAME))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or("127.0.0.1")
        .to_owned()
}

/// The real nss-mymachines 257 and machined 257, where the trixie chroot exists.
fn machined257(worker: &Path, iterations: usize) -> Result<Stats, String> {
    if !Path::new("/opt/trixie/usr/lib/systemd/systemd-machined").exists() {
        return Err("no /opt/trixie (scripts/setup-test-deps.sh)".into());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/machined257-lookups");
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--"])
        .arg(script)
        .args([MACHINE, ADDRESS])
        .arg(worker)
        .args(worker_args(MACHINE, ADDRESS, iterations));
    Stats::parse(&run(&mut command))
}

fn measure(command: &mut Command) -> Stats {
    let out = run(command);
    Stats::parse(&out).unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// Median and 99th percentile of the lookups a worker timed.
#[derive(Debug)]
struct Stats {
    median: Duration,
    p99: Duration,
}

impl Stats {
    fn parse(out: &berth_tests::clients::Run) -> Result<Self, String> {
        let samples: Vec<u64> = out
            .stdout
            .lines()
            .filter_map(|line| line.parse().ok())
            .collect();
        if !out.success || samples.is_empty() {
            return Err(format!("the worker failed: {}", out.stderr.trim()));
        }
        Ok(Self::of(samples))
    }

    fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        let at = |fraction: f64| {
            let index = (fraction * (samples.len().max(1) - 1) as f64).round() as usize;
            Duration::from_nanos(samples.get(index).copied().unwrap_or_default())
        };
        Self {
            median: at(0.5),
            p99: at(0.99),
        }
    }

    fn row(&self, what: &str) {
        println!("{what:<58} {:>10.1?} {:>10.1?}", self.median, self.p99);
    }
}

fn report(iterations: usize, ours: &Stats, files: &Stats, real: Result<&Stats, &String>) {
    println!("getaddrinfo() of one name, hosts: files mymachines; {iterations} lookups each");
    println!("{:<58} {:>10} {:>10}", "lookup", "median", "p99");
    ours.row("machine name, Berth (nss-module + machine-registry)");
    files.row(&format!("/etc/hosts name ({FILES_NAME}), files"));
    match real {
        Ok(real) => real.row("machine name, nss-mymachines 257 + systemd-machined 257"),
        Err(why) => println!("{:<58} not measured: {why}", "machine name, machined 257"),
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "Berth / files: {:.2}x median, {:.2}x p99 (target: under 3x)",
        ratio(ours.median, files.median),
        ratio(ours.p99, files.p99)
    );
    if let Ok(real) = real {
        println!(
            "machined 257 / Berth: {:.1}x median, {:.1}x p99 (target: at least 10x)",
            ratio(real.median, ours.median),
            ratio(real.p99, ours.p99)
        );
    }
}

/// Times `count` lookups of `name` (after a warm-up) and prints each in nanoseconds.
fn worker(name: &str, expected: &str, count: usize) -> ExitCode {
    let Ok(expected) = expected.parse::<IpAddr>() else {
        eprintln!("not an address: {expected}");
        return ExitCode::FAILURE;
    };
    let lookup = || {
        let found = (name, 0).to_socket_addrs().map(Iterator::collect::<Vec<_>>);
        match found {
            Ok(found) if found.iter().any(|a| a.ip() == expected) => Ok(()),
            other => Err(format!("looking up {name}: {other:?}")),
        }
    };
    let samples = match sample(count, lookup) {
        Ok(samples) => samples,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let lines: Vec<String> = samples.iter().map(u64::to_string).collect();
    println!("{}", lines.join("\n"));
    ExitCode::SUCCESS
}
