//! The module's entry points, called directly by a C driver: statuses, `errno`, `h_errno` and
//! buffer layouts exactly as nss-mymachines has them (spec §4.2).

use berth_tests::daemon::Registry;
use berth_tests::netns::NetnsLeader;
use berth_tests::nss::{Driver, ERRNO_SENTINEL, ERRNOP_SENTINEL, Outcome};
use berth_tests::process::Proc;
use berth_tests::{require, wait};

const AF_UNSPEC: i32 = 0;
const AF_UNIX: i32 = 1;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

const SUCCESS: i64 = 1;
const NOTFOUND: i64 = 0;
const UNAVAIL: i64 = -1;
const TRYAGAIN: i64 = -2;

const NETDB_INTERNAL: i64 = -1;
const HOST_NOT_FOUND: i64 = 1;
const NO_RECOVERY: i64 = 3;

const POINTER: usize = size_of::<usize>();
/// `sizeof(struct gaih_addrtuple)`.
const TUPLE: usize = 5 * POINTER;

fn can_run() -> bool {
    require::root()
        && require::program("unshare")
        && require::program("nsenter")
        && require::program("cc")
}

fn assert_success(out: &Outcome) {
    assert_eq!(out.status(), (SUCCESS, ERRNOP_SENTINEL, 0), "{out:?}");
    assert_eq!(out.int("errno"), ERRNO_SENTINEL, "errno is kept: {out:?}");
    assert_eq!(out.int("h_errno"), 0, "{out:?}");
}

fn assert_unavailable(out: &Outcome, errno: i32) {
    let errno = i64::from(errno);
    assert_eq!(out.status(), (UNAVAIL, errno, NO_RECOVERY), "{out:?}");
    assert_eq!(out.int("errno"), errno, "{out:?}");
}

#[test]
fn every_entry_point_resolves_a_container_as_nss_mymachines_does() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    let leader = NetnsLeader::start();
    leader.ip(&["addr", "add", "198.51.100.7/24", "dev", "veth0"]);
    leader.ip(&["addr", "add", "198.51.100.9/24", "dev", "veth1"]);
    leader.ip(&["addr", "add", "2001:db8::7/64", "dev", "veth0"]);
    let mut ipv4 = [
        ("198.51.100.7", leader.ifindex("veth0")),
        ("198.51.100.9", leader.ifindex("veth1")),
    ];
    ipv4.sort_by_key(|(_, ifindex)| *ifindex);
    let [first, second] = ipv4.map(|(address, _)| address);
    registry.register("demo", "container", leader.pid(), &[5]);
    let socket = registry.socket();
    let driver = Driver::new();

    // Every address: IPv4 first, then IPv6 (global before link-local), each with the one
    // registered interface as its scope.
    let out = driver.call(&socket, "gethostbyname4_r", "demo", AF_UNSPEC, 4096);
    assert_success(&out);
    assert_eq!((out.int("ttl"), out.int("copied")), (0, 0));
    let tuples = out.addresses();
    assert_eq!(
        tuples[..3],
        [
            format!("2 {first} scopeid=5 name=demo"),
            format!("2 {second} scopeid=5 name=demo"),
            "10 2001:db8::7 scopeid=5 name=demo".to_owned(),
        ]
    );
    assert!(
        tuples[3..]
            .iter()
            .all(|t| t.starts_with("10 fe80::") && t.ends_with(" scopeid=5 name=demo")),
        "{tuples:?}"
    );
    // With a tuple of the caller's own in *pat, the first is copied there.
    let copied = Outcome::of(
        driver
            .command(&socket, "gethostbyname4_r", "demo", AF_UNSPEC, 4096)
            .arg("copy"),
    );
    assert_success(&copied);
    assert_eq!(copied.int("copied"), 1);
    assert_eq!(copied.addresses()[..3], tuples[..3]);

    // One family as a hostent: AF_UNSPEC means AF_INET.
    for af in [AF_INET, AF_UNSPEC] {
        let out = driver.call(&socket, "gethostbyname3_r", "demo", af, 4096);
        assert_success(&out);
        assert_eq!(
            (out.get("name"), out.get("canon"), out.int("ttl")),
            (Some("demo"), Some("demo"), 0)
        );
        assert_eq!((out.int("length"), out.get("alias")), (4, None));
        assert_eq!(
            out.addresses(),
            [format!("2 {first}"), format!("2 {second}")]
        );
    }
    let out = driver.call(&socket, "gethostbyname3_r", "demo", AF_INET6, 4096);
    assert_success(&out);
    assert_eq!(out.int("length"), 16);
    assert_eq!(out.addresses()[0], "10 2001:db8::7");
    assert!(
        out.addresses()[1..]
            .iter()
            .all(|a| a.starts_with("10 fe80::"))
    );

    let out = driver.call(&socket, "gethostbyname2_r", "demo", AF_INET6, 4096);
    assert_success(&out);
    assert_eq!(
        (out.int("length"), out.addresses()[0]),
        (16, "10 2001:db8::7")
    );
    let out = driver.call(&socket, "gethostbyname_r", "demo", AF_UNSPEC, 4096);
    assert_success(&out);
    assert_eq!(
        out.addresses(),
        [format!("2 {first}"), format!("2 {second}")]
    );
}

#[test]
fn too_small_a_buffer_asks_to_try_again_with_erange() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    let leader = NetnsLeader::ipv4_only(&["198.51.100.7/24"]);
    registry.register("demo", "container", leader.pid(), &[]);
    let (socket, driver) = (registry.socket(), Driver::new());
    // "demo\0" takes 8 bytes; then one tuple, or an empty alias list, one address (8 bytes)
    // and a null-terminated list of one pointer.
    let needed = [
        ("gethostbyname4_r", 8 + TUPLE),
        ("gethostbyname3_r", 8 + POINTER + 8 + 2 * POINTER),
        ("gethostbyname2_r", 8 + POINTER + 8 + 2 * POINTER),
        ("gethostbyname_r", 8 + POINTER + 8 + 2 * POINTER),
    ];
    for (function, size) in needed {
        let out = driver.call(&socket, function, "demo", AF_INET, size - 1);
        assert_eq!(
            out.status(),
            (TRYAGAIN, i64::from(libc::ERANGE), NETDB_INTERNAL),
            "{function}: {out:?}"
        );
        assert_eq!(out.int("errno"), i64::from(libc::ERANGE), "{function}");
        let out = driver.call(&socket, function, "demo", AF_INET, size);
        assert_success(&out);
        assert_eq!(
            out.addresses()[0].split(' ').nth(1),
            Some("198.51.100.7"),
            "{function}"
        );
    }
}

#[test]
fn only_containers_with_a_network_of_their_own_resolve() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    let (vm, shared) = (Proc::sleeper(), Proc::sleeper());
    let v4_only = NetnsLeader::ipv4_only(&["198.51.100.7/24"]);
    let no_addresses = NetnsLeader::ipv4_only(&[]);
    registry.register("vmachine", "vm", vm.pid(), &[]);
    registry.register("shared", "container", shared.pid(), &[]);
    registry.register("v4only", "container", v4_only.pid(), &[]);
    registry.register("bare", "container", no_addresses.pid(), &[]);
    let (socket, driver) = (registry.socket(), Driver::new());

    let unavailable = [
        ("nope", libc::ENXIO),
        ("vmachine", libc::ENOTTY),
        (".host", libc::ENOTTY),
        ("shared", libc::ENOSYS),
        ("bad_name", libc::EINVAL),
    ];
    for (name, errno) in unavailable {
        for function in ["gethostbyname4_r", "gethostbyname3_r"] {
            assert_unavailable(&driver.call(&socket, function, name, AF_INET, 4096), errno);
        }
    }
    assert_unavailable(
        &driver.call(&socket, "gethostbyname3_r", "v4only", AF_UNIX, 4096),
        libc::EAFNOSUPPORT,
    );

    let not_found = [
        ("gethostbyname3_r", "v4only", AF_INET6),
        ("gethostbyname4_r", "bare", AF_UNSPEC),
        ("gethostbyname_r", "bare", AF_UNSPEC),
    ];
    for (function, name, af) in not_found {
        let out = driver.call(&socket, function, name, af, 4096);
        assert_eq!(
            out.status(),
            (NOTFOUND, ERRNOP_SENTINEL, HOST_NOT_FOUND),
            "{function} {name}: {out:?}"
        );
        assert_eq!(out.int("errno"), ERRNO_SENTINEL, "{function} {name}");
    }

    // Users and groups are userdb's business: the stubs find nothing and touch nothing.
    for (function, key) in [
        ("getpwnam_r", "root"),
        ("getpwuid_r", "0"),
        ("getgrnam_r", "root"),
        ("getgrgid_r", "0"),
    ] {
        let out = driver.call(&socket, function, key, AF_UNSPEC, 4096);
        assert_eq!(
            (out.int("status"), out.int("errnop")),
            (NOTFOUND, ERRNOP_SENTINEL),
            "{function}"
        );
    }
}

#[test]
fn an_address_added_inside_the_container_shows_on_the_next_lookup() {
    if !can_run() {
        return;
    }
    let registry = Registry::start();
    let leader = NetnsLeader::ipv4_only(&["198.51.100.7/24"]);
    registry.register("demo", "container", leader.pid(), &[]);
    let (socket, driver) = (registry.socket(), Driver::new());
    let lookup = || driver.call(&socket, "gethostbyname3_r", "demo", AF_INET, 4096);
    assert_eq!(lookup().addresses(), ["2 198.51.100.7"]);

    leader.ip(&["addr", "add", "198.51.100.77/24", "dev", "veth0"]);
    wait::until("the new address", || {
        lookup().addresses() == ["2 198.51.100.7", "2 198.51.100.77"]
    });
    leader.ip(&["addr", "del", "198.51.100.77/24", "dev", "veth0"]);
    wait::until("the address to go", || {
        lookup().addresses() == ["2 198.51.100.7"]
    });
}
