//! The registry's reading of route netlink datagrams into a namespace's addresses
//! (`network::AddressSet::apply_datagram`): the replies to its address dump and the change
//! notifications that follow.
//!
//! Two kinds of input. Datagrams of messages (addresses added and removed with every attribute
//! and flag the kernel sends, unknown attributes, the dump's end, interruptions, errors,
//! messages that do not parse) are serialized here with `netlink-packet-route` and applied
//! one after the other, next to a model of what they say. Properties: after each datagram the
//! addresses are the model's, in machined's order (IPv4 first, then scope, interface, bytes),
//! without deprecated, tentative, host- and nowhere-scope ones; the dump is complete after its
//! own `NLMSG_DONE`, interrupted by its own error or interrupted `NLMSG_DONE` (what follows
//! in that datagram is not applied); a message that does not parse is skipped, not the rest
//! of its datagram. Any bytes at all, as one datagram, also never break those invariants.

#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroI32;

use arbitrary::{Arbitrary, Unstructured};
use berth_interfaces::machine::Address;
use berth_machine_registry::network::{AddressSet, Dump};
use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{
    DefaultNla, DoneMessage, ErrorMessage, NLM_F_DUMP_INTR, NLM_F_MULTIPART, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The sequence number of the registry's dump.
const DUMP: u32 = 1;
const RT_SCOPE_HOST: u8 = 254;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;
const RTM_NEWADDR: u16 = 20;

#[derive(Debug, Arbitrary)]
enum Message {
    New(Addr),
    Del(Addr),
    /// `NLMSG_DONE`: of the dump or of something else; interrupted or not.
    Done {
        ours: bool,
        interrupted: bool,
    },
    /// `NLMSG_ERROR`.
    Error {
        ours: bool,
        code: i32,
    },
    /// An `RTM_NEWADDR` too short to parse.
    Truncated {
        len: u8,
    },
}

#[derive(Debug, Arbitrary)]
struct Addr {
    ours: bool,
    index: u8,
    v6: bool,
    address: [u8; 16],
    /// `IFA_LOCAL`, which wins over `IFA_ADDRESS` (point-to-point links).
    local: Option<[u8; 16]>,
    /// Whether to leave `IFA_ADDRESS` out.
    no_address: bool,
    prefix_len: u8,
    scope: u8,
    header_flags: u8,
    flags: Option<u32>,
    label: Option<String>,
    cache_info: Option<[u32; 4]>,
    unknown: Option<(u8, Vec<u8>)>,
}

impl Addr {
    fn ip(&self, bytes: [u8; 16]) -> IpAddr {
        if self.v6 {
            Ipv6Addr::from(bytes).into()
        } else {
            Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()
        }
    }

    /// The address the registry takes from the message.
    fn key(&self) -> Option<(u32, IpAddr)> {
        let ip = match (self.local, self.no_address) {
            (Some(local), _) => self.ip(local),
            (None, false) => self.ip(self.address),
            (None, true) => return None,
        };
        Some((u32::from(self.index), ip))
    }

    fn usable(&self) -> bool {
        let flags = self.flags.unwrap_or(u32::from(self.header_flags));
        flags & (IFA_F_DEPRECATED | IFA_F_TENTATIVE) == 0
    }

    fn message(&self) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.family = if self.v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        message.header.prefix_len = self.prefix_len;
        message.header.flags = AddressHeaderFlags::from_bits_retain(self.header_flags);
        message.header.scope = AddressScope::from(self.scope);
        message.header.index = u32::from(self.index);
        let attributes = &mut message.attributes;
        if !self.no_address {
            attributes.push(AddressAttribute::Address(self.ip(self.address)));
        }
        if let Some(local) = self.local {
            attributes.push(AddressAttribute::Local(self.ip(local)));
        }
        if let Some(label) = &self.label {
            let label: String = label.chars().filter(|&c| c != '\0').take(15).collect();
            attributes.push(AddressAttribute::Label(label));
        }
        if let Some([ifa_preferred, ifa_valid, cstamp, tstamp]) = self.cache_info {
            let mut info = CacheInfo::default();
            info.ifa_preferred = ifa_preferred;
            info.ifa_valid = ifa_valid;
            info.cstamp = cstamp;
            info.tstamp = tstamp;
            attributes.push(AddressAttribute::CacheInfo(info));
        }
        if let Some(flags) = self.flags {
            attributes.push(AddressAttribute::Flags(AddressFlags::from_bits_retain(
                flags,
            )));
        }
        if let Some((kind, value)) = &self.unknown {
            // Past every attribute this crate knows: what a newer kernel may add.
            let kind = 32 + u16::from(*kind % 64);
            attributes.push(AddressAttribute::Other(DefaultNla::new(
                kind,
                value.clone(),
            )));
        }
        message
    }
}

/// What the datagrams say: (interface, address) to (scope, usable).
type Model = BTreeMap<(u32, IpAddr), (u8, bool)>;

fn serialize(message: &Message) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_MULTIPART;
    let (sequence, payload) = match message {
        Message::New(addr) => (
            addr.ours,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(addr.message())),
        ),
        Message::Del(addr) => (
            addr.ours,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(addr.message())),
        ),
        Message::Done { ours, interrupted } => {
            if *interrupted {
                header.flags |= NLM_F_DUMP_INTR;
            }
            (*ours, NetlinkPayload::Done(DoneMessage::default()))
        }
        Message::Error { ours, code } => {
            let mut error = ErrorMessage::default();
            error.code = NonZeroI32::new(*code);
            error.header = vec![0; 16];
            (*ours, NetlinkPayload::Error(error))
        }
        Message::Truncated { len } => {
            let len = usize::from(len % 8);
            let total = 16 + len;
            let mut bytes = vec![0; total.next_multiple_of(4)];
            bytes[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
            bytes[4..6].copy_from_slice(&RTM_NEWADDR.to_ne_bytes());
            return bytes;
        }
    };
    header.sequence_number = if sequence { DUMP } else { 0 };
    let mut message = NetlinkMessage::new(header, payload);
    message.finalize();
    let mut bytes = vec![0; message.buffer_len().next_multiple_of(4)];
    message.serialize(&mut bytes);
    bytes
}

/// Applies a datagram to the model, as it must be applied; returns where the dump stands.
fn model_apply(model: &mut Model, datagram: &[Message]) -> Dump {
    let mut dump = Dump::Running;
    for message in datagram {
        match message {
            Message::New(addr) => {
                if let Some(key) = addr.key() {
                    model.insert(key, (addr.scope, addr.usable()));
                }
            }
            Message::Del(addr) => {
                if let Some(key) = addr.key() {
                    model.remove(&key);
                }
            }
            Message::Done {
                ours: true,
                interrupted: true,
            }
            | Message::Error { ours: true, .. } => return Dump::Interrupted,
            Message::Done { ours: true, .. } => dump = Dump::Complete,
            Message::Done { .. } | Message::Error { .. } | Message::Truncated { .. } => {}
        }
    }
    dump
}

/// The addresses the model says a lookup gets, in machined's order.
fn model_view(model: &Model) -> Vec<Address> {
    let mut usable: Vec<(bool, u8, u32, Vec<u8>)> = model
        .iter()
        .filter(|(_, (scope, usable))| *usable && *scope < RT_SCOPE_HOST)
        .map(|(&(index, ip), &(scope, _))| {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            (ip.is_ipv6(), scope, index, bytes)
        })
        .collect();
    usable.sort();
    usable
        .into_iter()
        .map(|(v6, _, index, address)| Address {
            ifindex: (index != 0).then_some(index),
            family: if v6 { libc::AF_INET6 } else { libc::AF_INET },
            address,
        })
        .collect()
}

/// What any set of addresses must look like.
fn invariants(view: &[Address]) {
    for address in view {
        let len = match address.family {
            libc::AF_INET => 4,
            libc::AF_INET6 => 16,
            other => panic!("family {other}"),
        };
        assert_eq!(address.address.len(), len);
        assert_ne!(address.ifindex, Some(0));
    }
    let families: Vec<i32> = view.iter().map(|a| a.family).collect();
    assert!(families.is_sorted(), "IPv6 before IPv4");
}

fn datagrams(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let datagrams: Vec<Vec<Message>> = u.arbitrary()?;
    let mut set = AddressSet::default();
    let mut model = Model::new();
    for datagram in &datagrams {
        let bytes: Vec<u8> = datagram.iter().flat_map(serialize).collect();
        let dump = set.apply_datagram(&bytes, DUMP);
        assert_eq!(dump, model_apply(&mut model, datagram), "{datagram:?}");
        let view = set.sorted();
        invariants(&view);
        assert_eq!(view, model_view(&model), "{datagram:?}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, bytes)) => {
            let mut set = AddressSet::default();
            set.apply_datagram(bytes, DUMP);
            invariants(&set.sorted());
        }
        Some((_, rest)) => {
            let _ = datagrams(&mut Unstructured::new(rest));
        }
        None => {}
    }
});
