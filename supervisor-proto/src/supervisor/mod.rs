//! The supervisor: one single-threaded epoll loop over the control socket and its clients,
//! the payload's pidfd, a signalfd, the leaf's `cgroup.events`, standard input (with
//! `--tie-to-stdin`) and, only while a grace period runs, a timer. Nothing wakes it while idle.
//!
//! * [`lifecycle`](self): boots, reaping, killing, the end of the machine.
//! * `control`: what the control socket's calls do.

mod control;
mod lifecycle;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use berth_os::sys;
use rustix::event::epoll::EventFlags;
use rustix::process::Signal;

use crate::cgroup::CgroupParent;
use crate::cli::{CgroupChoice, Config};
use crate::error::{Error, Result};
use crate::log;
use crate::payload::{ExitStatus, Payload};
use crate::poller::{self, Poller};
use crate::registration::Registrar;
use crate::server::{FIRST_CONNECTION, Server};

const SIGNALS: u64 = 1;
const LISTENER: u64 = 2;
const PAYLOAD: u64 = 3;
const TIMER: u64 = 4;
const STDIN: u64 = 5;
const CGROUP: u64 = 6;

/// Where the machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The payload runs.
    Running,
    /// The payload was asked to stop (PowerOff, Reboot) and has a grace period to do so.
    Stopping { reboot: bool },
    /// Everything was killed, or the payload ended: waiting for every process to be gone.
    Ending { reboot: bool },
}

/// One machine's supervisor.
#[derive(Debug)]
pub struct Supervisor {
    config: Config,
    me: u32,
    poller: Poller,
    signals: OwnedFd,
    server: Server,
    cgroups: Option<CgroupParent>,
    registrar: Option<Registrar>,
    null: Option<File>,
    timer: Option<OwnedFd>,
    payload: Option<Payload>,
    boot: u32,
    phase: Phase,
    paused: bool,
    freezing: bool,
    pausers: Vec<(u64, bool)>,
    dying: Vec<OwnedFd>,
    outcome: Option<ExitStatus>,
    done: bool,
}

/// Runs `config`'s machine to its end.
///
/// # Errors
/// The supervisor could not set itself up or start the first boot (the payload's own
/// failure is its exit status).
pub fn run(config: Config) -> Result<u8> {
    log::open(&config.name);
    let mut supervisor = Supervisor::new(config)?;
    supervisor.start_boot()?;
    while !supervisor.done {
        let events = match supervisor.poller.wait() {
            Ok(events) => events,
            Err(e) => {
                // Blind from here on: end the machine rather than leave it unsupervised.
                supervisor.kill_all();
                return Err(Error::Poll(e));
            }
        };
        for (token, flags) in events {
            supervisor.dispatch(token, flags);
        }
    }
    Ok(supervisor.finish())
}

impl Supervisor {
    fn new(config: Config) -> Result<Self> {
        let handled = handled_signals();
        sys::default_signal_action(rustix::process::Signal::CHILD.as_raw())
            .and_then(|()| sys::block_signals(&handled))
            .map_err(Error::setup("the signal mask"))?;
        let signal_fd = sys::signal_fd(&handled).map_err(Error::setup("the signalfd"))?;
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| Error::setup("subreaper mode")(e.into()))?;
        let poller = Poller::new().map_err(Error::setup("epoll"))?;
        let server = Server::bind(&config.control_socket)?;
        poller
            .add(&signal_fd, SIGNALS, poller::READ)
            .and_then(|()| poller.add(server.listener(), LISTENER, poller::READ))
            .map_err(Error::setup("epoll"))?;
        let null = if config.tie_to_stdin {
            poller
                .add(std::io::stdin().as_fd(), STDIN, poller::READ)
                .map_err(Error::setup("watching standard input"))?;
            Some(File::open("/dev/null").map_err(Error::setup("/dev/null"))?)
        } else {
            None
        };
        Ok(Self {
            cgroups: cgroup_parent(&config.cgroup)?,
            registrar: registrar(&config)?,
            me: std::process::id(),
            poller,
            signals: signal_fd,
            server,
            null,
            timer: None,
            payload: None,
            boot: 0,
            phase: Phase::Running,
            paused: false,
            freezing: false,
            pausers: Vec::new(),
            dying: Vec::new(),
            outcome: None,
            done: false,
            config,
        })
    }

    fn dispatch(&mut self, token: u64, flags: EventFlags) {
        match token {
            SIGNALS => self.signalled(),
            LISTENER => self.server.accept(&self.poller),
            PAYLOAD => self.reap(),
            TIMER => self.grace_expired(),
            STDIN => self.stdin_ready(),
            CGROUP => self.cgroup_changed(),
            token if token >= FIRST_CONNECTION => self.connection_ready(token, flags),
            _ => {}
        }
    }

    fn signalled(&mut self) {
        while let Ok(Some(signal)) = sys::read_signal(self.signals.as_fd()) {
            if signal != rustix::process::Signal::CHILD.as_raw() {
                self.terminate("signal");
            }
        }
        self.reap();
    }

    fn stdin_ready(&mut self) {
        let mut chunk = [0u8; 1024];
        match rustix::io::read(std::io::stdin().as_fd(), &mut chunk) {
            Ok(n) if n > 0 => {}
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            _ => {
                self.poller.remove(std::io::stdin().as_fd());
                self.terminate("stdin");
            }
        }
    }

    fn finish(mut self) -> u8 {
        self.server.shut_down(std::time::Duration::from_secs(1));
        self.outcome.map_or(125, ExitStatus::code)
    }
}

fn cgroup_parent(choice: &CgroupChoice) -> Result<Option<CgroupParent>> {
    match choice {
        CgroupChoice::Off => Ok(None),
        CgroupChoice::Auto => Ok(CgroupParent::find(None)),
        CgroupChoice::At(dir) => CgroupParent::find(Some(dir)).map(Some).ok_or_else(|| {
            Error::setup("the cgroup root")(std::io::Error::other(format!(
                "{} is not a cgroup2 directory we may write to",
                dir.display()
            )))
        }),
    }
}

fn registrar(config: &Config) -> Result<Option<Registrar>> {
    let Some(socket) = &config.registry else {
        return Ok(None);
    };
    let control_address = config.control_socket.to_str().ok_or_else(|| {
        Error::Usage("the control socket path must be UTF-8 to be registered".into())
    })?;
    Ok(Some(Registrar {
        socket: PathBuf::from(socket),
        name: config.name.clone(),
        class: config.class,
        service: config.service.clone(),
        control_address: control_address.to_owned(),
    }))
}

/// Signals that end the machine (as `Terminate` does) when sent to `supervise`.
const TERMINATING: [Signal; 4] = [Signal::TERM, Signal::INT, Signal::HUP, Signal::QUIT];

/// The signals `supervise` reads from its signalfd: the terminating ones and `SIGCHLD`.
fn handled_signals() -> Vec<i32> {
    TERMINATING
        .iter()
        .chain([&Signal::CHILD])
        .map(|s| s.as_raw())
        .collect()
}

/// A warning about something the supervisor works around.
fn warn(what: std::fmt::Arguments<'_>) {
    log::warning(&format!("{what}, ignoring"));
}
