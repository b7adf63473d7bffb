//! The safe core of the module: a host name in, a [`Response`] out (spec §4.2).

use berth_interfaces::machine::{Address, MachineClass};
use berth_interfaces::names;

use crate::layout::{self, HostEntry, Refusal};
use crate::query::{self, Connect, Errno};
use crate::settings::Settings;
use crate::table::{self, Lookup};

/// What an entry point reports to glibc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<T> {
    /// `NSS_STATUS_SUCCESS`, `h_errno` `NETDB_SUCCESS`; the answer is in the buffer.
    Success(T),
    /// `NSS_STATUS_NOTFOUND`, `h_errno` `HOST_NOT_FOUND`: a container without addresses (of
    /// the family asked for).
    NotFound,
    /// `NSS_STATUS_TRYAGAIN`, `errno` `ERANGE`, `h_errno` `NETDB_INTERNAL`: the buffer is too
    /// small.
    TryAgain,
    /// `NSS_STATUS_UNAVAIL` with this `errno`, `h_errno` `NO_RECOVERY`: not a container, unknown,
    /// or the registry could not be asked.
    Unavail(i32),
}

impl<T> From<Result<T, Refusal>> for Response<T> {
    fn from(result: Result<T, Refusal>) -> Self {
        match result {
            Ok(answer) => Self::Success(answer),
            Err(Refusal::NotFound) => Self::NotFound,
            Err(Refusal::TooSmall) => Self::TryAgain,
            Err(Refusal::Errno(errno)) => Self::Unavail(errno),
        }
    }
}

/// How to reach the registry.
#[derive(Debug, Clone)]
pub struct Context {
    /// From the environment.
    pub settings: Settings,
    /// The bounded connect.
    pub connect: Connect,
}

/// The caller's buffer and the address it starts at.
#[derive(Debug)]
pub struct Buffer<'a> {
    /// The buffer.
    pub bytes: &'a mut [u8],
    /// Its address in memory (pointers into it are written as numbers).
    pub base: usize,
}

/// A container's addresses, and the scope to give them.
#[derive(Debug)]
struct Container {
    addresses: Vec<Address>,
    /// The registered interface index if there is exactly one, else 0.
    scope_id: u32,
}

/// `gethostbyname4_r`: every address of the container, as a chain of `gaih_addrtuple`s;
/// the answer is the offset of the first tuple in the buffer.
pub fn gethostbyname4(name: &[u8], context: &Context, buffer: Buffer<'_>) -> Response<usize> {
    let found = utf8(name).and_then(|name| Ok((name, container(name, context)?)));
    match found {
        Ok((name, container)) => layout::tuples(
            name,
            &container.addresses,
            container.scope_id,
            buffer.bytes,
            buffer.base,
        )
        .into(),
        Err(Errno(errno)) => Response::Unavail(errno),
    }
}

/// `gethostbyname3_r`: the container's addresses of family `af` (`AF_UNSPEC` means
/// `AF_INET`) as a `hostent`.
pub fn gethostbyname3(
    name: &[u8],
    af: i32,
    context: &Context,
    buffer: Buffer<'_>,
) -> Response<HostEntry> {
    let af = if af == libc::AF_UNSPEC {
        libc::AF_INET
    } else {
        af
    };
    if layout::address_length(af).is_none() {
        return Response::Unavail(libc::EAFNOSUPPORT);
    }
    let found = utf8(name).and_then(|name| Ok((name, container(name, context)?)));
    match found {
        Ok((name, container)) => {
            layout::host_entry(name, af, &container.addresses, buffer.bytes, buffer.base).into()
        }
        Err(Errno(errno)) => Response::Unavail(errno),
    }
}

/// Machine names are ASCII; anything else is not a valid name.
fn utf8(name: &[u8]) -> Result<&str, Errno> {
    std::str::from_utf8(name).map_err(|_| Errno(libc::EINVAL))
}

/// What the registry's host table or, failing that, the registry says about `name` (unless
/// asking could deadlock); only containers resolve. An invalid name is refused as the registry
/// would refuse it.
fn container(name: &str, context: &Context) -> Result<Container, Errno> {
    if !names::is_valid_lookup_name(name) {
        return Err(Errno(libc::EINVAL));
    }
    let socket = &context.settings.socket;
    let reply = match table::lookup(socket, name) {
        Lookup::Answer(answer) => answer?,
        Lookup::Ask if context.settings.avoid_deadlock => return Err(Errno(libc::EDEADLK)),
        Lookup::Ask => query::resolve_host(socket, name, context.connect)?,
    };
    if reply.class != MachineClass::Container {
        return Err(Errno(libc::ENOTTY));
    }
    let scope_id = match reply.if_indices.as_deref() {
        // As C assigns an int to a uint32_t.
        Some(&[index]) => index as u32,
        _ => 0,
    };
    Ok(Container {
        addresses: reply.addresses.unwrap_or_default(),
        scope_id,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::test_utils::{Socket, plain_connect, serve};

    fn context(socket: &Socket) -> Context {
        Context {
            settings: Settings {
                socket: socket.path(),
                avoid_deadlock: false,
            },
            connect: plain_connect,
        }
    }

    fn at(bytes: &mut [u8]) -> Buffer<'_> {
        Buffer {
            bytes,
            base: 0x1000,
        }
    }

    fn four(reply: &'static str, buffer: &mut [u8]) -> Response<usize> {
        let socket = Socket::new("lookup4");
        let server = serve(&socket, reply);
        let context = context(&socket);
        let response = gethostbyname4(b"demo", &context, at(buffer));
        server.join().unwrap();
        response
    }

    fn three(af: i32, reply: &'static str) -> Response<HostEntry> {
        let socket = Socket::new("lookup3");
        let server = serve(&socket, reply);
        let mut buffer = [0; 256];
        let response = gethostbyname3(b"demo", af, &context(&socket), at(&mut buffer));
        server.join().unwrap();
        response
    }

    const TWO: &str = r#"{"parameters":{"class":"container","addresses":[{"ifindex":2,"family":2,"address":[198,51,100,7]},{"ifindex":2,"family":10,"address":[254,128,0,0,0,0,0,0,0,0,0,0,0,0,0,1]}],"ifIndices":[5]}}"#;

    #[test]
    fn a_container_resolves_with_the_scope_of_its_one_registered_interface() {
        let mut buffer = [0; 256];
        assert_eq!(four(TWO, &mut buffer), Response::Success(8));
        let scope = 8 + std::mem::offset_of!(layout::GaihAddrtuple, scopeid);
        assert_eq!(buffer[scope..scope + 4], 5u32.to_ne_bytes());
        let many = r#"{"parameters":{"class":"container","addresses":[{"family":2,"address":[198,51,100,7]}],"ifIndices":[5,6]}}"#;
        assert_eq!(four(many, &mut buffer), Response::Success(8));
        assert_eq!(buffer[scope..scope + 4], [0; 4]);
    }

    #[test]
    fn too_small_a_buffer_asks_to_try_again() {
        let mut buffer = [0; 40];
        assert_eq!(four(TWO, &mut buffer), Response::TryAgain);
    }

    #[test]
    fn only_containers_with_addresses_resolve() {
        let mut buffer = [0; 256];
        let vm = r#"{"parameters":{"class":"vm"}}"#;
        assert_eq!(four(vm, &mut buffer), Response::Unavail(libc::ENOTTY));
        let host = r#"{"parameters":{"class":"host"}}"#;
        assert_eq!(four(host, &mut buffer), Response::Unavail(libc::ENOTTY));
        let empty = r#"{"parameters":{"class":"container","addresses":[]}}"#;
        assert_eq!(four(empty, &mut buffer), Response::NotFound);
        let unknown = r#"{"error":"io.systemd.Machine.NoSuchMachine","parameters":{}}"#;
        assert_eq!(four(unknown, &mut buffer), Response::Unavail(libc::ENXIO));
    }

    #[test]
    fn a_host_entry_has_one_family_ipv4_by_default() {
        let Response::Success(entry) = three(libc::AF_UNSPEC, TWO) else {
            panic!("not found")
        };
        assert_eq!((entry.family, entry.length), (libc::AF_INET, 4));
        let Response::Success(entry) = three(libc::AF_INET6, TWO) else {
            panic!("not found")
        };
        assert_eq!((entry.family, entry.length), (libc::AF_INET6, 16));
        let v4_only = r#"{"parameters":{"class":"container","addresses":[{"family":2,"address":[198,51,100,7]}]}}"#;
        assert_eq!(three(libc::AF_INET6, v4_only), Response::NotFound);
    }

    #[test]
    fn some_lookups_never_ask_the_registry() {
        let nowhere = Context {
            settings: Settings {
                socket: PathBuf::from("/nonexistent/berth/socket"),
                avoid_deadlock: false,
            },
            connect: plain_connect,
        };
        let mut buffer = [0; 256];
        assert_eq!(
            gethostbyname3(b"demo", libc::AF_UNIX, &nowhere, at(&mut buffer)),
            Response::Unavail(libc::EAFNOSUPPORT)
        );
        assert_eq!(
            gethostbyname4(b"d\xffmo", &nowhere, at(&mut buffer)),
            Response::Unavail(libc::EINVAL)
        );
        let activating = Context {
            settings: Settings {
                avoid_deadlock: true,
                ..nowhere.settings.clone()
            },
            ..nowhere
        };
        assert_eq!(
            gethostbyname4(b"demo", &activating, at(&mut buffer)),
            Response::Unavail(libc::EDEADLK)
        );
        assert_eq!(
            gethostbyname4(b"demo", &nowhere, at(&mut buffer)),
            Response::Unavail(libc::ENOENT)
        );
    }
}
