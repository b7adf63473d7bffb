//! The Varlink interface definitions, verbatim from the `.varlink` files in `idl/`.
//!
//! These texts are what the services answer to `org.varlink.service.GetInterfaceDescription`
//! and what incoming calls are validated against, so the files are the single source of truth.

/// `io.systemd.Machine`, the registry interface (upstream text, see the crate README).
pub const IO_SYSTEMD_MACHINE: &str = include_str!("../idl/io.systemd.Machine.varlink");
/// `io.systemd.MachineImage`, the image pool (upstream text with `SetPoolLimit` and `CleanPool`).
pub const IO_SYSTEMD_MACHINE_IMAGE: &str = include_str!("../idl/io.systemd.MachineImage.varlink");
/// `io.berth.Registry`, Berth's own extensions of the registry (host resolution, watching).
pub const IO_BERTH_REGISTRY: &str = include_str!("../idl/io.berth.Registry.varlink");
/// `io.berth.Supervisor`, Berth's extension of `io.systemd.MachineInstance` (`supervise`).
pub const IO_BERTH_SUPERVISOR: &str = include_str!("../idl/io.berth.Supervisor.varlink");
/// `io.systemd.MachineInstance`, what a machine's `controlAddress` serves (the supervisor).
pub const IO_SYSTEMD_MACHINE_INSTANCE: &str =
    include_str!("../idl/io.systemd.MachineInstance.varlink");
/// `io.systemd.Resolve.Hook`, what the registry serves to systemd-resolved.
pub const IO_SYSTEMD_RESOLVE_HOOK: &str = include_str!("../idl/io.systemd.Resolve.Hook.varlink");
/// `io.systemd.UserDatabase`, the userdb provider interface (the text systemd-userdbd 257 serves).
pub const IO_SYSTEMD_USER_DATABASE: &str = include_str!("../idl/io.systemd.UserDatabase.varlink");
/// `io.systemd.service`, generic service control.
pub const IO_SYSTEMD_SERVICE: &str = include_str!("../idl/io.systemd.service.varlink");
/// `io.systemd`, the generic errors (`io.systemd.System`) every systemd service may return.
pub const IO_SYSTEMD: &str = include_str!("../idl/io.systemd.varlink");
/// `org.varlink.service`, the introspection interface every Varlink service implements.
pub const ORG_VARLINK_SERVICE: &str = include_str!("../idl/org.varlink.service.varlink");

/// Every interface definition in this crate, by interface name.
pub const ALL: &[(&str, &str)] = &[
    ("io.berth.Registry", IO_BERTH_REGISTRY),
    ("io.berth.Supervisor", IO_BERTH_SUPERVISOR),
    ("io.systemd", IO_SYSTEMD),
    ("io.systemd.Machine", IO_SYSTEMD_MACHINE),
    ("io.systemd.MachineImage", IO_SYSTEMD_MACHINE_IMAGE),
    ("io.systemd.MachineInstance", IO_SYSTEMD_MACHINE_INSTANCE),
    ("io.systemd.Resolve.Hook", IO_SYSTEMD_RESOLVE_HOOK),
    ("io.systemd.UserDatabase", IO_SYSTEMD_USER_DATABASE),
    ("io.systemd.service", IO_SYSTEMD_SERVICE),
    ("org.varlink.service", ORG_VARLINK_SERVICE),
];

/// The definition text of the interface `name`, if this crate has it.
pub fn by_name(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_text_declares_the_interface_it_is_filed_under() {
        for (name, text) in ALL {
            let declared = text
                .lines()
                .find_map(|l| l.strip_prefix("interface "))
                .expect("an interface line");
            assert_eq!(declared, *name);
        }
    }

    #[cfg(feature = "client")]
    #[test]
    fn every_text_parses_with_zlink() {
        for (name, text) in ALL {
            let parsed = zlink::idl::Interface::try_from(*text)
                .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
            assert_eq!(parsed.name().as_str(), *name);
        }
    }
}
