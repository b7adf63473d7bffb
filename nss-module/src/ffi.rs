//! The `extern "C"` entry points glibc calls (spec §4.1), and every `unsafe` line of the
//! module: pointer checks, `errno` and `h_errno`, the signal mask, and the few system calls the
//! safe core needs. Everything else is [`crate::lookup`].

use std::ffi::CStr;
use std::io;
use std::mem::{MaybeUninit, offset_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use libc::{c_char, c_int, c_ulong, hostent, size_t};

use crate::layout::GaihAddrtuple;
use crate::lookup::{self, Buffer, Context, Response};
use crate::settings::{Process, Settings};

/// glibc's `enum nss_status`.
const NSS_STATUS_TRYAGAIN: c_int = -2;
const NSS_STATUS_UNAVAIL: c_int = -1;
const NSS_STATUS_NOTFOUND: c_int = 0;
const NSS_STATUS_SUCCESS: c_int = 1;

/// `h_errno` values (`<netdb.h>`).
const NETDB_INTERNAL: c_int = -1;
const NETDB_SUCCESS: c_int = 0;
const HOST_NOT_FOUND: c_int = 1;
const NO_RECOVERY: c_int = 3;

/// `_res.options` flag asking `gethostbyname` for IPv6 first (gone from glibc's headers, still
/// checked by nss-mymachines).
const RES_USE_INET6: c_ulong = 0x2000;

/// Signals blocked for the duration of a lookup, as systemd's NSS modules do.
const BLOCKED_SIGNALS: [c_int; 12] = [
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGTSTP,
    libc::SIGIO,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPROF,
    libc::SIGURG,
    libc::SIGWINCH,
];

/// The start of glibc's `struct __res_state` (`<bits/types/res_state.h>`).
#[repr(C)]
struct ResStatePrefix {
    _retrans: c_int,
    _retry: c_int,
    options: c_ulong,
}

// SAFETY: both are glibc functions (GLIBC_2.2.5) with exactly these signatures, returning
// pointers to the calling thread's own variables.
unsafe extern "C" {
    fn __h_errno_location() -> *mut c_int;
    fn __res_state() -> *mut ResStatePrefix;
}

/// `gethostbyname4_r`: all addresses of a container, for `getaddrinfo()`.
///
/// # Safety
/// glibc's NSS contract: `name` is a C string, `buffer` has `buflen` writable bytes, the
/// other pointers are valid for writes (`*pat` may be null, `ttlp` may be null).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_mymachines_gethostbyname4_r(
    name: *const c_char,
    pat: *mut *mut GaihAddrtuple,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
    ttlp: *mut i32,
) -> c_int {
    if name.is_null() || pat.is_null() || buffer.is_null() || errnop.is_null() || h_errnop.is_null()
    {
        return invalid(errnop, h_errnop);
    }
    let call = Call::begin();
    // SAFETY: non-null, and valid for this call by the NSS contract.
    let (name, bytes) = unsafe { name_and_buffer(name, buffer, buflen) };
    let base = buffer as usize;
    let response = call.run(|| lookup::gethostbyname4(name, &context(), Buffer { bytes, base }));
    // SAFETY: the outputs are valid for writes by the NSS contract; on success the answer
    // lies within `buffer` at the offset the core reports.
    unsafe {
        call.finish(response, errnop, h_errnop, |first| {
            let tuple = buffer.add(first).cast::<GaihAddrtuple>();
            if (*pat).is_null() {
                *pat = tuple;
            } else {
                (*pat).write_unaligned(tuple.read_unaligned());
            }
            if !ttlp.is_null() {
                *ttlp = 0;
            }
        })
    }
}

/// `gethostbyname3_r`: a container's addresses of one family as a `hostent`.
///
/// # Safety
/// glibc's NSS contract: `name` is a C string, `result` and `buffer` (`buflen` bytes) are
/// writable, `ttlp` and `canonp` may be null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_mymachines_gethostbyname3_r(
    name: *const c_char,
    af: c_int,
    result: *mut hostent,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
    ttlp: *mut i32,
    canonp: *mut *mut c_char,
) -> c_int {
    if name.is_null()
        || result.is_null()
        || buffer.is_null()
        || errnop.is_null()
        || h_errnop.is_null()
    {
        return invalid(errnop, h_errnop);
    }
    let call = Call::begin();
    // SAFETY: non-null, and valid for this call by the NSS contract.
    let (name, bytes) = unsafe { name_and_buffer(name, buffer, buflen) };
    let base = buffer as usize;
    let response =
        call.run(|| lookup::gethostbyname3(name, af, &context(), Buffer { bytes, base }));
    // SAFETY: as above; the offsets lie within `buffer`.
    unsafe {
        call.finish(response, errnop, h_errnop, |entry| {
            let result = &mut *result;
            result.h_name = buffer.add(entry.name);
            result.h_aliases = buffer.add(entry.aliases).cast();
            result.h_addrtype = entry.family;
            result.h_length = entry.length;
            result.h_addr_list = buffer.add(entry.addr_list).cast();
            if !ttlp.is_null() {
                *ttlp = 0;
            }
            if !canonp.is_null() {
                *canonp = buffer.add(entry.name);
            }
        })
    }
}

/// `gethostbyname2_r`: `gethostbyname3_r` without TTL and canonical name.
///
/// # Safety
/// As for [`_nss_mymachines_gethostbyname3_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_mymachines_gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    result: *mut hostent,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: the caller's contract is the one gethostbyname3_r needs.
    unsafe {
        _nss_mymachines_gethostbyname3_r(
            name,
            af,
            result,
            buffer,
            buflen,
            errnop,
            h_errnop,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

/// `gethostbyname_r`: IPv6 first if `_res.options` has `RES_USE_INET6`, else (or when that
/// finds nothing) IPv4.
///
/// # Safety
/// As for [`_nss_mymachines_gethostbyname3_r`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _nss_mymachines_gethostbyname_r(
    name: *const c_char,
    result: *mut hostent,
    buffer: *mut c_char,
    buflen: size_t,
    errnop: *mut c_int,
    h_errnop: *mut c_int,
) -> c_int {
    let families = if use_inet6() {
        [Some(libc::AF_INET6), Some(libc::AF_INET)]
    } else {
        [Some(libc::AF_INET), None]
    };
    let mut status = NSS_STATUS_NOTFOUND;
    for af in families.into_iter().flatten() {
        // SAFETY: the caller's contract is the one gethostbyname3_r needs.
        status = unsafe {
            _nss_mymachines_gethostbyname2_r(name, af, result, buffer, buflen, errnop, h_errnop)
        };
        if status != NSS_STATUS_NOTFOUND {
            break;
        }
    }
    status
}

/// Declares user and group entry points that find nothing and touch nothing: nss-mymachines
/// no longer resolves users and groups (userdb does) but keeps the symbols for compatibility.
macro_rules! stubs {
    ($($name:ident($key:ty, $record:ty);)*) => {$(
        #[doc = concat!("`", stringify!($name), "`: finds nothing (users and groups come from userdb).")]
        #[unsafe(no_mangle)]
        pub extern "C" fn $name(
            _key: $key,
            _record: *mut $record,
            _buffer: *mut c_char,
            _buflen: size_t,
            _errnop: *mut c_int,
        ) -> c_int {
            NSS_STATUS_NOTFOUND
        }
    )*};
}

stubs! {
    _nss_mymachines_getpwnam_r(*const c_char, libc::passwd);
    _nss_mymachines_getpwuid_r(libc::uid_t, libc::passwd);
    _nss_mymachines_getgrnam_r(*const c_char, libc::group);
    _nss_mymachines_getgrgid_r(libc::gid_t, libc::group);
}

/// The name's bytes and the buffer as a slice.
///
/// # Safety
/// `name` is a C string and `buffer` has `buflen` writable bytes, both valid for `'a`.
unsafe fn name_and_buffer<'a>(
    name: *const c_char,
    buffer: *mut c_char,
    buflen: size_t,
) -> (&'a [u8], &'a mut [u8]) {
    // No buffer is larger than isize::MAX bytes; a bigger buflen is a lie a slice must not
    // believe.
    let buflen = buflen.min(isize::MAX.unsigned_abs());
    // SAFETY: the caller's contract.
    unsafe {
        (
            CStr::from_ptr(name).to_bytes(),
            std::slice::from_raw_parts_mut(buffer.cast::<u8>(), buflen),
        )
    }
}

/// A null argument: `UNAVAIL` with `EINVAL`, reported where possible.
fn invalid(errnop: *mut c_int, h_errnop: *mut c_int) -> c_int {
    set_errno(libc::EINVAL);
    // SAFETY: each pointer is written only if it is not null; glibc passes valid ones.
    unsafe {
        if !errnop.is_null() {
            *errnop = libc::EINVAL;
        }
        if !h_errnop.is_null() {
            *h_errnop = NO_RECOVERY;
        }
    }
    NSS_STATUS_UNAVAIL
}

/// One lookup in progress: `errno` saved and signals blocked from [`Call::begin`] to
/// [`Call::finish`].
struct Call {
    errno: c_int,
    mask: Option<libc::sigset_t>,
}

impl Call {
    fn begin() -> Self {
        static QUIET: Once = Once::new();
        // This copy of std is the module's own: its panic hook prints for no one else.
        QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
        Self {
            errno: errno(),
            mask: block_signals(),
        }
    }

    /// Runs the core; a panic becomes `UNAVAIL` with `EIO`.
    fn run<T>(&self, core: impl FnOnce() -> Response<T>) -> Response<T> {
        catch_unwind(AssertUnwindSafe(core)).unwrap_or(Response::Unavail(libc::EIO))
    }

    /// Restores the signal mask, reports `response`, and restores `errno` unless it reports
    /// an error.
    ///
    /// # Safety
    /// `errnop` and `h_errnop` are valid for writes, and so is whatever `success` writes.
    unsafe fn finish<T>(
        self,
        response: Response<T>,
        errnop: *mut c_int,
        h_errnop: *mut c_int,
        success: impl FnOnce(T),
    ) -> c_int {
        if let Some(mask) = self.mask {
            restore_signals(&mask);
        }
        let (status, h_errno, errno) = match response {
            Response::Success(answer) => {
                success(answer);
                set_h_errno(0);
                (NSS_STATUS_SUCCESS, NETDB_SUCCESS, None)
            }
            Response::NotFound => (NSS_STATUS_NOTFOUND, HOST_NOT_FOUND, None),
            Response::TryAgain => (NSS_STATUS_TRYAGAIN, NETDB_INTERNAL, Some(libc::ERANGE)),
            Response::Unavail(errno) => (NSS_STATUS_UNAVAIL, NO_RECOVERY, Some(errno)),
        };
        set_errno(errno.unwrap_or(self.errno));
        // SAFETY: the caller's contract; errnop may be &errno itself, so it is written last.
        unsafe {
            if let Some(errno) = errno {
                *errnop = errno;
            }
            *h_errnop = h_errno;
        }
        status
    }
}

/// The settings of this process, and the real connect.
fn context() -> Context {
    // SAFETY: getauxval and geteuid only read the process's state.
    let (secure, root) = unsafe { (libc::getauxval(libc::AT_SECURE) != 0, libc::geteuid() == 0) };
    let process = Process {
        secure,
        root,
        var: |name: &str| std::env::var_os(name),
    };
    Context {
        settings: Settings::of(&process),
        connect,
    }
}

/// Connects to `path`, waiting at most `timeout`, also when the listen backlog is full
/// (`connect(2)` on an `AF_UNIX` stream socket waits as long as `SO_SNDTIMEO` allows).
fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let (address, length) = socket_address(path)?;
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_write_timeout(Some(timeout))?;
    // SAFETY: `address` is a sockaddr_un of `length` bytes that outlives the call.
    let connected = unsafe {
        libc::connect(
            stream.as_raw_fd(),
            (&raw const address).cast::<libc::sockaddr>(),
            length,
        )
    };
    if connected < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

/// The `sockaddr_un` of a filesystem path.
fn socket_address(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = path.as_os_str().as_bytes();
    let mut address = libc::sockaddr_un {
        sun_family: libc::AF_UNIX as libc::sa_family_t,
        sun_path: [0; 108],
    };
    if bytes.len() >= address.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (to, from) in address.sun_path.iter_mut().zip(bytes) {
        *to = *from as c_char;
    }
    let length = offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    let length = libc::socklen_t::try_from(length).map_err(io::Error::other)?;
    Ok((address, length))
}

/// Blocks [`BLOCKED_SIGNALS`] in this thread; returns the previous mask.
fn block_signals() -> Option<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises `set`; pthread_sigmask fills `old` when it succeeds,
    // and only then is `old` read.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for signal in BLOCKED_SIGNALS {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        (libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), old.as_mut_ptr()) == 0)
            .then(|| old.assume_init())
    }
}

fn restore_signals(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a mask pthread_sigmask returned.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() }
}

fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

fn set_h_errno(value: c_int) {
    // SAFETY: __h_errno_location returns this thread's h_errno.
    unsafe { *__h_errno_location() = value }
}

/// `_res.options & RES_USE_INET6`.
fn use_inet6() -> bool {
    // SAFETY: __res_state returns this thread's resolver state, which starts with the fields
    // of ResStatePrefix.
    unsafe {
        let state = __res_state();
        !state.is_null() && (*state).options & RES_USE_INET6 != 0
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;
    use crate::test_utils::Socket;

    #[test]
    fn socket_addresses_fit_sun_path_or_are_refused() {
        let (address, length) = socket_address(Path::new("/run/x")).unwrap();
        assert_eq!(address.sun_path[..7], [47, 114, 117, 110, 47, 120, 0]);
        assert_eq!(length as usize, offset_of!(libc::sockaddr_un, sun_path) + 7);
        let long = format!("/{}", "x".repeat(107));
        let error = socket_address(Path::new(&long)).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENAMETOOLONG));
    }

    #[test]
    fn connecting_reports_a_missing_listener_at_once() {
        let socket = Socket::new("ffi");
        let error = connect(&socket.path(), Duration::from_secs(5)).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOENT));
        let _listener = UnixListener::bind(socket.path()).unwrap();
        let stream = connect(&socket.path(), Duration::from_secs(5)).unwrap();
        assert_eq!(
            stream.write_timeout().unwrap(),
            Some(Duration::from_secs(5))
        );
    }
}
