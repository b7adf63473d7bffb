//! A machine's life: boots, reaping, killing everything, and telling when it is over.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use berth_interfaces::instance::InstanceError;
use berth_interfaces::supervisor::{ChildCode, ChildState, ChildrenReply};
use berth_os::proc::ProcessTree;
use berth_os::process;
use berth_service_runtime::protocol::reply_message;
use rustix::process::{Pid, WaitOptions, WaitStatus, wait, waitpid};
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use serde_json::{Map, Value};

use super::{CGROUP, PAYLOAD, Phase, Supervisor, TIMER, warn};
use crate::cgroup::Leaf;
use crate::cli::Config;
use crate::error::{Error, Result};
use crate::log;
use crate::payload::{ExitStatus, Payload};
use crate::poller;

impl Supervisor {
    /// Starts the next boot: a fresh leaf, the payload held in it, registration, release.
    pub(super) fn start_boot(&mut self) -> Result<()> {
        self.boot += 1;
        let (payload, gate) = self.spawn()?;
        let _ = self.poller.add(&payload.pidfd, PAYLOAD, poller::READ);
        if let Some(leaf) = &payload.leaf {
            let _ = self.poller.add(leaf.events_fd(), CGROUP, poller::PRIORITY);
        }
        let registered = match &self.registrar {
            Some(registrar) => registrar
                .register(&payload, self.boot)
                .map_err(|source| Error::Register {
                    registry: registrar.socket.clone(),
                    source,
                })
                .inspect(|()| log_registered(&self.config.name, &registrar.socket)),
            None => Ok(()),
        };
        self.payload = Some(payload);
        if let Err(e) = registered {
            drop(gate);
            self.abandon_boot();
            return Err(e);
        }
        let _ = gate.open();
        self.phase = Phase::Running;
        self.paused = false;
        let mut data = Map::new();
        if let Some(payload) = &self.payload {
            data.insert("pid".into(), payload.pid.into());
            log_started(&self.config, payload.pid, self.boot);
        }
        data.insert("boot".into(), self.boot.into());
        self.emit("started", Some(data));
        Ok(())
    }

    fn spawn(&self) -> Result<(Payload, berth_os::sys::Gate)> {
        let config = &self.config;
        let leaf = self.cgroups.as_ref().and_then(|parent| {
            parent
                .create_leaf(&config.name, self.boot)
                .inspect_err(|e| {
                    warn(format_args!(
                        "Cannot make a cgroup in {}: {e}",
                        parent.dir().display()
                    ))
                })
                .ok()
        });
        let stdin = self.null.as_ref().map(AsFd::as_fd);
        let spawn = |leaf| Payload::spawn(&config.program, &config.argv, leaf, stdin);
        let failed = |(source, _)| Error::Spawn {
            program: config.program.display().to_string(),
            source,
        };
        match spawn(leaf) {
            Ok(spawned) => Ok(spawned),
            Err((e, Some(leaf))) => {
                warn(format_args!(
                    "Cannot start the payload in {}: {e}",
                    leaf.path().display()
                ));
                let _ = leaf.remove();
                spawn(None).map_err(failed)
            }
            Err(failure) => Err(failed(failure)),
        }
    }

    /// Undoes a boot whose payload never ran: kill, reap, remove its leaf.
    fn abandon_boot(&mut self) {
        self.kill_all();
        self.dying.clear();
        if let Some(payload) = self.payload.take() {
            if let Some(pid) = Pid::from_raw(payload.pid as i32) {
                let _ = waitpid(Some(pid), WaitOptions::empty());
            }
            if let Some(leaf) = &payload.leaf {
                wait_empty(leaf);
                let _ = leaf.remove();
            }
        }
    }

    /// SIGKILLs every process of the machine. With a cgroup, the processes are also pinned
    /// by pidfds, so that the end waits for each to finish exiting (a process leaves its cgroup
    /// a moment before it becomes a zombie).
    pub(super) fn kill_all(&mut self) {
        let Some(payload) = &self.payload else { return };
        match &payload.leaf {
            Some(leaf) => {
                self.dying
                    .extend(process::pidfds(leaf.pids().unwrap_or_default()));
                if let Err(e) = leaf.kill() {
                    warn(format_args!("Cannot kill {}: {e}", leaf.path().display()));
                    let _ = payload.signal(rustix::process::Signal::KILL.as_raw());
                }
            }
            None => process::kill_children(self.me),
        }
    }

    /// Ends the machine now: kill everything, then exit once it is all gone. `reason` (the
    /// `Terminate` call, a signal, EOF on stdin) goes into the `terminate` event.
    pub(super) fn terminate(&mut self, reason: &str) {
        if self.phase == (Phase::Ending { reboot: false }) {
            return;
        }
        let mut data = Map::new();
        data.insert("reason".into(), reason.into());
        log::info(
            &format!("Machine {} ends: terminated by {reason}", self.config.name),
            &[("REASON", reason)],
        );
        self.emit("terminate", Some(data));
        self.disarm_timer();
        self.phase = Phase::Ending { reboot: false };
        self.kill_all();
        self.answer_pausers(Some(InstanceError::NotConnected));
        self.reap();
    }

    /// Asks the payload to stop on its own (`signal`), with the grace period to do so.
    pub(super) fn request_stop(&mut self, reboot: bool) -> std::result::Result<(), InstanceError> {
        match self.phase {
            Phase::Ending { .. } if reboot => return Err(InstanceError::NotConnected),
            Phase::Ending { .. } => return Ok(()),
            Phase::Stopping { .. } => {
                self.phase = Phase::Stopping { reboot };
                return Ok(());
            }
            Phase::Running => {}
        }
        if self.paused || self.freezing {
            self.resume();
        }
        self.emit(if reboot { "reboot" } else { "poweroff" }, None);
        self.phase = Phase::Stopping { reboot };
        let signal = if reboot {
            self.config.reboot_signal
        } else {
            self.config.poweroff_signal
        };
        let signalled = self
            .payload
            .as_ref()
            .is_some_and(|p| p.signal(signal).is_ok());
        if !signalled || self.config.grace.is_zero() || self.arm_timer().is_err() {
            self.grace_expired();
        }
        Ok(())
    }

    /// The grace period is over: kill what is left.
    pub(super) fn grace_expired(&mut self) {
        self.disarm_timer();
        if let Phase::Stopping { reboot } = self.phase {
            self.phase = Phase::Ending { reboot };
            self.kill_all();
            self.reap();
        }
    }

    fn arm_timer(&mut self) -> std::io::Result<()> {
        if self.timer.is_none() {
            let flags = TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC;
            let timer = rustix::time::timerfd_create(TimerfdClockId::Monotonic, flags)?;
            self.poller.add(&timer, TIMER, poller::READ)?;
            self.timer = Some(timer);
        }
        self.set_timer(self.config.grace)
    }

    fn disarm_timer(&mut self) {
        let _ = self.set_timer(Duration::ZERO);
    }

    fn set_timer(&self, after: Duration) -> std::io::Result<()> {
        let Some(timer) = &self.timer else {
            return Ok(());
        };
        let value = Itimerspec {
            it_interval: Timespec::default(),
            it_value: Timespec {
                tv_sec: after.as_secs() as i64,
                tv_nsec: i64::from(after.subsec_nanos()),
            },
        };
        rustix::time::timerfd_settime(timer, TimerfdTimerFlags::empty(), &value)?;
        Ok(())
    }

    /// Reaps every child that changed state, then checks whether the machine is over.
    pub(super) fn reap(&mut self) {
        self.reap_children();
        self.check_end();
    }

    fn reap_children(&mut self) {
        let options = WaitOptions::NOHANG | WaitOptions::UNTRACED | WaitOptions::CONTINUED;
        while let Ok(Some((pid, status))) = wait(options) {
            self.child_changed(pid.as_raw_nonzero().get() as u32, status);
        }
    }

    fn child_changed(&mut self, pid: u32, status: WaitStatus) {
        let leader = self
            .payload
            .as_ref()
            .is_some_and(|p| p.pid == pid && p.is_alive());
        let Some((code, value)) = classify(status) else {
            return;
        };
        let change = ChildrenReply {
            ready: None,
            child: Some(ChildState {
                pid,
                leader,
                code,
                status: value,
            }),
        };
        let message = reply_message(&change, true);
        self.server
            .broadcast(|c| c.children, &message, &self.poller);
        let ended = match code {
            ChildCode::Exited => ExitStatus::Exited(value),
            ChildCode::Killed | ChildCode::Dumped => ExitStatus::Signaled(value),
            ChildCode::Stopped | ChildCode::Continued => return,
        };
        if leader {
            self.payload_ended(ended);
        }
    }

    fn payload_ended(&mut self, status: ExitStatus) {
        let Some(payload) = &mut self.payload else {
            return;
        };
        payload.status = Some(status);
        self.poller.remove(&payload.pidfd);
        self.disarm_timer();
        let reboot = matches!(
            self.phase,
            Phase::Stopping { reboot: true } | Phase::Ending { reboot: true }
        );
        self.phase = Phase::Ending { reboot };
        self.answer_pausers(Some(InstanceError::NotConnected));
        self.kill_all();
    }

    /// `cgroup.events` changed: the leaf emptied, or froze.
    pub(super) fn cgroup_changed(&mut self) {
        let state = self
            .payload
            .as_ref()
            .and_then(|p| p.leaf.as_ref()?.state().ok());
        if state.is_some_and(|s| s.frozen) && self.freezing {
            self.freezing = false;
            self.paused = true;
            self.answer_pausers(None);
            self.emit("paused", None);
        }
        self.reap();
    }

    /// Ends the boot once the payload and every other process of the machine are gone:
    /// then the next boot starts, or the supervisor is done.
    fn check_end(&mut self) {
        let Phase::Ending { reboot } = self.phase else {
            return;
        };
        let Some(payload) = &self.payload else { return };
        let empty = match &payload.leaf {
            Some(leaf) => leaf.state().is_ok_and(|s| !s.populated),
            None => ProcessTree::scan().children_of(self.me).is_empty(),
        };
        if payload.is_alive() || !empty {
            return;
        }
        process::wait_exited(std::mem::take(&mut self.dying));
        self.reap_children();
        let Some(payload) = self.payload.take() else {
            return;
        };
        if let Some(leaf) = &payload.leaf {
            self.poller.remove(leaf.events_fd());
            if let Err(e) = leaf.remove() {
                warn(format_args!("Cannot remove {}: {e}", leaf.path().display()));
            }
        }
        self.outcome = payload.status;
        if let Some(Err(e)) = self.registrar.as_ref().map(|r| r.unregister(&payload)) {
            warn(format_args!("Cannot unregister the machine: {e}"));
        }
        log_exited(&self.config.name, payload.status, reboot);
        let mut data = payload.status.map(ExitStatus::to_json).unwrap_or_default();
        if reboot {
            data.insert("reboot".into(), Value::Bool(true));
            self.emit("exited", Some(data));
            if let Err(e) = self.start_boot() {
                log::error(&berth_service_runtime::error_chain(&e));
                self.end(None);
            }
        } else {
            self.end(Some(data));
        }
    }

    /// The machine is over: final replies to the subscribers.
    fn end(&mut self, exited: Option<Map<String, Value>>) {
        self.done = true;
        if let Some(data) = exited {
            let event = berth_interfaces::instance::EventReply {
                event: "exited".into(),
                data: Some(data),
            };
            let message = reply_message(&event, false);
            let wants = |c: &crate::server::connection::Connection| {
                c.events.as_ref().is_some_and(|f| f.wants("exited"))
            };
            self.server.broadcast(wants, &message, &self.poller);
        }
        let last = reply_message(&ChildrenReply::default(), false);
        self.server.broadcast(|c| c.children, &last, &self.poller);
    }
}

fn log_registered(name: &str, registry: &Path) {
    let registry = registry.display().to_string();
    log::info(
        &format!("Machine {name} registered with {registry}"),
        &[("REGISTRY", &registry)],
    );
}

fn log_started(config: &Config, pid: u32, boot: u32) {
    let (pid, boot) = (pid.to_string(), boot.to_string());
    let message = format!(
        "Machine {} started: {} as PID {pid}, boot {boot}",
        config.name,
        config.program.display()
    );
    log::info(&message, &[("LEADER", &pid), ("BOOT", &boot)]);
}

/// The end of a boot, with the payload's status as systemd words it (`EXIT_CODE=exited` and
/// the code, or `killed`/`dumped` and the signal).
fn log_exited(name: &str, status: Option<ExitStatus>, reboot: bool) {
    let (code, value) = match status {
        Some(ExitStatus::Exited(code)) => ("exited", code.to_string()),
        Some(ExitStatus::Signaled(signal)) => ("killed", signal.to_string()),
        None => ("unknown", String::new()),
    };
    let how = match code {
        "exited" => format!("exited with status {value}"),
        "killed" => format!("was killed by signal {value}"),
        _ => "ended".to_owned(),
    };
    let then = if reboot { ", rebooting" } else { "" };
    log::info(
        &format!("Machine {name}: the payload {how}{then}"),
        &[("EXIT_CODE", code), ("EXIT_STATUS", &value)],
    );
}

/// What a wait status says: the change and its number (exit code or signal).
fn classify(status: WaitStatus) -> Option<(ChildCode, i32)> {
    if let Some(code) = status.exit_status() {
        return Some((ChildCode::Exited, code));
    }
    if let Some(signal) = status.terminating_signal() {
        let dumped = status.as_raw() & 0x80 != 0;
        let code = if dumped {
            ChildCode::Dumped
        } else {
            ChildCode::Killed
        };
        return Some((code, signal));
    }
    if let Some(signal) = status.stopping_signal() {
        return Some((ChildCode::Stopped, signal));
    }
    status
        .continued()
        .then_some((ChildCode::Continued, rustix::process::Signal::CONT.as_raw()))
}

/// Blocks until `leaf` is empty (bounded: a leaf whose processes cannot die is left).
fn wait_empty(leaf: &Leaf) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while leaf.state().is_ok_and(|s| s.populated) && std::time::Instant::now() < deadline {
        let events = leaf.events_fd();
        let fds = &mut [rustix::event::PollFd::new(
            &events,
            rustix::event::PollFlags::PRI,
        )];
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let _ = rustix::event::poll(fds, Some(&timeout));
    }
}
