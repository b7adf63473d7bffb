//! The one question the module asks: `io.berth.Registry.ResolveHost`, on a fresh connection,
//! within [`TIMEOUT`]; every failure becomes the `errno` nss-mymachines would report.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_interfaces::blocking::{CallError, Connection};
use berth_interfaces::machine::MachineError;
use berth_interfaces::registry::{ResolveHostReply, ResolveHostRequest};
use berth_interfaces::service::{SystemError, VarlinkError};

/// The longest a lookup waits for the registry, connecting and answering together. A registry
/// that is not running fails at once; a hung one costs this long.
pub const TIMEOUT: Duration = Duration::from_millis(100);

const METHOD: &str = "io.berth.Registry.ResolveHost";

/// Connects to a socket, waiting at most the given time (also for a full listen backlog).
pub type Connect = fn(&Path, Duration) -> io::Result<UnixStream>;

/// An `errno` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

/// Asks the registry at `socket` for machine `name`.
///
/// # Errors
/// The `errno` of the failure: the connect or read error (`ENOENT`, `ECONNREFUSED`,
/// `ETIMEDOUT` when the registry does not answer in time), `ENXIO` for an unknown machine,
/// `ENOSYS` for a container without a network namespace of its own, `EINVAL` for an invalid
/// name, a reported `io.systemd.System` errno, else `EIO`.
///
/// # Caveats
/// Reads are bounded by the time left after connecting; a registry that trickles its reply
/// a byte at a time could stretch that.
pub fn resolve_host(
    socket: &Path,
    name: &str,
    connect: Connect,
) -> Result<ResolveHostReply, Errno> {
    let deadline = Instant::now() + TIMEOUT;
    let stream = connect(socket, TIMEOUT).map_err(|e| io_errno(&e))?;
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
        .ok_or(Errno(libc::ETIMEDOUT))?;
    stream
        .set_read_timeout(Some(left))
        .and_then(|()| stream.set_write_timeout(Some(left)))
        .map_err(|e| io_errno(&e))?;
    let request = ResolveHostRequest { name: name.into() };
    Connection::from_stream(stream)
        .call(METHOD, &request)
        .map_err(|e| call_errno(&e))
}

fn call_errno(error: &CallError) -> Errno {
    match error {
        CallError::Io(e) => io_errno(e),
        CallError::Protocol(_) => Errno(libc::EBADMSG),
        CallError::Reply { .. } => reply_errno(error),
    }
}

fn io_errno(error: &io::Error) -> Errno {
    Errno(match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::UnexpectedEof => libc::ECONNRESET,
        _ => error.raw_os_error().unwrap_or(libc::EIO),
    })
}

/// The errno of an error reply, as sd-bus maps machined's D-Bus errors.
fn reply_errno(error: &CallError) -> Errno {
    if let Some(error) = error.reply_error::<MachineError>() {
        return Errno(match error {
            MachineError::NoSuchMachine => libc::ENXIO,
            MachineError::NoPrivateNetworking => libc::ENOSYS,
            _ => libc::EIO,
        });
    }
    if let Some(error) = error.reply_error::<SystemError>() {
        return Errno(match error {
            SystemError::System { errno } if errno > 0 => errno,
            SystemError::System { .. } => libc::EIO,
            SystemError::Disconnected => libc::ECONNRESET,
            SystemError::TimedOut => libc::ETIMEDOUT,
            SystemError::Protocol => libc::EPROTO,
        });
    }
    Errno(match error.reply_error::<VarlinkError>() {
        Some(VarlinkError::InvalidParameter { .. }) => libc::EINVAL,
        Some(VarlinkError::PermissionDenied) => libc::EPERM,
        Some(
            VarlinkError::InterfaceNotFound { .. }
            | VarlinkError::MethodNotFound { .. }
            | VarlinkError::MethodNotImplemented { .. },
        ) => libc::EOPNOTSUPP,
        Some(VarlinkError::ExpectedMore) | None => libc::EIO,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use berth_interfaces::machine::MachineClass;

    use super::*;
    use crate::test_utils::{Socket, plain_connect, serve};

    fn ask(reply: &'static str) -> Result<ResolveHostReply, Errno> {
        let socket = Socket::new("query");
        let server = serve(&socket, reply);
        let result = resolve_host(&socket.path(), "demo", plain_connect);
        assert_eq!(
            server.join().unwrap(),
            r#"{"method":"io.berth.Registry.ResolveHost","parameters":{"name":"demo"}}"#
        );
        result
    }

    #[test]
    fn a_reply_comes_back_typed() {
        let reply = ask(
            r#"{"parameters":{"class":"container","addresses":[{"family":2,"address":[198,51,100,7]}],"ifIndices":[3]}}"#,
        )
        .unwrap();
        assert_eq!(reply.class, MachineClass::Container);
        assert_eq!(reply.addresses.unwrap()[0].address, [198, 51, 100, 7]);
        assert_eq!(reply.if_indices, Some(vec![3]));
    }

    #[test]
    fn error_replies_map_to_the_errno_of_nss_mymachines() {
        let cases = [
            (
                r#"{"error":"io.systemd.Machine.NoSuchMachine","parameters":{}}"#,
                libc::ENXIO,
            ),
            (
                r#"{"error":"io.systemd.Machine.NoPrivateNetworking"}"#,
                libc::ENOSYS,
            ),
            (
                r#"{"error":"org.varlink.service.InvalidParameter","parameters":{"parameter":"name"}}"#,
                libc::EINVAL,
            ),
            (
                r#"{"error":"io.systemd.System","parameters":{"errno":13}}"#,
                libc::EACCES,
            ),
            (
                r#"{"error":"com.example.Weird","parameters":{}}"#,
                libc::EIO,
            ),
            (r#"{"parameters":{"class":"spaceship"}}"#, libc::EBADMSG),
        ];
        for (reply, errno) in cases {
            assert_eq!(ask(reply), Err(Errno(errno)), "{reply}");
        }
    }

    #[test]
    fn no_registry_fails_at_once_with_the_connect_error() {
        let socket = Socket::new("absent");
        assert_eq!(
            resolve_host(&socket.path(), "demo", plain_connect),
            Err(Errno(libc::ENOENT))
        );
        drop(UnixListener::bind(socket.path()).unwrap());
        assert_eq!(
            resolve_host(&socket.path(), "demo", plain_connect),
            Err(Errno(libc::ECONNREFUSED))
        );
    }

    #[test]
    fn a_registry_that_never_answers_costs_the_timeout() {
        let socket = Socket::new("hung");
        let _listener = UnixListener::bind(socket.path()).unwrap();
        let started = Instant::now();
        assert_eq!(
            resolve_host(&socket.path(), "demo", plain_connect),
            Err(Errno(libc::ETIMEDOUT))
        );
        assert!(started.elapsed() >= TIMEOUT / 2, "{:?}", started.elapsed());
    }

    #[test]
    fn a_registry_that_hangs_up_resets_the_connection() {
        let socket = Socket::new("hangup");
        let listener = UnixListener::bind(socket.path()).unwrap();
        let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let result = resolve_host(&socket.path(), "demo", plain_connect);
        server.join().unwrap();
        assert!(
            matches!(result, Err(Errno(libc::ECONNRESET | libc::EPIPE))),
            "{result:?}"
        );
    }
}
