//! Wire types of `io.berth.Supervisor` (`idl/io.berth.Supervisor.varlink`), Berth's extension
//! of `io.systemd.MachineInstance` served by `supervise`.

use serde::{Deserialize, Serialize};

use crate::errors::wire_errors;

/// Which processes of the machine a signal goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whom {
    /// The payload's top process, the machine's leader.
    Leader,
    /// Every process of the machine.
    All,
}

/// Parameters of `Kill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    /// Whom to signal.
    pub whom: Whom,
    /// The signal number, 1 to 64.
    pub signal: i64,
}

/// How a child of the supervisor changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildCode {
    /// It exited; the status is its exit code.
    Exited,
    /// A signal killed it.
    Killed,
    /// A signal killed it and it dumped core.
    Dumped,
    /// A signal stopped it.
    Stopped,
    /// SIGCONT continued it.
    Continued,
}

/// One state change of a child of the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildState {
    /// Its PID.
    pub pid: u32,
    /// Whether it is the machine's leader (else an adopted orphan).
    pub leader: bool,
    /// What happened.
    pub code: ChildCode,
    /// The exit code or the signal number.
    pub status: i32,
}

/// One reply of `SubscribeChildren`: first `ready`, then one `child` per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChildrenReply {
    /// True in the first reply only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// A state change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<ChildState>,
}

wire_errors! {
    /// Errors of `io.berth.Supervisor`.
    pub enum SupervisorError in "io.berth.Supervisor" {
        /// The machine has no running payload.
        NotRunning,
    }
}
