//! `libnss_mymachines.so.2`: glibc's NSS `hosts` module that resolves the names of the
//! containers registered with Berth's machine registry, a drop-in for systemd's
//! nss-mymachines (spec §4).
//!
//! A lookup reads the registry's host table (`/run/systemd/machine/berth-hosts/NAME`), which
//! holds what the registry would answer, while the registry vouches for it. Otherwise (no
//! table, a container whose addresses nobody asked for yet) it asks the registry over Varlink
//! (`io.berth.Registry.ResolveHost` on `/run/systemd/machine/io.systemd.Machine`) for the
//! machine's class and addresses, on a fresh connection with a blocking client, bounded by
//! [`query::TIMEOUT`] in total. No threads, no async runtime, no output.
//!
//! * `ffi` is the thin `extern "C"` shim and the only module with `unsafe` code: it checks
//!   the pointers, protects `errno`, blocks signals, catches panics, and turns a [`Response`]
//!   into glibc's status, `errno` and `h_errno`. It also holds the few system calls the safe
//!   core needs (the bounded connect, `getauxval`, `geteuid`).
//! * [`lookup`] is the safe core: a host name in, a [`Response`] out.
//! * [`settings`] reads the environment: the socket override and the deadlock guard.
//! * [`table`] reads the host table; [`query`] asks the registry and maps every failure to an
//!   `errno`.
//! * [`layout`] packs the answer into the caller's buffer exactly as nss-mymachines does.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[allow(unsafe_code)]
mod ffi;
pub mod layout;
pub mod lookup;
pub mod query;
pub mod settings;
pub mod table;
#[cfg(test)]
mod test_utils;

pub use lookup::Response;
