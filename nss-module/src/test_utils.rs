//! Fakes for the unit tests: a registry that answers one call.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// `std`'s connect, without the bound the real one has.
pub fn plain_connect(path: &Path, _timeout: Duration) -> io::Result<UnixStream> {
    UnixStream::connect(path)
}

/// A socket path in a fresh directory, removed on drop.
pub struct Socket(PathBuf);

impl Socket {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("berth-nss-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir.join("sock"))
    }

    pub fn path(&self) -> PathBuf {
        self.0.clone()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Answers one call on `socket` with `reply`; the thread returns the request it got.
pub fn serve(socket: &Socket, reply: &'static str) -> JoinHandle<String> {
    let listener = UnixListener::bind(&socket.0).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8];
        while stream.read(&mut byte).unwrap() == 1 && byte[0] != 0 {
            request.push(byte[0]);
        }
        stream.write_all(reply.as_bytes()).unwrap();
        stream.write_all(b"\0").unwrap();
        String::from_utf8(request).unwrap()
    })
}
