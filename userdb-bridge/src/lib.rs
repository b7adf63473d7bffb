//! Berth's userdb bridge: `io.systemd.UserDatabase` on `/run/systemd/userdb/io.systemd.Machine`,
//! the users and groups of user-namespaced containers (`vu-NAME-UID`, `vg-NAME-GID`), as
//! systemd-machined serves them, without a host user ever leaking out.
//!
//! # Layout
//! * [`watcher`] follows the registry's `io.berth.Registry.Watch` stream into the [`cache`],
//!   the bridge's only state: an [`index`] of the containers with users, by name and by host ID
//!   range, or nothing while the registry is away.
//! * [`lookup`] turns a UID/GID or a name into a container user or group and its record;
//!   [`names`] holds the name rules and the `vu-`/`vg-` scheme.
//! * [`varlink`] checks calls and answers them from the cache; [`error`] maps the bridge's
//!   errors onto the wire in one place.
//! * [`xattr`] puts the routing hints on the socket; [`config`] is the command line;
//!   `main.rs` wires the socket, logging and signals.
//!
//! # Answers while the registry is away
//! Until the first listing is complete, and from the moment the stream breaks until a new
//! listing is complete, the cache holds nothing: a lookup that could name a container user
//! (a host ID of 65536 or more, a `vu-`/`vg-` name) gets `ServiceNotAvailable`, everything else
//! `NoRecordFound`. A stale user is never answered.
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod error;
pub mod index;
pub mod lookup;
pub mod names;
pub mod varlink;
pub mod watcher;
pub mod xattr;
