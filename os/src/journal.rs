//! The systemd journal: whether standard error is connected to it, and entries written in
//! its native protocol (one datagram of `FIELD=value` lines), so that what a program logs keeps
//! its fields (`MACHINE=demo`) instead of becoming one line of text.
//!
//! systemd tells a service that its standard error is a journal stream by setting
//! `JOURNAL_STREAM` to that stream's `DEVICE:INODE`; a process whose standard error was
//! redirected since (or inherited the variable from a service) sees another device or inode
//! and keeps writing text (`systemd.exec(5)`, "Environment variables in spawned processes").

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;

/// The socket journald reads native entries from.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// Whether standard error is the journal stream `JOURNAL_STREAM` names.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(io::stderr().as_fd()) else {
        return false;
    };
    names_stream(&stream.to_string_lossy(), stat.st_dev, stat.st_ino)
}

/// Whether `JOURNAL_STREAM`'s `DEVICE:INODE` (both decimal) is `(device, inode)`.
fn names_stream(value: &str, device: u64, inode: u64) -> bool {
    value
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((device, inode))
}

/// A connection to journald's native socket.
#[derive(Debug)]
pub struct Journal {
    socket: UnixDatagram,
}

impl Journal {
    /// Connects to [`SOCKET`].
    ///
    /// # Errors
    /// No journald listens there.
    pub fn connect() -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(SOCKET)?;
        Ok(Self { socket })
    }

    /// Sends one entry made of `fields` (names in journald's form: upper case letters, digits
    /// and `_`, not starting with `_`).
    ///
    /// # Errors
    /// The datagram could not be sent (journald gone, or an entry too large for one datagram).
    pub fn send(&self, fields: &[(&str, &str)]) -> io::Result<()> {
        self.socket.send(&entry(fields)).map(drop)
    }
}

/// The native protocol's form of an entry: `NAME=value\n`, or, for a value with a newline,
/// `NAME\n`, its length as 64-bit little endian, the value and `\n`.
pub fn entry(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(256);
    for (name, value) in fields {
        entry.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            entry.push(b'\n');
            entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            entry.push(b'=');
        }
        entry.extend_from_slice(value.as_bytes());
        entry.push(b'\n');
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr_exactly() {
        assert!(names_stream("8:1234", 8, 1234));
        assert!(!names_stream("8:1234", 8, 1235));
        assert!(!names_stream("8:1234", 9, 1234));
        assert!(!names_stream("8", 8, 1234));
        assert!(!names_stream("", 0, 0));
        assert!(!names_stream("x:1", 0, 1));
    }

    #[test]
    fn entries_are_lines_and_values_with_newlines_are_counted() {
        assert_eq!(
            entry(&[("MESSAGE", "Started"), ("MACHINE", "demo")]),
            b"MESSAGE=Started\nMACHINE=demo\n"
        );
        let mut binary = b"MESSAGE\n".to_vec();
        binary.extend_from_slice(&3u64.to_le_bytes());
        binary.extend_from_slice(b"a\nb\n");
        assert_eq!(entry(&[("MESSAGE", "a\nb")]), binary);
    }
}
