//! Berth's machine registry: `io.systemd.Machine`, wire-compatible with systemd-machined.
//!
//! # Layout
//! * [`manager`] holds the registry: its [`index`] (machines by name, leader PID, cgroup, unit
//!   and user namespace ID range), the state files, and the change events; [`lifecycle`]
//!   watches leaders through their pidfds and ends machines on request; [`restore`] reads the
//!   state files back after a restart.
//! * [`machine`] is one machine and its `List`/state-file forms; [`register`] validates a
//!   `Register` request into one.
//! * [`cgroup`], [`kill`] and [`metadata`] are the registry's side of the OS (the machines' own
//!   cgroups, signalling them, os-release), on `berth_os` (pidfds, `/proc`, cgroup2, signal
//!   names); [`idmap`] reads user namespaces; [`control`] calls a machine's controller.
//! * [`enter`] is what goes into a machine: its root directory, terminals, bind mounts and
//!   copies, with the caller's rights, through the helper where namespaces are entered.
//! * [`hosts`] is the host table the registry publishes for the NSS module; [`network`] watches
//!   containers' addresses.
//! * [`names`] and [`state_file`] are pure parsing and formatting.
//! * [`varlink`] maps calls onto all of this and errors back onto the wire ([`error`] is the
//!   internal error type).
//! * [`config`] is the command line; `main.rs` wires sockets, logging and signals.
#![forbid(unsafe_code)]

pub mod atomic_dir;
pub mod cgroup;
pub mod config;
pub mod control;
pub mod dns;
pub mod enter;
pub mod error;
pub mod hosts;
pub mod idmap;
pub mod images;
pub mod in_flight;
pub mod index;
pub mod kill;
pub mod lifecycle;
pub mod machine;
pub mod manager;
pub mod metadata;
pub mod names;
pub mod network;
pub mod register;
pub mod restore;
pub mod startup;
pub mod state_file;
pub mod varlink;
