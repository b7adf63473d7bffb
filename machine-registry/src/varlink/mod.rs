//! The Varlink face of the registry: `io.systemd.Machine`.

mod berth;
mod error;
mod idmap;
mod machine;

pub use machine::MachineService;
