//! Machine addresses: from the container's own network namespace, kept current, in machined's
//! order; through `List` metadata and Berth's `ResolveHost`.

use berth_interfaces::client::{MachineProxy, RegistryProxy};
use berth_interfaces::machine::{
    AcquireMetadata, Address, ListRequest, MachineClass, MachineError, MachineLookup,
    RegisterRequest,
};
use berth_tests::daemon::Registry;
use berth_tests::netns::NetnsLeader;
use berth_tests::process::Proc;
use berth_tests::{require, wait};

fn register_request(name: &str, class: MachineClass, leader: u32) -> RegisterRequest {
    RegisterRequest {
        if_indices: Some(vec![7]),
        ..berth_tests::machines::machine(name, class, leader)
    }
}

fn with_metadata(name: &str, metadata: AcquireMetadata) -> ListRequest {
    ListRequest {
        lookup: MachineLookup::by_name(name),
        acquire_metadata: Some(metadata),
    }
}

fn v4(bytes: [u8; 4], ifindex: u32) -> Address {
    Address {
        ifindex: Some(ifindex),
        family: 2,
        address: bytes.to_vec(),
    }
}

fn v6(text: &str, ifindex: u32) -> Address {
    let ip: std::net::Ipv6Addr = text.parse().unwrap();
    Address {
        ifindex: Some(ifindex),
        family: 10,
        address: ip.octets().to_vec(),
    }
}

#[tokio::test]
async fn a_container_has_the_addresses_of_its_namespace_in_machined_order() {
    if !(require::root() && require::program("unshare") && require::program("nsenter")) {
        return;
    }
    let registry = Registry::start();
    let leader = NetnsLeader::start();
    leader.ip(&["addr", "add", "198.51.100.9/24", "dev", "veth1"]);
    leader.ip(&["addr", "add", "198.51.100.7/24", "dev", "veth0"]);
    leader.ip(&["addr", "add", "2001:db8::7/64", "dev", "veth0"]);
    leader.ip(&[
        "addr",
        "add",
        "2001:db8::8/64",
        "dev",
        "veth0",
        "preferred_lft",
        "0",
    ]);
    let (veth0, veth1) = (leader.ifindex("veth0"), leader.ifindex("veth1"));
    let mut conn = registry.connect().await;
    conn.register(&register_request(
        "netted",
        MachineClass::Container,
        leader.pid(),
    ))
    .await
    .unwrap()
    .unwrap();

    let info = conn
        .list(&with_metadata("netted", AcquireMetadata::Yes))
        .await
        .unwrap()
        .unwrap();
    let addresses = info.addresses.expect("addresses");
    let global: Vec<_> = addresses
        .iter()
        .filter(|a| a.address[0] != 0xfe)
        .cloned()
        .collect();
    // IPv4 first; within a scope by interface index, then by bytes.
    let mut v4s = vec![v4([198, 51, 100, 7], veth0), v4([198, 51, 100, 9], veth1)];
    v4s.sort_by_key(|a| a.ifindex);
    let expected: Vec<_> = v4s.into_iter().chain([v6("2001:db8::7", veth0)]).collect();
    assert_eq!(global, expected, "the deprecated 2001:db8::8 must not show");
    // Link-local IPv6 addresses come last (scope link sorts after global) and loopback never.
    assert!(
        addresses
            .iter()
            .skip(3)
            .all(|a| a.family == 10 && a.address[..2] == [0xfe, 0x80]),
        "{addresses:?}"
    );
    assert!(!addresses.iter().any(|a| a.address == [127, 0, 0, 1]));

    let resolved = conn.resolve_host("netted").await.unwrap().unwrap();
    assert_eq!(resolved.class, MachineClass::Container);
    assert_eq!(resolved.addresses.as_ref(), Some(&addresses));
    assert_eq!(resolved.if_indices, Some(vec![7]));

    // An address added later shows on the next lookup, one removed goes.
    leader.ip(&["addr", "add", "198.51.100.200/24", "dev", "veth0"]);
    leader.ip(&["addr", "del", "198.51.100.9/24", "dev", "veth1"]);
    wait::until_async("the new address", || async {
        let mut conn = registry.connect().await;
        let now = conn
            .resolve_host("netted")
            .await
            .unwrap()
            .unwrap()
            .addresses
            .unwrap();
        now.contains(&v4([198, 51, 100, 200], veth0))
            && !now.contains(&v4([198, 51, 100, 9], veth1))
    })
    .await;
}

#[tokio::test]
async fn containers_without_a_namespace_of_their_own_and_vms_have_no_addresses() {
    let registry = Registry::start();
    let shared = Proc::sleeper();
    let vm = Proc::sleeper();
    let mut conn = registry.connect().await;
    conn.register(&register_request(
        "shared",
        MachineClass::Container,
        shared.pid(),
    ))
    .await
    .unwrap()
    .unwrap();
    conn.register(&register_request("vm", MachineClass::Vm, vm.pid()))
        .await
        .unwrap()
        .unwrap();

    let strict = conn
        .list(&with_metadata("shared", AcquireMetadata::Yes))
        .await
        .unwrap();
    assert_eq!(strict, Err(MachineError::NoPrivateNetworking));
    let graceful = conn
        .list(&with_metadata("shared", AcquireMetadata::Graceful))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(graceful.addresses, None);
    assert_eq!(
        conn.resolve_host("shared").await.unwrap(),
        Err(MachineError::NoPrivateNetworking)
    );

    assert_eq!(
        conn.list(&with_metadata("vm", AcquireMetadata::Yes))
            .await
            .unwrap(),
        Err(MachineError::NotAvailable)
    );
    let resolved = conn.resolve_host("vm").await.unwrap().unwrap();
    assert_eq!(
        (resolved.class, resolved.addresses),
        (MachineClass::Vm, None)
    );

    assert_eq!(
        conn.resolve_host("nope").await.unwrap(),
        Err(MachineError::NoSuchMachine)
    );
    let host = conn.resolve_host(".host").await.unwrap().unwrap();
    assert_eq!((host.class, host.addresses), (MachineClass::Host, None));
    let host = conn
        .list(&with_metadata(".host", AcquireMetadata::Graceful))
        .await
        .unwrap()
        .unwrap();
    let host_addresses = host.addresses.expect("the host's own addresses");
    assert!(!host_addresses.iter().any(|a| a.address == [127, 0, 0, 1]));
}
