//! Berth's OS layer: everything its services and tools ask of Linux beyond std, in one place,
//! on std, rustix and libc (no async runtime unless the `tokio` feature asks for one).
//!
//! * [`process`]: processes pinned by pidfds, signalling them, and whole trees of them.
//! * [`proc`]: what `/proc` tells about a process (parent, owner, cgroup) and the boot ID.
//! * [`cgroup2`]: the cgroup2 hierarchy: its mount, a process's own cgroup, and a cgroup's
//!   processes, kill, freezer and `cgroup.events`.
//! * [`signal`]: signal names and numbers as systemd reads them.
//! * [`socket`]: binding a listening AF_UNIX socket without ever stealing a live one.
//! * [`namespace`]: user namespaces and their owners.
//! * [`root`]: a machine's root directory, pinned through its leader, and paths resolved
//!   strictly inside it.
//! * [`identity`]: file work done with a caller's rights.
//! * [`files`]: the immutable flag and `flock` lock files, as image pools use them.
//! * [`copy`]: copying files and trees between two directories without following symlinks,
//!   under a temporary name until complete.
//! * [`journal`]: whether standard error is the journal, and entries in journald's native
//!   protocol.
//! * [`sys`]: the only module with `unsafe` code, wrapping the few system calls that neither
//!   std nor rustix expose safely.
//!
//! Every crate of Berth that touches the OS goes through here, so that each helper exists
//! once and every service agrees on, say, what `SIGRTMIN+4` means.

#![deny(unsafe_code)]

pub mod cgroup2;
pub mod copy;
pub mod files;
pub mod identity;
pub mod journal;
pub mod namespace;
pub mod proc;
pub mod process;
pub mod root;
pub mod signal;
pub mod socket;
pub mod sys;
