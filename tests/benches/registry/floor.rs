//! The floor of a Register+Unregister pair: a server that does only the system calls any
//! registry keeping machined's compatibility and durability must make, and nothing else: no
//! event loop (a blocking thread per connection), no validation, no logging, no indices.
//!
//! Per Register: pin the leader (`pidfd_open`), read its cgroup for its unit (`/proc/PID/cgroup`,
//! which `unit:` links and `sd_pid_get_machine_name()` need), watch it (`epoll_ctl`), check it
//! is not a zombie already (`poll`), write the state file libsystemd reads atomically (create,
//! write, rename, close), link `unit:UNIT` to it, publish the host-table entry the NSS module
//! reads (`linkat`), reply. Per Unregister: stop watching, close the pidfd, remove the three
//! files, reply. Both read the request with one `read` and answer with one `write`.
//!
//! It answers nothing else (but a bare `GetInfo`) and checks nothing: it exists so the pairs table can show how close
//! a service can come to the kernel's cost of the work, on this machine, in the same run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::event::epoll;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use rustix::process::{Pid, PidfdFlags};
use serde::Deserialize;
use tempfile::TempDir;

/// The floor server, serving until the benchmark ends.
pub struct Floor {
    dir: TempDir,
}

/// The directories it writes to, and the epoll set watching every leader.
struct Shared {
    machines: OwnedFd,
    hosts: OwnedFd,
    watch: OwnedFd,
}

#[derive(Deserialize)]
struct Call {
    method: String,
    parameters: Parameters,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    name: String,
    #[serde(rename = "leaderProcessId")]
    leader: Option<Leader>,
}

#[derive(Deserialize)]
struct Leader {
    pid: i32,
}

impl Floor {
    /// Starts serving on a socket in a fresh directory on tmpfs.
    pub fn start() -> Self {
        let dir = berth_tests::daemon::tmpfs_tempdir("berth-floor-");
        let open_dir = |name: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir(&path).expect("floor directory");
            rustix::fs::open(&path, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .expect("open floor directory")
        };
        let shared = Arc::new(Shared {
            machines: open_dir("machines"),
            hosts: open_dir("hosts"),
            watch: epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll"),
        });
        std::fs::write(dir.path().join("hosts/.ask"), "ask\n").expect("ask template");
        let listener = UnixListener::bind(dir.path().join("socket")).expect("floor socket");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let shared = Arc::clone(&shared);
                let stream = stream.expect("accept");
                std::thread::spawn(move || serve(&stream, &shared));
            }
        });
        Self { dir }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }
}

/// Serves one connection until the client hangs up.
fn serve(stream: &UnixStream, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    let mut machines: HashMap<String, Registered> = HashMap::new();
    let mut message = Vec::new();
    loop {
        message.clear();
        if reader.read_until(0, &mut message).unwrap_or(0) == 0 {
            return;
        }
        message.pop();
        let call: Call = serde_json::from_slice(&message).expect("a call the floor knows");
        let name = call.parameters.name;
        let reply: &[u8] = match (call.method.as_str(), call.parameters.leader) {
            ("io.systemd.Machine.Register", Some(leader)) => {
                match register(shared, &name, leader.pid) {
                    Some(registered) => {
                        machines.insert(name, registered);
                        b"{\"parameters\":{}}\0"
                    }
                    None => b"{\"error\":\"io.systemd.System\",\"parameters\":{\"errno\":3}}\0",
                }
            }
            ("io.systemd.Machine.Unregister", _) => {
                if let Some(registered) = machines.remove(&name) {
                    unregister(shared, &name, registered);
                }
                b"{\"parameters\":{}}\0"
            }
            // The round-trip floor of the table's footnote.
            ("org.varlink.service.GetInfo", _) => b"{\"parameters\":{\"vendor\":\"floor\"}}\0",
            _ => b"{\"error\":\"org.varlink.service.MethodNotImplemented\",\"parameters\":{}}\0",
        };
        writer.write_all(reply).expect("reply");
    }
}

/// What the floor remembers of a machine: its leader's pidfd and the unit it links.
struct Registered {
    pidfd: OwnedFd,
    unit: Option<String>,
}

fn register(shared: &Shared, name: &str, pid: i32) -> Option<Registered> {
    let pidfd = rustix::process::pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
    let unit = leader_unit(pid);
    epoll::add(
        &shared.watch,
        &pidfd,
        epoll::EventData::new_u64(pid as u64),
        epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
    )
    .ok()?;
    let mut poll = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    if rustix::event::poll(&mut poll, Some(&rustix::time::Timespec::default())).ok()? > 0 {
        return None;
    }
    let state = format!(
        "# This is private data. Do not parse.\nNAME={name}\nSCOPE={}\nCLASS=container\nLEADER={pid}\nREALTIME=1\nMONOTONIC=1\n",
        unit.as_deref().unwrap_or_default()
    );
    write_atomic(&shared.machines, name, state.as_bytes());
    if let Some(unit) = &unit {
        rustix::fs::symlinkat(name, &shared.machines, format!("unit:{unit}")).ok()?;
    }
    rustix::fs::linkat(&shared.hosts, ".ask", &shared.hosts, name, AtFlags::empty()).ok()?;
    Some(Registered { pidfd, unit })
}

fn unregister(shared: &Shared, name: &str, registered: Registered) {
    let _ = epoll::delete(&shared.watch, &registered.pidfd);
    drop(registered.pidfd);
    let _ = rustix::fs::unlinkat(&shared.machines, name, AtFlags::empty());
    if let Some(unit) = registered.unit {
        let _ = rustix::fs::unlinkat(&shared.machines, format!("unit:{unit}"), AtFlags::empty());
    }
    let _ = rustix::fs::unlinkat(&shared.hosts, name, AtFlags::empty());
}

/// The unit of `pid`'s cgroup (cgroup2 line), from one read of `/proc/PID/cgroup`.
fn leader_unit(pid: i32) -> Option<String> {
    let path = format!("/proc/{pid}/cgroup");
    let file = rustix::fs::open(
        Path::new(&path),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buffer = [0u8; 4096];
    let read = rustix::io::read(&file, &mut buffer).ok()?;
    let text = std::str::from_utf8(&buffer[..read]).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let unit = path.rsplit('/').next()?;
    (unit.ends_with(".scope") || unit.ends_with(".service")).then(|| unit.to_owned())
}

/// Create, write, rename, close.
fn write_atomic(dir: &impl AsFd, name: &str, content: &[u8]) {
    let temporary = format!(".#{name}");
    let file = rustix::fs::openat(
        dir,
        temporary.as_str(),
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .expect("state file");
    rustix::io::write(&file, content).expect("write state file");
    rustix::fs::renameat_with(dir, temporary.as_str(), dir, name, RenameFlags::empty())
        .expect("rename state file");
}
