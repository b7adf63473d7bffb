//! `supervise`: spawns, guards and controls one machine's payload, for VM and container
//! managers to put between themselves and a VMM, a container's init or any program.
//!
//! The payload is born held in a cgroup2 leaf of its own (`clone3` with
//! `CLONE_INTO_CGROUP|CLONE_PIDFD`), registered with the machine registry (the payload as
//! leader, `supervise` as supervisor, its control socket as `controlAddress`) and then let go.
//! Without a writable cgroup2 directory `supervise` is a child subreaper and walks `/proc`
//! instead. Whatever ends the machine, every process of it is dead before `supervise` says so.
//!
//! * [`cli`]: the command line.
//! * [`supervisor`]: the epoll loop, the machine's life and what the control calls do.
//! * [`server`]: the control socket (`io.systemd.MachineInstance`, `io.berth.Supervisor`).
//! * [`payload`], [`cgroup`]: the payload and its cgroup leaf.
//! * [`registration`]: `Register`/`Unregister` with the registry.
//! * [`log`]: start, registration and end of the machine, to the journal (with fields) or stderr.
//! * [`poller`], [`error`]: plumbing.
//!
//! Processes, `/proc` trees, cgroup2, signal names and the system calls that need `unsafe`
//! come from `berth_os`.
#![forbid(unsafe_code)]

pub mod cgroup;
pub mod cli;
pub mod error;
pub mod log;
pub mod payload;
pub mod poller;
pub mod registration;
pub mod server;
pub mod supervisor;

pub use error::{Error, Result};
pub use supervisor::run;
