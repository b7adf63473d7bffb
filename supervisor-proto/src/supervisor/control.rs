//! What the calls on the control socket do.

use berth_interfaces::instance::{
    DescribeReply, EventReply, InstanceError, SubscribeEventsRequest,
};
use berth_interfaces::methods::{InstanceMethod, SupervisorMethod};
use berth_interfaces::service::VarlinkError;
use berth_interfaces::supervisor::{ChildrenReply, SupervisorError, Whom};
use berth_os::proc::ProcessTree;
use berth_os::process;
use berth_service_runtime::protocol::{Call, ErrorReply, Received, error_message, reply_message};
use rustix::event::epoll::EventFlags;
use rustix::process::Signal;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Phase, Supervisor};
use crate::server::connection::{EventFilter, Next};
use crate::server::methods::{self, Method};

/// What a call results in.
enum Outcome {
    /// This reply.
    Reply(Value),
    /// This error.
    Error(ErrorReply),
    /// The replies come later (a deferred reply or a stream): later calls wait.
    Later,
}

fn ok(reply: &impl Serialize) -> Outcome {
    serde_json::to_value(reply).map_or_else(
        |_| Outcome::Reply(Value::Object(Map::new())),
        Outcome::Reply,
    )
}

fn done() -> Outcome {
    Outcome::Reply(Value::Object(Map::new()))
}

fn failed(error: impl Into<ErrorReply>) -> Outcome {
    Outcome::Error(error.into())
}

impl Supervisor {
    /// A client's socket is readable or writable.
    pub(super) fn connection_ready(&mut self, token: u64, flags: EventFlags) {
        if flags.contains(EventFlags::OUT) {
            self.server.writable(token, &self.poller);
        }
        if flags.intersects(EventFlags::IN | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR)
            && self.server.read(token, &self.poller)
        {
            self.process(token);
        }
    }

    /// Handles the complete calls a client sent, in order, until one keeps it busy.
    fn process(&mut self, token: u64) {
        while let Some(next) = self.server.next_call(token) {
            match next {
                Next::Received(Received::Call(call)) => self.handle_call(token, &call),
                Next::Received(Received::Answer(answer)) => {
                    if let Some(message) = answer.message() {
                        self.server.send(token, &message, &self.poller);
                    }
                }
                Next::Broken => {
                    self.server.close(token, &self.poller);
                    return;
                }
            }
        }
    }

    fn handle_call(&mut self, token: u64, call: &Call) {
        let outcome = match Method::route(call.method()) {
            // Not reached: the control socket checked at startup that every method is routed.
            None => failed(VarlinkError::MethodNotImplemented {
                method: call.method().to_owned(),
            }),
            Some(_) if !call.peer.is_privileged() => failed(VarlinkError::PermissionDenied),
            Some(Method::Instance(method)) => self.instance(token, method, call),
            Some(Method::Supervisor(method)) => self.supervisor(token, method, call),
        };
        let message = match outcome {
            _ if call.oneway => return,
            Outcome::Reply(reply) => reply_message(&reply, false),
            Outcome::Error(error) => error_message(&error),
            Outcome::Later => {
                if let Some(conn) = self.server.get(token) {
                    conn.busy = true;
                }
                return;
            }
        };
        self.server.send(token, &message, &self.poller);
    }

    /// `io.systemd.MachineInstance`.
    fn instance(&mut self, token: u64, method: InstanceMethod, call: &Call) -> Outcome {
        match method {
            InstanceMethod::Terminate => {
                self.terminate("call");
                done()
            }
            InstanceMethod::PowerOff => self.request_stop(false).map_or_else(failed, |()| done()),
            InstanceMethod::Reboot => self.request_stop(true).map_or_else(failed, |()| done()),
            InstanceMethod::Pause => self.pause(token, call.oneway),
            InstanceMethod::Resume => {
                self.resume();
                done()
            }
            InstanceMethod::Describe => ok(&self.describe()),
            InstanceMethod::SubscribeEvents => match call.decode::<SubscribeEventsRequest>() {
                Ok(request) => self.subscribe_events(token, request.filter),
                Err(error) => failed(error),
            },
            InstanceMethod::AddStorage
            | InstanceMethod::RemoveStorage
            | InstanceMethod::ReplaceStorage => failed(InstanceError::NotSupported),
        }
    }

    /// `io.berth.Supervisor`.
    fn supervisor(&mut self, token: u64, method: SupervisorMethod, call: &Call) -> Outcome {
        match method {
            SupervisorMethod::Kill => match methods::kill_request(call) {
                Ok((whom, signal)) => self.kill(whom, signal),
                Err(error) => failed(error),
            },
            SupervisorMethod::SubscribeChildren => self.subscribe_children(token),
        }
    }

    fn describe(&self) -> DescribeReply {
        let status = match self.phase {
            Phase::Running if self.paused => "paused",
            Phase::Running => "running",
            Phase::Stopping { reboot: true } | Phase::Ending { reboot: true } => "rebooting",
            Phase::Stopping { reboot: false } => "stopping",
            Phase::Ending { reboot: false } => "shutdown",
        };
        DescribeReply {
            running: status == "running",
            status: status.into(),
        }
    }

    fn alive(&self) -> bool {
        !matches!(self.phase, Phase::Ending { .. })
            && self.payload.as_ref().is_some_and(|p| p.is_alive())
    }

    fn pause(&mut self, token: u64, oneway: bool) -> Outcome {
        if !self.alive() {
            return failed(InstanceError::NotConnected);
        }
        if self.paused {
            return done();
        }
        let leaf = self.payload.as_ref().and_then(|p| p.leaf.as_ref());
        let frozen = match leaf {
            Some(leaf) => match leaf.freeze(true) {
                Ok(()) => leaf.state().is_ok_and(|s| s.frozen),
                Err(_) => return failed(InstanceError::NotSupported),
            },
            None => {
                let me = self.me;
                let _ = process::signal_until_none_new(|| descendants(me), Signal::STOP.as_raw());
                true
            }
        };
        if !frozen {
            self.freezing = true;
            self.pausers.push((token, oneway));
            return Outcome::Later;
        }
        self.paused = true;
        self.emit("paused", None);
        done()
    }

    /// Thaws the machine (and answers the `Pause` calls still waiting for the freeze).
    pub(super) fn resume(&mut self) {
        if !self.paused && !self.freezing {
            return;
        }
        match self.payload.as_ref().and_then(|p| p.leaf.as_ref()) {
            Some(leaf) => {
                let _ = leaf.freeze(false);
            }
            None => {
                let me = self.me;
                let _ = process::signal_until_none_new(|| descendants(me), Signal::CONT.as_raw());
            }
        }
        self.paused = false;
        self.freezing = false;
        self.answer_pausers(None);
        self.emit("resumed", None);
    }

    /// Answers every waiting `Pause` call: done, or `error`.
    pub(super) fn answer_pausers(&mut self, error: Option<InstanceError>) {
        self.freezing = false;
        for (token, oneway) in std::mem::take(&mut self.pausers) {
            if oneway {
                continue;
            }
            let message = match &error {
                Some(e) => error_message(&e.clone().into()),
                None => reply_message(&Map::new(), false),
            };
            self.server.send(token, &message, &self.poller);
            if let Some(conn) = self.server.get(token) {
                conn.busy = false;
            }
            self.process(token);
        }
    }

    fn kill(&mut self, whom: Whom, signal: i32) -> Outcome {
        let Some(payload) = self.payload.as_ref().filter(|p| p.is_alive()) else {
            return failed(SupervisorError::NotRunning);
        };
        let sent = match (whom, &payload.leaf) {
            (Whom::Leader, _) => payload.signal(signal),
            (Whom::All, Some(leaf)) if signal == Signal::KILL.as_raw() => leaf.kill(),
            (Whom::All, Some(leaf)) => process::signal_until_none_new(|| leaf.pids(), signal),
            (Whom::All, None) => {
                let me = self.me;
                process::signal_until_none_new(|| descendants(me), signal)
            }
        };
        match sent {
            Ok(()) => done(),
            Err(_) => failed(SupervisorError::NotRunning),
        }
    }

    fn subscribe_events(&mut self, token: u64, filter: Option<Vec<String>>) -> Outcome {
        let mut data = Map::new();
        let state = self.describe();
        data.insert("running".into(), state.running.into());
        data.insert("status".into(), state.status.into());
        data.insert("boot".into(), self.boot.into());
        let first = EventReply {
            event: "subscribed".into(),
            data: Some(data),
        };
        self.server
            .send(token, &reply_message(&first, true), &self.poller);
        if let Some(conn) = self.server.get(token) {
            conn.events = Some(EventFilter(filter));
        }
        Outcome::Later
    }

    fn subscribe_children(&mut self, token: u64) -> Outcome {
        let first = ChildrenReply {
            ready: Some(true),
            child: None,
        };
        self.server
            .send(token, &reply_message(&first, true), &self.poller);
        if let Some(conn) = self.server.get(token) {
            conn.children = true;
        }
        Outcome::Later
    }

    /// Sends the event `name` to its subscribers.
    pub(super) fn emit(&mut self, name: &str, data: Option<Map<String, Value>>) {
        let event = EventReply {
            event: name.into(),
            data,
        };
        let message = reply_message(&event, true);
        let wants = |c: &crate::server::connection::Connection| {
            c.events.as_ref().is_some_and(|f| f.wants(name))
        };
        self.server.broadcast(wants, &message, &self.poller);
    }
}

/// Every process below `me` (subreaper mode: the machine's processes).
fn descendants(me: u32) -> std::io::Result<Vec<u32>> {
    Ok(ProcessTree::scan().descendants_of(me))
}
