//! Machine addresses, kept current by a netlink subscription inside each network namespace.
//!
//! The first lookup of a machine opens a `NETLINK_ROUTE` socket inside the leader's network
//! namespace (on a short-lived helper thread that enters the namespace, so no async thread ever
//! switches namespaces), subscribes to address changes and dumps the addresses once. From then
//! on a task applies every change as it happens, and lookups read the cache: no fork, no
//! namespace switch, no netlink round trip. The subscription ends with the machine. Each new
//! set of addresses is also handed to a publisher (the host table).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_interfaces::machine::{Address, MachineClass};
use berth_os::process::ProcessRef;
use berth_os::sys;
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use tokio::io::Interest;
use tokio::sync::{OnceCell, watch};
use tokio::task::AbortHandle;

const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
/// How long a first lookup waits for the initial dump.
const FIRST_DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a machine has no addresses to give.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The container shares the registry's network namespace.
    #[error("The machine shares the host's network namespace")]
    NoPrivateNetworking,
    /// Reading the namespace failed.
    #[error("Cannot watch the machine's addresses")]
    Io(#[from] io::Error),
}

/// What is known of a container's addresses.
#[derive(Debug, Clone, Copy)]
pub enum Observed<'a> {
    /// Nothing yet, or no longer (the watch failed).
    Unknown,
    /// Its network namespace has these addresses.
    Addresses(&'a [Address]),
    /// It shares the registry's network namespace.
    Shared,
}

/// A machine's view of its network, made on first use and shared by every copy of the machine.
pub type NetworkCell = Arc<OnceCell<Network>>;

/// Told what is known of the addresses whenever that changes.
pub type Publish = Box<dyn Fn(Observed<'_>) + Send + Sync>;

/// Where a machine's addresses come from.
#[derive(Debug)]
pub enum Network {
    /// It shares the registry's network namespace: it has none of its own.
    Shared,
    /// Its own namespace, watched.
    Watched(AddressWatch),
}

/// Addresses of one network namespace, kept current; stops watching when dropped.
#[derive(Debug)]
pub struct AddressWatch {
    addresses: Arc<Mutex<AddressSet>>,
    ready: watch::Receiver<bool>,
    task: AbortHandle,
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The addresses of a machine whose network is `cell`: of its `leader`'s network namespace
/// for a container, of the registry's own for `.host` (class `class`).
///
/// The first call opens the watch and gives it a publisher made by `publisher`, to tell what it
/// sees from then on.
///
/// # Errors
/// [`NetworkError::NoPrivateNetworking`] for a container in the registry's namespace, else
/// the error opening or watching the namespace.
pub async fn addresses(
    cell: &NetworkCell,
    leader: &ProcessRef,
    class: MachineClass,
    publisher: impl FnOnce() -> Publish,
) -> Result<Vec<Address>, NetworkError> {
    let host = class == MachineClass::Host;
    let network = cell
        .get_or_try_init(|| open(leader, host, publisher()))
        .await?;
    match network {
        Network::Shared => Err(NetworkError::NoPrivateNetworking),
        Network::Watched(watch) => watch.current().await,
    }
}

async fn open(leader: &ProcessRef, host: bool, publish: Publish) -> Result<Network, NetworkError> {
    let path = if host {
        "/proc/self/ns/net".to_owned()
    } else {
        format!("/proc/{}/ns/net", leader.pid())
    };
    let netns = File::open(path)?;
    if !host && !leader.is_alive() {
        // The PID may be someone else's by now; that namespace is not the machine's.
        return Err(io::Error::from_raw_os_error(libc::ESRCH).into());
    }
    let own_namespace_ok = host;
    let ours = std::fs::metadata("/proc/self/ns/net")?;
    let theirs = netns.metadata()?;
    let shared = (ours.dev(), ours.ino()) == (theirs.dev(), theirs.ino());
    if shared && !own_namespace_ok {
        publish(Observed::Shared);
        return Ok(Network::Shared);
    }
    let socket = if shared {
        subscribe()?
    } else {
        subscribe_in(OwnedFd::from(netns)).await?
    };
    Ok(Network::Watched(AddressWatch::start(socket, publish)?))
}

/// Opens the subscription inside `netns`, on a thread of its own that enters the namespace
/// and ends right after (a thread that switched namespaces is never reused).
async fn subscribe_in(netns: OwnedFd) -> io::Result<OwnedFd> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-open".into())
        .spawn(move || {
            let result = rustix::thread::move_into_link_name_space(
                netns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(io::Error::from)
            .and_then(|()| subscribe());
            let _ = sender.send(result);
        })?;
    receiver.await.map_err(io::Error::other)?
}

/// A route netlink socket in the calling thread's namespace, subscribed to address changes.
fn subscribe() -> io::Result<OwnedFd> {
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    // NETLINK_ROUTE is protocol 0, the family's default.
    let socket = rustix::net::socket_with(AddressFamily::NETLINK, SocketType::RAW, flags, None)?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&socket, 1024 * 1024)?;
    let groups = SocketAddrNetlink::new(0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
    rustix::net::bind(&socket, &groups)?;
    Ok(socket)
}

impl AddressWatch {
    fn start(socket: OwnedFd, publish: Publish) -> io::Result<Self> {
        let socket = sys::async_fd(socket, Interest::READABLE | Interest::WRITABLE)?;
        let addresses = Arc::new(Mutex::new(AddressSet::default()));
        let (ready_tx, ready) = watch::channel(false);
        let shared = Arc::clone(&addresses);
        let task = tokio::spawn(async move {
            if let Err(error) = follow(&socket, &shared, &ready_tx, &publish).await {
                tracing::warn!(%error, "Watching a machine's addresses failed, ignoring");
            }
            publish(Observed::Unknown);
        });
        Ok(Self {
            addresses,
            ready,
            task: task.abort_handle(),
        })
    }

    /// The current addresses, sorted; waits for the first dump if it is still running.
    async fn current(&self) -> Result<Vec<Address>, NetworkError> {
        let mut ready = self.ready.clone();
        let waited = tokio::time::timeout(FIRST_DUMP_TIMEOUT, ready.wait_for(|r| *r)).await;
        if !matches!(waited, Ok(Ok(_))) {
            return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT).into());
        }
        Ok(lock(&self.addresses).sorted())
    }
}

/// Dumps the addresses, then applies every change; dumps again when the kernel says a dump
/// was interrupted or notifications were lost. A dump fills a set of its own, so lookups see
/// the last complete view until it is done. Publishes every view that differs from the last.
async fn follow(
    socket: &tokio::io::unix::AsyncFd<OwnedFd>,
    addresses: &Mutex<AddressSet>,
    ready: &watch::Sender<bool>,
    publish: &Publish,
) -> io::Result<()> {
    let mut sequence = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut published = None;
    'dump: loop {
        sequence += 1;
        let mut dumped = AddressSet::default();
        send_dump_request(socket, sequence).await?;
        loop {
            let received = match receive(socket, &mut buffer).await {
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue 'dump,
                other => other?,
            };
            match dumped.apply_datagram(&buffer[..received], sequence) {
                Dump::Complete => break,
                Dump::Interrupted => continue 'dump,
                Dump::Running => {}
            }
        }
        let mut view = dumped.sorted();
        *lock(addresses) = dumped;
        ready.send_replace(true);
        loop {
            if published.as_ref() != Some(&view) {
                publish(Observed::Addresses(&view));
                published = Some(view);
            }
            let received = match receive(socket, &mut buffer).await {
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue 'dump,
                other => other?,
            };
            let mut set = lock(addresses);
            set.apply_datagram(&buffer[..received], sequence);
            view = set.sorted();
        }
    }
}

fn lock(addresses: &Mutex<AddressSet>) -> std::sync::MutexGuard<'_, AddressSet> {
    addresses.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn send_dump_request(
    socket: &tokio::io::unix::AsyncFd<OwnedFd>,
    sequence: u32,
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetAddress(AddressMessage::default())),
    );
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    loop {
        let mut guard = socket.writable().await?;
        match guard.try_io(|fd| Ok(rustix::net::send(fd.get_ref(), &bytes, SendFlags::empty())?)) {
            Ok(result) => return result.map(|_| ()),
            Err(_would_block) => {}
        }
    }
}

async fn receive(
    socket: &tokio::io::unix::AsyncFd<OwnedFd>,
    buffer: &mut [u8],
) -> io::Result<usize> {
    loop {
        let mut guard = socket.readable().await?;
        match guard
            .try_io(|fd| Ok(rustix::net::recv(fd.get_ref(), &mut *buffer, RecvFlags::empty())?.0))
        {
            Ok(result) => return result,
            Err(_would_block) => {}
        }
    }
}

/// Where a dump stands after a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// More is to come.
    Running,
    /// The dump's `NLMSG_DONE` came.
    Complete,
    /// The kernel interrupted the dump or failed it: dump again.
    Interrupted,
}

/// One address as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    scope: u8,
    usable: bool,
}

/// The addresses of a namespace, by (interface, address).
#[derive(Debug, Default)]
pub struct AddressSet {
    entries: HashMap<(u32, IpAddr), Entry>,
}

impl AddressSet {
    /// Applies every message of a datagram received on a route netlink socket; reports on
    /// the dump `sequence`.
    pub fn apply_datagram(&mut self, mut bytes: &[u8], sequence: u32) -> Dump {
        let mut dump = Dump::Running;
        while let Some(length) = message_length(bytes) {
            // A message that does not parse is skipped, not the rest of the datagram (its end
            // of dump among them).
            if let Ok(message) =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..length])
            {
                let ours = message.header.sequence_number == sequence;
                match message.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                        self.apply(&m, true)
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                        self.apply(&m, false)
                    }
                    NetlinkPayload::Done(_)
                        if ours && message.header.flags & NLM_F_DUMP_INTR != 0 =>
                    {
                        return Dump::Interrupted;
                    }
                    NetlinkPayload::Done(_) if ours => dump = Dump::Complete,
                    NetlinkPayload::Error(_) if ours => return Dump::Interrupted,
                    _ => {}
                }
            }
            bytes = bytes.get(length.next_multiple_of(4)..).unwrap_or_default();
        }
        dump
    }

    fn apply(&mut self, message: &AddressMessage, present: bool) {
        let Some(address) = address_of(message) else {
            return;
        };
        let key = (message.header.index, address);
        if !present {
            self.entries.remove(&key);
            return;
        }
        let entry = Entry {
            scope: scope_value(message.header.scope),
            usable: !is_deprecated_or_tentative(message),
        };
        self.entries.insert(key, entry);
    }

    /// machined's order: IPv4 first, then scope, interface index, address bytes; without
    /// deprecated, tentative, host- and nowhere-scope addresses.
    pub fn sorted(&self) -> Vec<Address> {
        let mut usable: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.usable && e.scope < scope_value(AddressScope::Host))
            .map(|(&(ifindex, address), e)| (address.is_ipv6(), e.scope, ifindex, octets(address)))
            .collect();
        usable.sort();
        usable.dedup();
        usable
            .into_iter()
            .map(|(v6, _, ifindex, bytes)| Address {
                ifindex: (ifindex != 0).then_some(ifindex),
                family: if v6 { AF_INET6 } else { AF_INET },
                address: bytes,
            })
            .collect()
    }
}

/// The length of the netlink message `bytes` begin with, from its header, if it is whole.
fn message_length(bytes: &[u8]) -> Option<usize> {
    let length = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    (16..=bytes.len()).contains(&length).then_some(length)
}

/// `IFA_LOCAL` if present (the local end of a point-to-point link), else `IFA_ADDRESS`.
fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// The 32-bit `IFA_FLAGS` when present, else the header's 8-bit flags.
fn is_deprecated_or_tentative(message: &AddressMessage) -> bool {
    let extended = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Flags(flags) => Some(*flags),
        _ => None,
    });
    match extended {
        Some(flags) => flags.intersects(AddressFlags::Deprecated | AddressFlags::Tentative),
        None => message
            .header
            .flags
            .intersects(AddressHeaderFlags::Deprecated | AddressHeaderFlags::Tentative),
    }
}

fn scope_value(scope: AddressScope) -> u8 {
    u8::from(scope)
}

fn octets(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn message(
        index: u32,
        address: IpAddr,
        scope: AddressScope,
        flags: AddressHeaderFlags,
    ) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.scope = scope;
        m.header.flags = flags;
        m.attributes.push(AddressAttribute::Address(address));
        m
    }

    fn datagram(messages: Vec<NetlinkPayload<RouteNetlinkMessage>>) -> Vec<u8> {
        let mut bytes = Vec::new();
        for payload in messages {
            let mut header = NetlinkHeader::default();
            header.sequence_number = 1;
            let mut message = NetlinkMessage::new(header, payload);
            message.finalize();
            let at = bytes.len();
            bytes.resize(at + message.buffer_len(), 0);
            message.serialize(&mut bytes[at..]);
        }
        bytes
    }

    /// Found by fuzzing (`netlink`): a message that did not parse dropped the rest of its
    /// datagram, so a dump whose end came after one never completed (and lookups timed out).
    #[test]
    fn fuzz_a_message_that_does_not_parse_is_skipped_alone() {
        let address = message(
            2,
            Ipv4Addr::new(198, 51, 100, 7).into(),
            AddressScope::Universe,
            AddressHeaderFlags::empty(),
        );
        let new = NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address));
        let done = NetlinkPayload::Done(Default::default());
        // An RTM_NEWADDR without its ifaddrmsg.
        let mut bytes = vec![16, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend(datagram(vec![new, done]));
        let mut set = AddressSet::default();
        assert_eq!(set.apply_datagram(&bytes, 1), Dump::Complete);
        assert_eq!(set.sorted().len(), 1);
        // A length past the datagram's end ends it.
        bytes[0] = 200;
        assert_eq!(
            AddressSet::default().apply_datagram(&bytes, 1),
            Dump::Running
        );
    }

    #[test]
    fn addresses_sort_like_machined_and_skip_unusable_ones() {
        let mut set = AddressSet::default();
        let none = AddressHeaderFlags::empty();
        let v6_global: IpAddr = "2001:db8::7".parse().unwrap();
        let v6_link: IpAddr = "fe80::1".parse().unwrap();
        let v4_b: IpAddr = Ipv4Addr::new(198, 51, 100, 9).into();
        let v4_a: IpAddr = Ipv4Addr::new(198, 51, 100, 7).into();
        set.apply(&message(2, v6_link, AddressScope::Link, none), true);
        set.apply(&message(2, v6_global, AddressScope::Universe, none), true);
        set.apply(&message(3, v4_b, AddressScope::Universe, none), true);
        set.apply(&message(2, v4_a, AddressScope::Universe, none), true);
        set.apply(
            &message(1, Ipv4Addr::LOCALHOST.into(), AddressScope::Host, none),
            true,
        );
        set.apply(
            &message(1, Ipv6Addr::LOCALHOST.into(), AddressScope::Host, none),
            true,
        );
        let tentative: IpAddr = "2001:db8::99".parse().unwrap();
        set.apply(
            &message(
                2,
                tentative,
                AddressScope::Universe,
                AddressHeaderFlags::Tentative,
            ),
            true,
        );
        let gone: IpAddr = Ipv4Addr::new(198, 51, 100, 8).into();
        set.apply(&message(2, gone, AddressScope::Universe, none), true);
        set.apply(&message(2, gone, AddressScope::Universe, none), false);
        let sorted: Vec<(i32, Vec<u8>, Option<u32>)> = set
            .sorted()
            .into_iter()
            .map(|a| (a.family, a.address, a.ifindex))
            .collect();
        assert_eq!(
            sorted,
            [
                (AF_INET, vec![198, 51, 100, 7], Some(2)),
                (AF_INET, vec![198, 51, 100, 9], Some(3)),
                (AF_INET6, octets(v6_global), Some(2)),
                (AF_INET6, octets(v6_link), Some(2)),
            ]
        );
    }
}
