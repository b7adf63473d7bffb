//! The endpoints Berth's services serve, built once from the real IDL texts, and the client
//! every fuzzed call comes from.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};

use berth_interfaces::idl;
use berth_service_runtime::peer::Peer;
use berth_service_runtime::protocol::{Endpoint, ServerInfo};

/// One of the sockets Berth serves Varlink on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, arbitrary::Arbitrary)]
pub enum Served {
    /// The registry's socket: `io.systemd.Machine`, `io.systemd.MachineImage`,
    /// `io.berth.Registry`, `io.systemd.service`.
    Registry,
    /// The registry's resolve hook: `io.systemd.Resolve.Hook`.
    Hook,
    /// The userdb bridge: `io.systemd.UserDatabase`.
    UserDb,
    /// `supervise`'s control socket: `io.systemd.MachineInstance`, `io.berth.Supervisor`.
    Supervisor,
}

impl Served {
    /// Every socket.
    pub const ALL: [Self; 4] = [Self::Registry, Self::Hook, Self::UserDb, Self::Supervisor];

    /// The IDL texts served (as each service's `main` passes them; `org.varlink.service` is
    /// added by the endpoint).
    pub fn texts(self) -> &'static [&'static str] {
        match self {
            Self::Registry => &[
                idl::IO_BERTH_REGISTRY,
                idl::IO_SYSTEMD,
                idl::IO_SYSTEMD_MACHINE,
                idl::IO_SYSTEMD_MACHINE_IMAGE,
                idl::IO_SYSTEMD_SERVICE,
            ],
            Self::Hook => &[idl::IO_SYSTEMD_RESOLVE_HOOK],
            Self::UserDb => &[idl::IO_SYSTEMD, idl::IO_SYSTEMD_USER_DATABASE],
            Self::Supervisor => &[idl::IO_BERTH_SUPERVISOR, idl::IO_SYSTEMD_MACHINE_INSTANCE],
        }
    }

    /// The endpoint, parsed once.
    pub fn endpoint(self) -> &'static Endpoint {
        static ENDPOINTS: [OnceLock<Endpoint>; 4] = [const { OnceLock::new() }; 4];
        ENDPOINTS[self as usize].get_or_init(|| {
            Endpoint::new(ServerInfo::berth("fuzz"), self.texts()).expect("the IDL texts parse")
        })
    }
}

/// The client of every call: this process, on one end of a socket pair.
pub fn peer() -> &'static Arc<Peer> {
    static PEER: OnceLock<Arc<Peer>> = OnceLock::new();
    PEER.get_or_init(|| {
        let (ours, _theirs) = UnixStream::pair().expect("a socket pair");
        Arc::new(Peer::of_socket(ours.as_fd()).expect("our own credentials"))
    })
}
