//! `io.systemd.MachineImage.List` of a pool of 1,000 directory images (each a small tree with
//! os-release, hostname, machine-id and machine-info), without and with metadata, Berth beside
//! the real systemd-machined 257 on the same directory (on tmpfs; machined sees it as its
//! `/var/lib/machines`, Berth through `BERTH_IMAGE_PATH`), in the same run, by the same neutral
//! client (blocking, one connection, `more`, every reply read). Rounds alternate between the
//! two services.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::daemon::{Options, Registry, tmpfs_tempdir};
use berth_tests::machined257::{self, Machined257};

/// Images in the pool.
const IMAGES: usize = 1000;
/// Listings per service and metadata setting (alternating).
const ROUNDS: usize = 5;

fn build_pool(dir: &Path) {
    for n in 0..IMAGES {
        let etc = dir.join(format!("image{n:04}/etc"));
        std::fs::create_dir_all(&etc).expect("image");
        std::fs::write(
            etc.join("os-release"),
            format!("ID=bench\nVERSION_ID={n}\n"),
        )
        .expect("os-release");
        std::fs::write(etc.join("hostname"), format!("image{n}\n")).expect("hostname");
        std::fs::write(etc.join("machine-id"), format!("{n:032x}\n")).expect("machine-id");
        std::fs::write(etc.join("machine-info"), "PRETTY_HOSTNAME=Bench\n").expect("machine-info");
    }
}

/// Lists every image; returns how many replies came and how long it took.
fn list_all(socket: &Path, metadata: bool) -> (usize, Duration) {
    let stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut reader = BufReader::new(stream);
    let acquire = if metadata { "yes" } else { "no" };
    let call = format!(
        r#"{{"method":"io.systemd.MachineImage.List","parameters":{{"acquireMetadata":"{acquire}"}},"more":true}}"#
    );
    let started = Instant::now();
    reader.get_mut().write_all(call.as_bytes()).expect("send");
    reader.get_mut().write_all(b"\0").expect("send");
    let mut replies = 0;
    let mut reply = Vec::new();
    loop {
        reply.clear();
        let read = reader.read_until(0, &mut reply).expect("reply");
        assert!(read > 0, "the service hung up");
        let text = String::from_utf8_lossy(&reply);
        assert!(!text.contains(r#""error""#), "{text}");
        replies += 1;
        if !text.contains(r#""continues":true"#) {
            return (replies, started.elapsed());
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs the comparison and prints its table.
pub fn run() {
    let pool = tmpfs_tempdir("berth-bench-images-");
    build_pool(pool.path());
    let berth = Registry::with(Options {
        cgroup: false,
        env: vec![(
            "BERTH_IMAGE_PATH".into(),
            pool.path().to_str().expect("UTF-8").into(),
        )],
        ..Options::default()
    });
    let machined = (machined257::available() && rustix::process::geteuid().is_root())
        .then(|| Machined257::start_with_images(Some(pool.path())));
    println!();
    println!(
        "MachineImage.List of {IMAGES} directory images ({ROUNDS} alternating rounds, median; same client, pool on tmpfs)"
    );
    println!(
        "{:<10} {:>14} {:>14} {:>8}",
        "metadata", "Berth ms", "machined ms", "ratio"
    );
    for metadata in [false, true] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (replies, took) = list_all(&berth.socket(), metadata);
            assert_eq!(replies, IMAGES + 1, "Berth's images (with .host)");
            ours.push(took);
            if let Some(machined) = &machined {
                let (replies, took) = list_all(&machined.socket(), metadata);
                assert!(replies > IMAGES, "machined's images: {replies}");
                theirs.push(took);
            }
        }
        let ours = median(ours);
        let label = if metadata { "yes" } else { "no" };
        match theirs.is_empty() {
            true => println!("{label:<10} {:>14.1} {:>14} {:>8}", ms(ours), "-", "-"),
            false => {
                let theirs = median(theirs);
                let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
                println!(
                    "{label:<10} {:>14.1} {:>14.1} {:>7.1}x",
                    ms(ours),
                    ms(theirs),
                    ratio
                );
            }
        }
    }
    println!("(ratio: machined's time over Berth's; above 1 is Berth faster)");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
