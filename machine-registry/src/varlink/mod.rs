//! The Varlink face of the registry: `io.systemd.Machine`, `io.systemd.MachineImage` and
//! `io.berth.Registry` on the registry socket, `io.systemd.Resolve.Hook` on the resolve hook socket.

mod berth;
mod enter;
mod error;
mod hook;
mod idmap;
mod image;
mod image_change;
mod machine;

pub use hook::HookService;
pub use machine::MachineService;
