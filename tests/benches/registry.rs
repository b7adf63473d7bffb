//! Registry scale benchmark: the cost of registering, looking up and listing machines at a
//! small and a large registry size, the time from a leader's death to its removal, and
//! Register+Unregister pairs per second beside the real systemd-machined 257 ([`pairs`]).
//!
//! Lookups by name and by leader PID should not grow with the number of machines, `List`
//! with `more` grows linearly (one reply per machine). Run with
//! `cargo build --release --workspace && cargo bench -p berth-tests --bench registry`.
//! Absolute times depend on the (shared, noisy) machine; compare the ratios. Add `-- scale` or
//! `-- pairs` to run one section.

use std::time::{Duration, Instant};

use berth_interfaces::client::{MachineProxy, Watch};
use berth_interfaces::machine::{ListRequest, MachineLookup};
use berth_interfaces::registry::MachineEvent;
use berth_tests::daemon::{Options, Registry};
use berth_tests::machines::{by_name, container};
use berth_tests::process::Proc;

#[path = "registry/floor.rs"]
mod floor;
#[path = "registry/images.rs"]
mod images;
#[path = "registry/pairs.rs"]
mod pairs;

const SIZES: [usize; 2] = [100, 2000];
const LOOKUPS: usize = 2000;
const DEATHS: usize = 100;

/// Picks one operation's samples out of a row.
type Samples = fn(&Row) -> &Vec<Duration>;

#[derive(Default)]
struct Row {
    register: Vec<Duration>,
    by_name: Vec<Duration>,
    by_pid: Vec<Duration>,
    list_all: Vec<Duration>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench -p berth-tests --bench registry -- pairs` (or `scale`, `images`) runs one
    // section.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    if wanted("scale") {
        scale().await;
    }
    if wanted("pairs") {
        pairs::run();
    }
    if wanted("images") {
        images::run();
    }
}

async fn scale() {
    let registry = Registry::with(Options {
        cgroup: false,
        ..Options::default()
    });
    let mut leaders: Vec<Proc> = Vec::new();
    let mut rows = Vec::new();
    for size in SIZES {
        let row = measure(&registry, &mut leaders, size).await;
        rows.push((size, row));
    }
    let deaths = leader_deaths(&registry).await;
    print_table(&rows, &deaths);
}

async fn measure(registry: &Registry, leaders: &mut Vec<Proc>, size: usize) -> Row {
    let mut conn = registry.connect().await;
    let mut row = Row::default();
    while leaders.len() < size {
        let leader = Proc::sleeper();
        let request = container(&format!("m{}", leaders.len()), leader.pid());
        let started = Instant::now();
        let result = conn.register(&request).await;
        row.register.push(started.elapsed());
        if !matches!(result, Ok(Ok(()))) {
            let log = registry.log();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            panic!("registering {} failed: {result:?}\n{tail:#?}", request.name);
        }

        leaders.push(leader);
    }
    for i in 0..LOOKUPS {
        let index = i * 7919 % size;
        let started = Instant::now();
        conn.list(&by_name(&format!("m{index}")))
            .await
            .unwrap()
            .unwrap();
        row.by_name.push(started.elapsed());
        let request = ListRequest {
            lookup: MachineLookup::by_pid(leaders[index].pid()),
            ..ListRequest::default()
        };
        let started = Instant::now();
        conn.list(&request).await.unwrap().unwrap();
        row.by_pid.push(started.elapsed());
    }
    for _ in 0..10 {
        let started = Instant::now();
        let all = conn
            .list_all(&ListRequest::default())
            .await
            .unwrap()
            .unwrap();
        row.list_all.push(started.elapsed());
        assert_eq!(all.len(), size + 1);
    }
    row
}

/// Kills leaders one by one and times each until the registry announces the removal.
async fn leader_deaths(registry: &Registry) -> Vec<Duration> {
    let mut conn = registry.connect().await;
    let mut watch = Watch::start(registry.connect().await).await.unwrap();
    while watch.next().await.unwrap().unwrap().event != MachineEvent::Synchronized {}
    let mut times = Vec::new();
    for i in 0..DEATHS {
        let mut leader = Proc::sleeper();
        conn.register(&container(&format!("dying{i}"), leader.pid()))
            .await
            .unwrap()
            .unwrap();
        while watch.next().await.unwrap().unwrap().event != MachineEvent::Added {}
        let started = Instant::now();
        leader.kill();
        while watch.next().await.unwrap().unwrap().event != MachineEvent::Removed {}
        times.push(started.elapsed());
    }
    times
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn micros(d: Duration) -> String {
    format!("{:>9.1}", d.as_secs_f64() * 1e6)
}

fn print_table(rows: &[(usize, Row)], deaths: &[Duration]) {
    println!("registry scale (µs; median / p99)");
    println!(
        "{:<26}{:>22}{:>22}{:>10}",
        "operation", "100 machines", "2000 machines", "ratio"
    );
    let ops: [(&str, Samples); 4] = [
        ("Register", |r| &r.register),
        ("List by name", |r| &r.by_name),
        ("List by leader PID", |r| &r.by_pid),
        ("List all (more)", |r| &r.list_all),
    ];
    for (name, samples) in ops {
        let (small, large) = (samples(&rows[0].1), samples(&rows[1].1));
        let (m_small, m_large) = (percentile(small, 0.5), percentile(large, 0.5));
        println!(
            "{name:<26}{} /{}{} /{}{:>10.2}",
            micros(m_small),
            micros(percentile(small, 0.99)),
            micros(m_large),
            micros(percentile(large, 0.99)),
            m_large.as_secs_f64() / m_small.as_secs_f64()
        );
    }
    println!(
        "{:<26}{} /{}   (leader SIGKILL → Watch 'removed', {} runs)",
        "leader death → removal",
        micros(percentile(deaths, 0.5)),
        micros(percentile(deaths, 0.99)),
        deaths.len()
    );
}
