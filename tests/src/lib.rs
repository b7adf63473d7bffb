//! Harness for Berth's end-to-end tests: run the real binaries in private directories, drive
//! them with real clients, and leave nothing behind.
//!
//! * [`daemon`]: a registry under test, started in its own runtime directory and cgroup, and
//!   killed (with its whole process group) when dropped.
//! * [`bridge`]: a userdb bridge under test, and real userdb clients run in a private mount
//!   namespace that sees only its socket.
//! * [`process`]: helper processes (leaders, supervisors) in their own process groups.
//! * [`supervise`]: `supervise` under test, event streams, delegated cgroups.
//! * [`clients`]: `varlinkctl` 257, python `varlink` and raw sockets.
//! * [`berthctl`]: `berthctl` run against a registry under test.
//! * [`container`]: a real container (user, mount, PID, network namespaces and a root of its
//!   own) for the tests that go into machines.
//! * [`machined257`]: the real systemd-machined 257 from the trixie chroot, for benchmarks
//!   that compare, and leaders in the scope cgroups it needs.
//! * [`nss`]: the NSS module installed for real clients inside private mount namespaces.
//! * [`pid1`]: systemd 257 booted as PID 1 in a container, with Berth installed by
//!   `scripts/install`.
//! * [`wait`]: polling with a deadline, never sleeping for a fixed time.
//! * [`require`]: tests that need root or a real client report a skip, or fail when
//!   `BERTH_TESTS_REQUIRE_ALL=1` (CI) says everything must run.
#![forbid(unsafe_code)]

pub mod berthctl;
pub mod bridge;
pub mod clients;
pub mod container;
pub mod daemon;
pub mod machined257;
pub mod machines;
pub mod netns;
pub mod nss;
pub mod pid1;
pub mod process;
pub mod require;
pub mod supervise;
pub mod users;
pub mod wait;

use std::path::PathBuf;

/// A binary of the workspace, built next to the test executable (`target/<profile>/NAME`).
///
/// # Panics
/// When the binary was not built: run `cargo build --workspace` first (the README's test
/// command does).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}
