//! Register+Unregister pairs: Berth's registry and the real systemd-machined 257, driven in the
//! same run by the same neutral client (blocking, NUL-framed Varlink over a `UnixStream`, one
//! call at a time, waiting for each reply with `poll` as sd-varlink's clients do), with the same
//! leaders (`sleep`s, each in a `machine-pairN.scope` cgroup of the benchmark's own slice, since
//! machined 257 without systemd PID 1 refuses leaders outside a unit), both with their state on
//! tmpfs.
//!
//! Each connection registers `pairN-K`, then unregisters it, in a loop: one connection, then
//! eight at once (a thread each). Every pair of a round has a leader of its own: machined frees
//! an unregistered machine only in a garbage collection it defers until it is idle, and until
//! then refuses the machine's leader and unit to a new one (`errno` 17), so reusing a leader at
//! once would measure that race, not registration. Rounds alternate between the two services so
//! both see the same load from the rest of the machine. With `strace` installed, a last short
//! run under `strace -c -f` counts each service's system calls per pair (machined's D-Bus
//! daemon, which it signals on every change, is not counted).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use berth_tests::daemon::{Options, Registry};

use crate::floor::Floor;
use berth_tests::machined257::{self, Machined257, ScopeSlice};
use berth_tests::process::Proc;
use berth_tests::wait;
use rustix::event::{PollFd, PollFlags};

/// The numbers of concurrent connections measured.
const CONNECTIONS: [usize; 2] = [1, 8];
/// Pairs per round and connection count (split over the connections).
const PAIRS_PER_ROUND: usize = 1000;
/// Alternating rounds per service and connection count.
const ROUNDS: usize = 4;
/// `GetInfo` calls timed for the round-trip floor.
const FLOOR_CALLS: usize = 2000;
/// Pairs made under `strace -c`.
const TRACED_PAIRS: usize = 500;

/// One service under test.
struct Target {
    name: &'static str,
    socket: PathBuf,
    /// The process to count system calls of (the floor runs inside the benchmark).
    pid: Option<u32>,
}

/// What one configuration measured, over all rounds.
#[derive(Default)]
struct Figures {
    pairs: usize,
    wall: Duration,
    register: Vec<Duration>,
    /// Register calls refused because the leader still belonged to an unregistered machine.
    busy: usize,
}

impl Figures {
    fn add(&mut self, other: Figures) {
        self.pairs += other.pairs;
        self.wall += other.wall;
        self.register.extend(other.register);
        self.busy += other.busy;
    }

    fn rate(&self) -> f64 {
        self.pairs as f64 / self.wall.as_secs_f64()
    }
}

/// Runs the section and prints its table.
pub fn run() {
    println!();
    let root = rustix::process::geteuid().is_root();
    let scoped = root && machined257::cgroup2_available();
    let slice = scoped.then(|| ScopeSlice::new("pairs"));
    let leaders: Vec<Proc> = (0..PAIRS_PER_ROUND)
        .map(|n| {
            let leader = Proc::sleeper();
            if let Some(slice) = &slice {
                slice.put(&format!("pair{n}"), leader.pid());
            }
            leader
        })
        .collect();
    let pids: Vec<u32> = leaders.iter().map(Proc::pid).collect();
    let berth = Registry::with(Options {
        cgroup: false,
        env: vec![("RUST_LOG".to_owned(), "info".to_owned())],
        ..Options::default()
    });
    let machined = match (scoped, machined257::available()) {
        (true, true) => Some(Machined257::start()),
        (false, _) => {
            println!(
                "machined 257 not measured: it needs root and cgroup2 at /sys/fs/cgroup/unified"
            );
            None
        }
        (_, false) => {
            println!("machined 257 not measured: no /opt/trixie (scripts/setup-test-deps.sh)");
            None
        }
    };
    let mut targets = vec![Target {
        name: "Berth",
        socket: berth.socket(),
        pid: Some(berth.pid()),
    }];
    if let Some(machined) = &machined {
        targets.push(Target {
            name: "machined 257",
            socket: machined.socket(),
            pid: Some(machined.pid()),
        });
    }
    let floor = Floor::start();
    targets.push(Target {
        name: "floor",
        socket: floor.socket(),
        pid: None,
    });
    let load_before = load_average();
    let floors: Vec<Duration> = targets.iter().map(round_trip_floor).collect();
    let figures = measure(&targets, &pids);
    let load_after = load_average();
    let syscalls: Vec<Option<f64>> = targets
        .iter()
        .map(|t| syscalls_per_pair(t, &pids))
        .collect();
    print_table(&targets, &figures, &syscalls);
    for (target, floor) in targets.iter().zip(floors) {
        println!(
            "floor, {}: a GetInfo round trip on one connection takes {:.1} µs (median of {FLOOR_CALLS}); a pair is two round trips",
            target.name,
            micros(floor)
        );
    }
    println!("load average before: {load_before}, after: {load_after}");
}

/// Every configuration, in alternating rounds; `figures[connections index][target index]`.
fn measure(targets: &[Target], leaders: &[u32]) -> Vec<Vec<Figures>> {
    for target in targets {
        drive(target, leaders, 1, 100, "warmup");
    }
    let mut figures: Vec<Vec<Figures>> = CONNECTIONS
        .iter()
        .map(|_| targets.iter().map(|_| Figures::default()).collect())
        .collect();
    for round in 0..ROUNDS {
        for (c, &connections) in CONNECTIONS.iter().enumerate() {
            for (t, target) in targets.iter().enumerate() {
                let per_connection = PAIRS_PER_ROUND / connections;
                let tag = format!("r{round}c{connections}");
                figures[c][t].add(drive(target, leaders, connections, per_connection, &tag));
            }
        }
    }
    figures
}

/// The median time of a call that does next to nothing, with the same client.
fn round_trip_floor(target: &Target) -> Duration {
    let mut client = Client::connect(&target.socket);
    let call = r#"{"method":"org.varlink.service.GetInfo","parameters":{}}"#;
    let times: Vec<Duration> = (0..FLOOR_CALLS)
        .map(|_| {
            let started = Instant::now();
            client.call(call).expect("GetInfo");
            started.elapsed()
        })
        .collect();
    percentile(&times, 0.5)
}

/// `pairs` Register+Unregister pairs on each of `connections` connections at once.
fn drive(target: &Target, leaders: &[u32], connections: usize, pairs: usize, tag: &str) -> Figures {
    let start = Arc::new(Barrier::new(connections + 1));
    let threads: Vec<_> = (0..connections)
        .map(|n| {
            let mut client = Client::connect(&target.socket);
            let start = Arc::clone(&start);
            let own = leaders[n * pairs..][..pairs].to_vec();
            let prefix = format!("pair{n}-{tag}-");
            std::thread::spawn(move || {
                start.wait();
                client.pairs(&prefix, &own)
            })
        })
        .collect();
    start.wait();
    let started = Instant::now();
    let mut figures = Figures {
        pairs: connections * pairs,
        ..Figures::default()
    };
    for thread in threads {
        let (times, busy) = thread
            .join()
            .unwrap_or_else(|_| panic!("{}: a pair failed", target.name));
        figures.register.extend(times);
        figures.busy += busy;
    }
    figures.wall = started.elapsed();
    figures
}

/// The neutral client: blocking, one connection, one call at a time.
struct Client {
    reader: BufReader<UnixStream>,
    reply: Vec<u8>,
}

impl Client {
    fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Self {
            reader: BufReader::new(stream),
            reply: Vec::with_capacity(256),
        }
    }

    /// Registers and unregisters `PREFIXk` led by `leaders[k]`, for every leader; returns
    /// how long each Register took and how often a leader was still busy.
    fn pairs(&mut self, prefix: &str, leaders: &[u32]) -> (Vec<Duration>, usize) {
        let mut times = Vec::with_capacity(leaders.len());
        let mut busy = 0;
        for (k, &leader) in leaders.iter().enumerate() {
            let name = format!("{prefix}{k}");
            let started = Instant::now();
            while !self.register(&name, leader) {
                busy += 1;
                assert!(busy < 100_000, "{name}: the leader stays busy");
                std::thread::yield_now();
            }
            times.push(started.elapsed());
            self.call(&format!(
                r#"{{"method":"io.systemd.Machine.Unregister","parameters":{{"name":"{name}"}}}}"#
            ))
            .expect("Unregister");
        }
        (times, busy)
    }

    /// Registers `name` led by `leader`; `false` when the leader still belongs to a machine
    /// (machined 257 before its garbage collection: `errno` 17).
    fn register(&mut self, name: &str, leader: u32) -> bool {
        let reply = self.call(&format!(
            r#"{{"method":"io.systemd.Machine.Register","parameters":{{"name":"{name}","class":"container","leaderProcessId":{{"pid":{leader}}}}}}}"#
        ));
        match reply {
            Ok(()) => true,
            Err(error) if error.contains(r#""errno":17"#) => false,
            Err(error) => panic!("Register {name}: {error}"),
        }
    }

    /// Sends one call and reads its reply; an error reply is returned as it came.
    fn call(&mut self, message: &str) -> Result<(), String> {
        let mut frame = Vec::with_capacity(message.len() + 1);
        frame.extend_from_slice(message.as_bytes());
        frame.push(0);
        self.reader.get_mut().write_all(&frame).expect("send");
        self.reply.clear();
        if self.reader.buffer().is_empty() {
            wait_readable(self.reader.get_ref());
        }
        let read = self.reader.read_until(0, &mut self.reply).expect("reply");
        assert!(read > 0, "{message}: the service hung up");
        let reply = String::from_utf8_lossy(&self.reply);
        match reply.contains(r#""error""#) {
            true => Err(reply.into_owned()),
            false => Ok(()),
        }
    }
}

/// Waits until a reply can be read, as sd-varlink's clients do (`ppoll` for `POLLIN`, then
/// `read`). A client blocked in `read` itself would also be woken, for nothing, whenever the
/// service reads the client's own message (the kernel wakes the socket's waiters when its send
/// buffer empties, and a reader's wait does not filter by event).
fn wait_readable(stream: &UnixStream) {
    let mut fds = [PollFd::new(stream, PollFlags::IN)];
    let timeout = rustix::time::Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    let ready = rustix::event::poll(&mut fds, Some(&timeout)).expect("poll");
    assert!(ready > 0, "no reply within 10 s");
}

/// The service's system calls per pair, from `strace -c -f` over a short run on one
/// connection; `None` without strace.
fn syscalls_per_pair(target: &Target, leaders: &[u32]) -> Option<f64> {
    let pid = target.pid?;
    let output = tempfile::NamedTempFile::new().expect("temp file");
    let mut strace = Command::new("strace")
        .args(["-c", "-f", "-q", "-o"])
        .arg(output.path())
        .arg("-p")
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait::until("strace to attach to every thread", || traced_threads(pid));
    drive(target, leaders, 1, TRACED_PAIRS, "strace");
    let pid = rustix::process::Pid::from_raw(strace.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    strace.wait().expect("strace");
    let summary = std::fs::read_to_string(output.path()).ok()?;
    let total = summary.lines().find(|l| l.trim_end().ends_with(" total"))?;
    let calls: f64 = total.split_whitespace().nth(3)?.parse().ok()?;
    Some(calls / TRACED_PAIRS as f64)
}

/// Whether every thread of `pid` is traced.
fn traced_threads(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).all(|task| {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .is_some_and(|tracer| tracer.trim() != "0")
    })
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_table(targets: &[Target], figures: &[Vec<Figures>], syscalls: &[Option<f64>]) {
    println!(
        "Register+Unregister pairs ({ROUNDS} alternating rounds of {PAIRS_PER_ROUND} pairs each; same client, same leaders, state on tmpfs)"
    );
    println!(
        "{:<13}{:<14}{:>10}{:>16}{:>10}{:>15}{:>10}",
        "connections", "service", "pairs/s", "Register p50 µs", "p99 µs", "syscalls/pair", "busy"
    );
    for (c, connections) in CONNECTIONS.iter().enumerate() {
        for (t, target) in targets.iter().enumerate() {
            let f = &figures[c][t];
            let calls = match (c, syscalls[t]) {
                (0, Some(calls)) => format!("{calls:.1}"),
                _ => String::new(),
            };
            println!(
                "{connections:<13}{:<14}{:>10.0}{:>16.1}{:>10.1}{calls:>15}{:>10}",
                target.name,
                f.rate(),
                micros(percentile(&f.register, 0.5)),
                micros(percentile(&f.register, 0.99)),
                f.busy,
            );
        }
        let of = |name: &str| {
            let t = targets.iter().position(|t| t.name == name)?;
            Some(&figures[c][t])
        };
        for (label, fast, slow) in [
            ("Berth/257", "Berth", "machined 257"),
            ("floor/257", "floor", "machined 257"),
            ("Berth/floor", "Berth", "floor"),
        ] {
            if let (Some(fast), Some(slow)) = (of(fast), of(slow)) {
                print_ratios(label, fast, slow);
            }
        }
    }
    println!(
        "(ratios A/B: pairs/s A over B, latencies B over A: above 1 is A faster; floor: only the \
         system calls compatibility and durability require, see registry/floor.rs; busy: Registers refused while machined had not yet freed the leader's machine of the \
         previous round, retried and timed with the retries)"
    );
}

/// One line of ratios between two services' figures.
fn print_ratios(label: &str, fast: &Figures, slow: &Figures) {
    let latency = |f: &Figures, p| micros(percentile(&f.register, p));
    println!(
        "{:<13}{label:<14}{:>9.2}x{:>15.2}x{:>9.2}x",
        "",
        fast.rate() / slow.rate(),
        latency(slow, 0.5) / latency(fast, 0.5),
        latency(slow, 0.99) / latency(fast, 0.99),
    );
}
