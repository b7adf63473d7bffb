//! Registry load test: many clients at once, hostile clients among them, a connection flood,
//! and machines up to the registry's budget. Prints figures; asserts only that the registry
//! keeps serving. Run with
//! `cargo build --release --workspace && cargo bench -p berth-tests --bench load`
//! (root, for the descriptor limits; state on tmpfs like `/run`).
//!
//! 1. Latency: 1,000 connections at once (900 calling `List` of one machine, 100 registering
//!    and unregistering their own machine) for a few seconds, then again with one client that
//!    sent half a message and stalls and one that asks for every machine again and again and
//!    never reads the replies: p50/p99 of the others, and the ratio (goal: p99 within 2x).
//! 2. Memory and flood: one 15 MiB message, then connections until the registry refuses one,
//!    then all closed: it serves again. Registry RSS fresh, at the peaks and two seconds after
//!    each (goal: back under twice the fresh size).
//! 3. Scale: machines registered until the registry's budget refuses one: RSS at 1,000 and at
//!    the maximum (goal: at most 16 MB), `List` of all machines at both.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use berth_interfaces::client::MachineProxy;
use berth_interfaces::machine::{ListRequest, MachineLookup};
use berth_tests::daemon::{Options, Registry};
use berth_tests::machines::{by_name, container};
use berth_tests::process::Proc;

const CONNECTIONS: usize = 1000;
const REGISTRARS: usize = 100;
const ROUND: Duration = Duration::from_secs(4);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registry = Registry::with(Options {
        cgroup: false,
        ..Options::default()
    });
    println!("registry load test (load average {})", load_average());
    let leaders: Vec<Proc> = (0..REGISTRARS).map(|_| Proc::sleeper()).collect();
    let fixed = Proc::sleeper();
    register(&registry, "fixed", fixed.pid()).await;
    let fresh = rss_kb(registry.pid());

    let calm = round(&registry, &leaders).await;
    let hostile = HostileClients::start(&registry);
    let stormy = round(&registry, &leaders).await;
    drop(hostile);
    print_latency(&calm, &stormy);

    big_message(&registry, fresh);
    flood(&registry, fresh);
    scale(&registry).await;
    println!("\nload average at the end: {}", load_average());
}

async fn register(registry: &Registry, name: &str, leader: u32) {
    let mut conn = registry.connect().await;
    conn.register(&container(name, leader))
        .await
        .expect("the registry answers")
        .unwrap_or_else(|e| panic!("registering {name}: {e}"));
}

/// Latencies of one round, in µs.
type Samples = Vec<f64>;

/// All connections at once for [`ROUND`]; the latencies of every call.
async fn round(registry: &Registry, leaders: &[Proc]) -> Samples {
    let deadline = Instant::now() + ROUND;
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        let conn = registry.connect().await;
        let leader = leaders.get(i).map(Proc::pid);
        tasks.push(tokio::spawn(client(conn, i, leader, deadline)));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a client"));
    }
    all
}

/// One client: `List` of the fixed machine, or (with a leader) Register+Unregister pairs,
/// until `deadline`.
async fn client(
    mut conn: zlink::Connection<zlink::tokio::unix::Stream>,
    index: usize,
    leader: Option<u32>,
    deadline: Instant,
) -> Samples {
    let mut samples = Vec::new();
    let name = format!("load{index}");
    while Instant::now() < deadline {
        let started = Instant::now();
        match leader {
            Some(leader) => {
                conn.register(&container(&name, leader))
                    .await
                    .expect("an answer")
                    .expect("registered");
                conn.unregister(&MachineLookup::by_name(&name))
                    .await
                    .expect("an answer")
                    .expect("unregistered");
            }
            None => {
                conn.list(&by_name("fixed"))
                    .await
                    .expect("an answer")
                    .expect("listed");
            }
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples
}

/// A client that sent half a message and stalls, and one that asks for every machine again
/// and again without ever reading a reply.
struct HostileClients {
    _staller: UnixStream,
    _deaf: UnixStream,
}

impl HostileClients {
    fn start(registry: &Registry) -> Self {
        let mut staller = UnixStream::connect(registry.socket()).expect("connect");
        staller
            .write_all(br#"{"method":"io.systemd.Machine.Li"#)
            .expect("half a message");
        let mut deaf = UnixStream::connect(registry.socket()).expect("connect");
        deaf.set_nonblocking(true).expect("non-blocking");
        let call = b"{\"method\":\"io.systemd.Machine.List\",\"parameters\":{},\"more\":true}\0";
        // Until the registry stops reading: its replies fill the socket, it blocks on them.
        while deaf.write(call).is_ok() {}
        Self {
            _staller: staller,
            _deaf: deaf,
        }
    }
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn print_latency(calm: &Samples, stormy: &Samples) {
    println!(
        "\n## {CONNECTIONS} connections ({} List, {REGISTRARS} Register+Unregister), {} s each",
        CONNECTIONS - REGISTRARS,
        ROUND.as_secs()
    );
    println!("| | calls | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    for (label, samples) in [
        ("alone", calm),
        ("with a staller and a deaf client", stormy),
    ] {
        println!(
            "| {label} | {} | {:.0} | {:.0} |",
            samples.len(),
            percentile(samples, 0.5),
            percentile(samples, 0.99)
        );
    }
    let ratio = percentile(stormy, 0.99) / percentile(calm, 0.99);
    println!(
        "p99 with / without the two: {ratio:.2} ({})",
        if ratio <= 2.0 {
            "goal met"
        } else {
            "goal: <= 2"
        }
    );
}

/// One 15 MiB message (a `List` of a name that long, refused), then the registry's memory.
fn big_message(registry: &Registry, fresh: u64) {
    let mut conn = UnixStream::connect(registry.socket()).expect("connect");
    let mut call = b"{\"method\":\"io.systemd.Machine.List\",\"parameters\":{\"name\":\"".to_vec();
    call.resize(call.len() + 15 * 1024 * 1024, b'x');
    call.extend_from_slice(b"\"}}\0");
    conn.write_all(&call).expect("the message");
    let reply = read_reply(&mut conn);
    let peak = rss_kb(registry.pid());
    std::thread::sleep(Duration::from_secs(2));
    println!("\n## Memory\nregistry RSS: {fresh} kB fresh");
    println!(
        "one 15 MiB message (answered {}): {peak} kB right after, {} kB two seconds after",
        reply.trim_end_matches('\0'),
        rss_kb(registry.pid())
    );
}

/// Opens connections until the registry refuses one, closes them all, and checks it serves.
fn flood(registry: &Registry, fresh: u64) {
    let started = Instant::now();
    let mut held = Vec::new();
    let refused = loop {
        let mut conn = UnixStream::connect(registry.socket()).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let reply = get_info(&mut conn);
        if reply.contains("\"error\"") {
            break reply;
        }
        held.push(conn);
    };
    let peak = rss_kb(registry.pid());
    let count = held.len();
    drop(held);
    let reply = serves_again(registry);
    std::thread::sleep(Duration::from_secs(2));
    println!("\n## Flood");
    println!(
        "{count} connections served, the next refused with {} ({:.1} s); after closing them: {}",
        refused.trim_end_matches('\0'),
        started.elapsed().as_secs_f64(),
        if reply.contains("Berth") {
            "serves again"
        } else {
            "NOT SERVING"
        }
    );
    let after = rss_kb(registry.pid());
    println!(
        "registry RSS: {peak} kB at the peak, {after} kB two seconds after ({:.2}x fresh)",
        after as f64 / fresh as f64
    );
}

fn get_info(conn: &mut UnixStream) -> String {
    let _ = conn.write_all(b"{\"method\":\"org.varlink.service.GetInfo\"}\0");
    read_reply(conn)
}

fn read_reply(conn: &mut UnixStream) -> String {
    let mut reply = Vec::new();
    let mut byte = [0u8; 4096];
    while !reply.ends_with(b"\0") {
        match conn.read(&mut byte) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&byte[..n]),
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

fn serves_again(registry: &Registry) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = UnixStream::connect(registry.socket()).expect("connect");
        let reply = get_info(&mut conn);
        if reply.contains("Berth") || Instant::now() > deadline {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Registers machines until the registry refuses one.
async fn scale(registry: &Registry) {
    let mut conn = registry.connect().await;
    let mut leaders = Vec::new();
    let mut at_1000 = None;
    loop {
        let leader = Proc::sleeper();
        let name = format!("scale{}", leaders.len());
        match conn.register(&container(&name, leader.pid())).await {
            Ok(Ok(())) => leaders.push(leader),
            outcome => {
                println!(
                    "\n## Scale\nregistering machine {} refused: {outcome:?}",
                    leaders.len() + 1
                );
                break;
            }
        }
        if leaders.len() == 1000 {
            at_1000 = Some((rss_kb(registry.pid()), list_all_ms(&mut conn).await));
        }
    }
    let at_max = (rss_kb(registry.pid()), list_all_ms(&mut conn).await);
    let (rss_1000, list_1000) = at_1000.expect("at least 1,000 machines");
    println!("| machines | registry RSS kB | List all, median ms |");
    println!("|---|---|---|");
    println!("| 1,000 | {rss_1000} | {list_1000:.1} |");
    println!(
        "| {} (the budget) | {} | {:.1} |",
        leaders.len(),
        at_max.0,
        at_max.1
    );
    println!(
        "RSS at the maximum: {:.1} MB ({})",
        at_max.0 as f64 / 1024.0,
        if at_max.0 <= 16 * 1024 {
            "goal met"
        } else {
            "goal: <= 16 MB"
        }
    );
}

async fn list_all_ms(conn: &mut zlink::Connection<zlink::tokio::unix::Stream>) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        conn.list_all(&ListRequest::default())
            .await
            .expect("an answer")
            .expect("listed");
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    percentile(&samples, 0.5)
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
