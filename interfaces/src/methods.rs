//! The methods of each interface as a Rust enum, so that a service dispatches calls with an
//! exhaustive `match`: a method the IDL declares but no handler serves is a compile error,
//! and a test checks every enum against its IDL text, so a misspelled or missing variant
//! fails too.

use crate::idl;

/// The methods of one Varlink interface.
pub trait Methods: Copy + Sized + Send + Sync + std::fmt::Debug + 'static {
    /// The interface name, e.g. `io.systemd.Machine`.
    const INTERFACE: &'static str;
    /// The interface definition.
    const IDL: &'static str;
    /// Every method, in IDL order.
    const ALL: &'static [Self];

    /// The method's own name, e.g. `List`.
    fn member(self) -> &'static str;

    /// The method a member name means.
    fn from_member(member: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.member() == member)
    }

    /// The method a qualified name (`io.systemd.Machine.List`) means, if it is one of ours.
    fn from_qualified(method: &str) -> Option<Self> {
        let member = method.strip_prefix(Self::INTERFACE)?.strip_prefix('.')?;
        Self::from_member(member)
    }
}

/// Declares the method enum of one interface.
macro_rules! methods {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $interface:literal = $idl:expr => {
            $( $(#[$vmeta:meta])* $variant:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),*
        }

        impl $crate::methods::Methods for $name {
            const INTERFACE: &'static str = $interface;
            const IDL: &'static str = $idl;
            const ALL: &'static [Self] = &[$(Self::$variant),*];

            fn member(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($variant) ),*
                }
            }
        }
    };
}

methods! {
    /// The methods of `io.systemd.Machine`.
    pub enum MachineMethod in "io.systemd.Machine" = idl::IO_SYSTEMD_MACHINE => {
        /// `Register`.
        Register,
        /// `Unregister`.
        Unregister,
        /// `Terminate`.
        Terminate,
        /// `Kill`.
        Kill,
        /// `List`.
        List,
        /// `Open`.
        Open,
        /// `MapFrom`.
        MapFrom,
        /// `MapTo`.
        MapTo,
        /// `BindMount`.
        BindMount,
        /// `CopyFrom`.
        CopyFrom,
        /// `CopyTo`.
        CopyTo,
        /// `OpenRootDirectory`.
        OpenRootDirectory,
    }
}

methods! {
    /// The methods of `io.systemd.MachineImage`.
    pub enum ImageMethod in "io.systemd.MachineImage" = idl::IO_SYSTEMD_MACHINE_IMAGE => {
        /// `List`.
        List,
        /// `Update`.
        Update,
        /// `Clone`.
        Clone,
        /// `Remove`.
        Remove,
        /// `SetPoolLimit`.
        SetPoolLimit,
        /// `CleanPool`.
        CleanPool,
    }
}

methods! {
    /// The methods of `io.berth.Registry`.
    pub enum RegistryMethod in "io.berth.Registry" = idl::IO_BERTH_REGISTRY => {
        /// `ResolveHost`.
        ResolveHost,
        /// `Watch`.
        Watch,
    }
}

methods! {
    /// The methods of `io.systemd.MachineInstance`.
    pub enum InstanceMethod in "io.systemd.MachineInstance" = idl::IO_SYSTEMD_MACHINE_INSTANCE => {
        /// `Terminate`.
        Terminate,
        /// `PowerOff`.
        PowerOff,
        /// `Reboot`.
        Reboot,
        /// `Pause`.
        Pause,
        /// `Resume`.
        Resume,
        /// `Describe`.
        Describe,
        /// `SubscribeEvents`.
        SubscribeEvents,
        /// `AddStorage`.
        AddStorage,
        /// `RemoveStorage`.
        RemoveStorage,
        /// `ReplaceStorage`.
        ReplaceStorage,
    }
}

methods! {
    /// The methods of `io.berth.Supervisor`.
    pub enum SupervisorMethod in "io.berth.Supervisor" = idl::IO_BERTH_SUPERVISOR => {
        /// `Kill`.
        Kill,
        /// `SubscribeChildren`.
        SubscribeChildren,
    }
}

methods! {
    /// The methods of `io.systemd.Resolve.Hook`.
    pub enum HookMethod in "io.systemd.Resolve.Hook" = idl::IO_SYSTEMD_RESOLVE_HOOK => {
        /// `QueryFilter`.
        QueryFilter,
        /// `ResolveRecord`.
        ResolveRecord,
    }
}

methods! {
    /// The methods of `io.systemd.UserDatabase`.
    pub enum UserDatabaseMethod in "io.systemd.UserDatabase" = idl::IO_SYSTEMD_USER_DATABASE => {
        /// `GetUserRecord`.
        GetUserRecord,
        /// `GetGroupRecord`.
        GetGroupRecord,
        /// `GetMemberships`.
        GetMemberships,
    }
}

methods! {
    /// The methods of `io.systemd.service`.
    pub enum ServiceMethod in "io.systemd.service" = idl::IO_SYSTEMD_SERVICE => {
        /// `Ping`.
        Ping,
        /// `Reload`.
        Reload,
        /// `SetLogLevel`.
        SetLogLevel,
        /// `GetEnvironment`.
        GetEnvironment,
    }
}

methods! {
    /// The methods of `org.varlink.service`.
    pub enum VarlinkMethod in "org.varlink.service" = idl::ORG_VARLINK_SERVICE => {
        /// `GetInfo`.
        GetInfo,
        /// `GetInterfaceDescription`.
        GetInterfaceDescription,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The method names an IDL text declares, in order.
    fn declared(idl: &str) -> Vec<&str> {
        idl.lines()
            .filter_map(|line| line.trim_start().strip_prefix("method "))
            .filter_map(|rest| rest.split(['(', ' ']).next())
            .collect()
    }

    fn check<M: Methods>() {
        let interface = M::IDL
            .lines()
            .find_map(|l| l.strip_prefix("interface "))
            .expect("an interface line");
        assert_eq!(interface, M::INTERFACE);
        let ours: Vec<&str> = M::ALL.iter().map(|m| m.member()).collect();
        assert_eq!(ours, declared(M::IDL), "{}", M::INTERFACE);
    }

    #[test]
    fn every_method_enum_lists_exactly_the_methods_of_its_idl() {
        check::<MachineMethod>();
        check::<ImageMethod>();
        check::<RegistryMethod>();
        check::<InstanceMethod>();
        check::<SupervisorMethod>();
        check::<HookMethod>();
        check::<UserDatabaseMethod>();
        check::<ServiceMethod>();
        check::<VarlinkMethod>();
    }

    #[test]
    fn every_idl_with_methods_has_an_enum() {
        let covered = [
            MachineMethod::INTERFACE,
            ImageMethod::INTERFACE,
            RegistryMethod::INTERFACE,
            InstanceMethod::INTERFACE,
            SupervisorMethod::INTERFACE,
            HookMethod::INTERFACE,
            UserDatabaseMethod::INTERFACE,
            ServiceMethod::INTERFACE,
            VarlinkMethod::INTERFACE,
        ];
        for (name, text) in idl::ALL {
            if !declared(text).is_empty() {
                assert!(covered.contains(name), "{name} has no method enum");
            }
        }
    }

    #[test]
    fn qualified_names_resolve_only_within_their_interface() {
        assert_eq!(
            MachineMethod::from_qualified("io.systemd.Machine.List"),
            Some(MachineMethod::List)
        );
        assert_eq!(
            MachineMethod::from_qualified("io.systemd.MachineList"),
            None
        );
        assert_eq!(
            MachineMethod::from_qualified("io.systemd.MachineInstance.Terminate"),
            None
        );
        assert_eq!(
            InstanceMethod::from_qualified("io.systemd.MachineInstance.Terminate"),
            Some(InstanceMethod::Terminate)
        );
    }
}
