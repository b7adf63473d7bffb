//! The timed calls: glibc's `getpwnam_r`/`getpwuid_r` (through nix, so without unsafe code) in
//! a helper process, which is this benchmark's own executable started again in a private mount
//! namespace where only one userdb provider is visible and nss-systemd is configured.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::bridge::userdb_client;
use berth_tests::clients::run;
use nix::unistd::{Uid, User};

/// The argument that makes the executable a helper.
const HELPER: &str = "--lookup-helper";
/// Untimed calls first: the NSS module gets loaded, caches get warm.
const WARM_UP: usize = 20;

/// Which call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `getpwnam("vu-NAME-ID")`.
    Getpwnam,
    /// `getpwuid(UID)`.
    Getpwuid,
}

impl Call {
    fn as_str(self) -> &'static str {
        match self {
            Self::Getpwnam => "getpwnam",
            Self::Getpwuid => "getpwuid",
        }
    }
}

/// Median and 99th percentile of a run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Median.
    pub median: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// One user to look up: its name and its UID.
pub type Key = (String, u32);

impl Timing {
    /// The median and 99th percentile of durations in ns.
    pub fn of(mut nanos: Vec<u64>) -> Self {
        nanos.sort_unstable();
        let at = |q: f64| {
            let rank = ((nanos.len() as f64 * q).ceil() as usize).clamp(1, nanos.len());
            Duration::from_nanos(nanos[rank - 1])
        };
        Self {
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

/// Times `call` for each of `keys` in a helper that sees only the provider in `userdb_dir`;
/// returns the durations in ns.
///
/// # Panics
/// When a lookup fails or gives the wrong user.
pub fn measure(userdb_dir: &Path, work: &Path, call: Call, keys: &[Key]) -> Vec<u64> {
    let nsswitch = berth_tests::bridge::write_nsswitch_conf(work);
    let list = work.join("keys");
    let text = keys.iter().fold(String::new(), |mut text, (name, uid)| {
        let _ = writeln!(text, "{name} {uid}");
        text
    });
    std::fs::write(&list, text).expect("key list");
    let exe = std::env::current_exe().expect("own executable");
    let list = list.to_str().expect("UTF-8 path");
    let output = run(&mut userdb_client(
        userdb_dir,
        &nsswitch,
        exe,
        &[HELPER, call.as_str(), list],
    ));
    assert!(
        output.success,
        "{} helper failed: {}",
        call.as_str(),
        output.stderr
    );
    let nanos: Vec<u64> = output
        .stdout
        .lines()
        .map(|line| line.parse().expect("a duration in ns"))
        .collect();
    assert_eq!(nanos.len(), keys.len(), "one timing per call");
    nanos
}

/// In the helper process: times the calls and prints one duration (ns) per line. Returns
/// `None` when this process is not a helper.
pub fn helper_main() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(HELPER) {
        return None;
    }
    let call = match args.get(2).map(String::as_str) {
        Some("getpwnam") => Call::Getpwnam,
        Some("getpwuid") => Call::Getpwuid,
        _ => return Some(2),
    };
    let keys = read_keys(Path::new(args.get(3)?));
    for key in keys.iter().cycle().take(WARM_UP) {
        if let Err(message) = lookup(call, key) {
            eprintln!("{message}");
            return Some(1);
        }
    }
    let mut out = String::new();
    for key in &keys {
        let start = Instant::now();
        let result = lookup(call, key);
        let elapsed = start.elapsed();
        if let Err(message) = result {
            eprintln!("{message}");
            return Some(1);
        }
        let _ = writeln!(out, "{}", elapsed.as_nanos());
    }
    print!("{out}");
    Some(0)
}

fn read_keys(path: &Path) -> Vec<Key> {
    std::fs::read_to_string(path)
        .expect("key list")
        .lines()
        .filter_map(|line| {
            let (name, uid) = line.split_once(' ')?;
            Some((name.to_owned(), uid.parse().ok()?))
        })
        .collect()
}

/// One call; the user must be the expected one.
fn lookup(call: Call, (name, uid): &Key) -> Result<(), String> {
    let found = match call {
        Call::Getpwnam => User::from_name(name),
        Call::Getpwuid => User::from_uid(Uid::from_raw(*uid)),
    };
    match found {
        Ok(Some(user)) if user.name == *name && user.uid.as_raw() == *uid => Ok(()),
        other => Err(format!("{} of {name}/{uid} gave {other:?}", call.as_str())),
    }
}
