//! The Varlink face of the registry: `io.systemd.Machine`.

mod error;
mod machine;

pub use machine::MachineService;
