//! Framing: Varlink messages are JSON texts each terminated by a NUL byte.

use std::io::{self, Read};

use super::MAX_MESSAGE_SIZE;

/// The least spare room offered to each read.
const READ_CHUNK: usize = 4096;
/// The most room offered to one read (and zero-filled for it), whatever the capacity.
const READ_MAX: usize = 64 * 1024;
/// An idle buffer keeps at most this much memory.
const IDLE_CAPACITY: usize = 16 * 1024;

/// A message grew past [`MAX_MESSAGE_SIZE`] without its terminator: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Message larger than 16 MiB")]
pub struct TooLarge;

/// The bytes a connection has received, cut into messages at their NUL terminators.
///
/// Bytes go in through [`FrameBuffer::read_from`] (non-blocking `Read`) or
/// [`FrameBuffer::buffer`] (for async readers); messages come out of
/// [`FrameBuffer::next_frame`] without copying. A buffer that has handed out everything it
/// held gives its memory back beyond a small reserve.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    data: Vec<u8>,
    /// Where the bytes not handed out yet begin.
    start: usize,
    /// Up to where `data` is known to hold no terminator.
    scanned: usize,
}

impl FrameBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The vector to append received bytes to (with room for at least one read); bytes
    /// already handed out are dropped first.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.compact();
        self.data.reserve(READ_CHUNK);
        &mut self.data
    }

    /// Reads what `source` has without blocking (it must be non-blocking) and returns whether
    /// the connection is still open. Stops early once a message is too large to ever be
    /// accepted, so [`FrameBuffer::next_frame`] reports it. Each read is offered at most
    /// 64 KiB, so a buffer holds at most 16 MiB and one read.
    ///
    /// # Errors
    /// The read failed (other than `WouldBlock` or `Interrupted`).
    pub fn read_from(&mut self, source: &mut impl Read) -> io::Result<bool> {
        loop {
            if self.pending() > MAX_MESSAGE_SIZE {
                return Ok(true);
            }
            let buffer = self.buffer();
            let filled = buffer.len();
            let room = (buffer.capacity() - filled).min(READ_MAX);
            buffer.resize(filled + room, 0);
            let read = source.read(&mut buffer[filled..]);
            buffer.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete message (without its NUL), if one has arrived.
    ///
    /// # Errors
    /// [`TooLarge`] when the next message has more than [`MAX_MESSAGE_SIZE`] bytes, whether its
    /// terminator came or not.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, TooLarge> {
        let from = self.scanned.max(self.start);
        match memchr_nul(&self.data[from..]) {
            Some(offset) => {
                let (begin, end) = (self.start, from + offset);
                if end - begin > MAX_MESSAGE_SIZE {
                    return Err(TooLarge);
                }
                self.start = end + 1;
                self.scanned = self.start;
                Ok(Some(&self.data[begin..end]))
            }
            None if self.pending() > MAX_MESSAGE_SIZE => Err(TooLarge),
            None => {
                self.scanned = self.data.len();
                self.release_if_idle();
                Ok(None)
            }
        }
    }

    /// Whether part of a message is waiting for the rest.
    pub fn has_partial(&self) -> bool {
        self.pending() > 0
    }

    fn pending(&self) -> usize {
        self.data.len() - self.start
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.scanned -= self.start.min(self.scanned);
            self.start = 0;
        }
    }

    fn release_if_idle(&mut self) {
        if self.pending() == 0 {
            self.data.clear();
            self.start = 0;
            self.scanned = 0;
            if self.data.capacity() > IDLE_CAPACITY {
                self.data = Vec::new();
            }
        }
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    fn push(frames: &mut FrameBuffer, bytes: &[u8]) {
        frames.buffer().extend_from_slice(bytes);
    }

    #[test]
    fn messages_are_cut_at_nul_and_partial_ones_wait() {
        let mut frames = FrameBuffer::new();
        push(&mut frames, b"{\"a\":1}\0{\"b\"");
        assert_eq!(frames.next_frame().unwrap(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(frames.next_frame().unwrap(), None);
        assert!(frames.has_partial());
        push(&mut frames, b":2}\0\0");
        assert_eq!(frames.next_frame().unwrap(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(frames.next_frame().unwrap(), Some(&b""[..]));
        assert_eq!(frames.next_frame().unwrap(), None);
        assert!(!frames.has_partial());
    }

    #[test]
    fn a_message_without_terminator_past_the_limit_is_refused() {
        let mut frames = FrameBuffer::new();
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..16 {
            push(&mut frames, &chunk);
            assert_eq!(frames.next_frame(), Ok(None));
        }
        push(&mut frames, b"x");
        assert_eq!(frames.next_frame(), Err(TooLarge));
    }

    #[test]
    fn a_message_of_exactly_the_limit_passes() {
        let mut frames = FrameBuffer::new();
        push(&mut frames, &vec![b'x'; MAX_MESSAGE_SIZE]);
        assert_eq!(frames.next_frame(), Ok(None));
        push(&mut frames, b"\0");
        assert_eq!(
            frames.next_frame().unwrap().map(<[u8]>::len),
            Some(MAX_MESSAGE_SIZE)
        );
    }

    /// Found by fuzzing (`frame`): a message past the limit whose terminator came in the same
    /// read as its last bytes was handed out.
    #[test]
    fn fuzz_a_message_past_the_limit_is_refused_even_when_terminated() {
        let mut frames = FrameBuffer::new();
        push(&mut frames, &vec![b'x'; MAX_MESSAGE_SIZE - 1]);
        assert_eq!(frames.next_frame(), Ok(None));
        push(&mut frames, b"xx\0{}\0");
        assert_eq!(frames.next_frame(), Err(TooLarge));
    }

    /// Found by fuzzing (`frame`): each read was offered (and zero-filled) all the spare
    /// capacity, up to another 16 MiB, so a message read in small pieces cost time quadratic
    /// in its size and a buffer could hold twice the limit.
    #[test]
    fn fuzz_a_read_is_offered_at_most_64_kib() {
        struct Trickle {
            left: usize,
            most_offered: usize,
        }
        impl Read for Trickle {
            fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
                self.most_offered = self.most_offered.max(buffer.len());
                let n = buffer.len().min(self.left).min(4096);
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                buffer[..n].fill(b'x');
                self.left -= n;
                Ok(n)
            }
        }
        let mut source = Trickle {
            left: 4 * 1024 * 1024,
            most_offered: 0,
        };
        let mut frames = FrameBuffer::new();
        assert!(frames.read_from(&mut source).unwrap());
        assert_eq!(source.left, 0);
        assert!(source.most_offered <= READ_MAX, "{}", source.most_offered);
    }

    #[test]
    fn memory_goes_back_once_everything_was_handed_out() {
        let mut frames = FrameBuffer::new();
        push(&mut frames, &vec![b'x'; 1024 * 1024]);
        push(&mut frames, b"\0");
        assert!(frames.next_frame().unwrap().is_some());
        assert_eq!(frames.next_frame(), Ok(None));
        assert_eq!(frames.data.capacity(), 0);
    }

    #[test]
    fn reading_a_socket_collects_what_is_there_and_sees_the_end() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut frames = FrameBuffer::new();
        std::io::Write::write_all(&mut theirs, b"{}\0{").unwrap();
        assert!(frames.read_from(&mut ours).unwrap());
        assert_eq!(frames.next_frame().unwrap(), Some(&b"{}"[..]));
        drop(theirs);
        assert!(!frames.read_from(&mut ours).unwrap());
        assert!(frames.has_partial());
    }
}
