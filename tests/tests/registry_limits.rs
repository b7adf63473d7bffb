//! The registry stays reachable for root whatever unprivileged users hold, tells a refused
//! client why, and does not flood its log with refusals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use berth_tests::clients::RawClient;
use berth_tests::daemon::{Options, Registry};
use berth_tests::process::Proc;
use berth_tests::require;
use berth_tests::users::as_user;
use serde_json::json;

/// A descriptor limit that gives the registry 128 connections: 112 for unprivileged users
/// together, 32 for each of them.
const NOFILE: u64 = 1024;

/// Opens up to N connections to the socket, calls GetInfo on each, prints how many were
/// served and which errors the others got, then holds them until stdin closes.
const HOARDER: &str = r#"
import json, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
held, served, refused = [], 0, {}
for _ in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(b'{"method":"org.varlink.service.GetInfo"}\0')
    except OSError:
        pass
    reply = b""
    while not reply.endswith(b"\0"):
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    message = json.loads(reply.rstrip(b"\0") or b"{}")
    if "error" in message:
        key = "%s %s" % (message["error"], message["parameters"].get("errno"))
        refused[key] = refused.get(key, 0) + 1
        s.close()
    else:
        served += 1
        held.append(s)
print(json.dumps({"served": served, "refused": refused}), flush=True)
sys.stdin.read()
"#;

struct Hoarder {
    proc: Proc,
    report: serde_json::Value,
}

/// A user holding up to `count` connections; reports what it got.
fn hoard(uid: u32, registry: &Registry, count: usize) -> Hoarder {
    let socket = registry.socket();
    let mut proc = Proc::spawn(
        as_user(uid, "/usr/bin/python3")
            .args(["-c", HOARDER])
            .arg(&socket)
            .arg(count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let child: &mut Child = proc.child();
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a report");
    let report = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
    Hoarder { proc, report }
}

impl Hoarder {
    fn served(&self) -> u64 {
        self.report["served"].as_u64().unwrap()
    }

    fn refused(&self, errno: i32) -> u64 {
        self.report["refused"][format!("io.systemd.System {errno}")]
            .as_u64()
            .unwrap_or(0)
    }

    fn release(mut self) {
        drop(self.proc.child().stdin.take());
        let _ = self.proc.child().wait();
    }
}

#[test]
fn unprivileged_users_cannot_take_the_registry_from_root() {
    if !(require::root() && require::program("setpriv") && require::program("prlimit")) {
        return;
    }
    let registry = Registry::with(Options {
        nofile: Some(NOFILE),
        ..Options::default()
    });
    // One user gets its share (32) and is told EMFILE for the rest.
    let first = hoard(65530, &registry, 40);
    assert_eq!(first.served(), 32, "{:?}", first.report);
    assert_eq!(first.refused(libc::EMFILE), 8, "{:?}", first.report);
    // More users fill the unprivileged part (112) and are told ENFILE.
    let others: Vec<Hoarder> = (65531..=65534)
        .map(|uid| hoard(uid, &registry, 32))
        .collect();
    let served: u64 = first.served() + others.iter().map(Hoarder::served).sum::<u64>();
    let full: u64 = others.iter().map(|h| h.refused(libc::ENFILE)).sum();
    assert_eq!(served, 112);
    assert_eq!(full, 32 * 4 - (112 - 32));
    // Root still gets in.
    let mut root = RawClient::connect(&registry.socket());
    let reply = root.method("org.varlink.service.GetInfo", json!({}));
    assert_eq!(reply["parameters"]["vendor"], "Berth", "{reply}");
    // The refusals were logged once, not once each.
    let logged = registry.log().matches("Refusing a connection").count();
    assert!(logged <= 2, "{logged} refusals logged");
    // Once the users let go, they get in again.
    first.release();
    others.into_iter().for_each(Hoarder::release);
    let again = hoard(65530, &registry, 1);
    assert_eq!(again.served(), 1, "{:?}", again.report);
}
