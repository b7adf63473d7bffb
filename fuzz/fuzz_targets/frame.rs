//! The frame buffer of every Berth connection, fed as the tokio transport feeds it (appending
//! to its buffer) and as `supervise` does (reading a non-blocking source that returns data in
//! pieces, `WouldBlock`, `EINTR`), with messages up to and past the 16 MiB limit.
//!
//! Input: a control byte, a chunking seed, then the bytes a client sends (seeds: real Varlink
//! traffic). The control byte picks the transport (bit 0: reads, as `supervise`) and whether
//! the first message is padded to a few bytes short of, at, or past 16 MiB (0xa in the high
//! nibble, bits 1-3 from 3 short to 3 past); the seed cuts the stream into reads and takes
//! frames in between.
//!
//! A model (the bytes received and not yet handed out) says what must come out. Properties:
//! the frames are exactly the NUL-terminated messages received, in order, none containing a
//! NUL and none longer than 16 MiB; a longer one is `TooLarge` (then the connection closes);
//! a read is never started while more than 16 MiB wait, and is offered at most 64 KiB, so a
//! buffer never holds (or zero-fills) more than 16 MiB plus one read; `has_partial` says
//! whether bytes wait.

#![no_main]

use std::collections::VecDeque;
use std::ffi::CStr;
use std::io::{self, Read};

use berth_service_runtime::protocol::{FrameBuffer, MAX_MESSAGE_SIZE, TooLarge};
use libfuzzer_sys::fuzz_target;

/// The model: bytes received and not handed out yet, and where their NULs are.
#[derive(Default)]
struct Model {
    waiting: VecDeque<u8>,
    /// Positions of the NULs in `waiting`, counted from the first byte ever received.
    nuls: VecDeque<usize>,
    /// How many bytes were handed out.
    taken: usize,
}

/// What taking a frame gave.
#[derive(PartialEq, Eq)]
enum Taken {
    Frame,
    Nothing,
    /// `TooLarge`: the connection closes.
    Closed,
}

impl Model {
    fn receive(&mut self, bytes: &[u8]) {
        let at = self.taken + self.waiting.len();
        // CStr's search is std's memchr: fast, and not instrumented byte by byte.
        let mut rest = bytes;
        while let Ok(message) = CStr::from_bytes_until_nul(rest) {
            let nul = message.count_bytes();
            self.nuls.push_back(at + (bytes.len() - rest.len()) + nul);
            rest = &rest[nul + 1..];
        }
        self.waiting.extend(bytes.iter().copied());
    }

    /// Checks what `next_frame` gave against the model.
    fn take(&mut self, frame: Result<Option<&[u8]>, TooLarge>) -> Taken {
        let end = self.nuls.front().map(|nul| nul - self.taken);
        match frame {
            Ok(Some(frame)) => {
                let end = end.expect("a frame came without its NUL");
                assert!(frame.len() <= MAX_MESSAGE_SIZE, "a frame over 16 MiB");
                assert!(!frame.contains(&0), "a frame holds a NUL");
                let (front, back) = self.waiting.as_slices();
                let (front, back) = match front.split_at_checked(end) {
                    Some((message, _)) => (message, &[][..]),
                    None => (front, &back[..end - front.len()]),
                };
                assert!(
                    frame.len() == end
                        && frame[..front.len()] == *front
                        && frame[front.len()..] == *back,
                    "a frame is not the message received"
                );
                self.waiting.drain(..=end);
                self.nuls.pop_front();
                self.taken += end + 1;
                Taken::Frame
            }
            Ok(None) => {
                assert_eq!(end, None, "a complete message was not handed out");
                assert!(
                    self.waiting.len() <= MAX_MESSAGE_SIZE,
                    "over 16 MiB without a NUL wait, and it is not TooLarge"
                );
                Taken::Nothing
            }
            Err(TooLarge) => {
                assert!(
                    end.unwrap_or(self.waiting.len()) > MAX_MESSAGE_SIZE,
                    "TooLarge for a message within the limit"
                );
                Taken::Closed
            }
        }
    }
}

/// Takes up to `count` frames (fewer if none is there); `false` once the connection closes.
fn take(frames: &mut FrameBuffer, model: &mut Model, count: u32) -> bool {
    for _ in 0..count {
        match model.take(frames.next_frame()) {
            Taken::Frame => {}
            Taken::Nothing => break,
            Taken::Closed => return false,
        }
    }
    true
}

/// The most one read may be offered (and the buffer zero-fill for it): a socket's worth.
const ONE_READ: usize = 64 * 1024;

/// What one `read` of the source does.
enum Step<'d> {
    Data(&'d [u8]),
    Interrupted,
}

/// A non-blocking source playing `steps` (then `WouldBlock`), checking that nobody reads
/// while more than 16 MiB wait.
struct Source<'m, 'd> {
    steps: VecDeque<Step<'d>>,
    model: &'m mut Model,
}

impl Read for Source<'_, '_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        assert!(
            self.model.waiting.len() <= MAX_MESSAGE_SIZE,
            "a read with more than 16 MiB waiting"
        );
        assert!(
            buffer.len() <= ONE_READ,
            "a read is offered {} bytes, more than one read",
            buffer.len()
        );
        match self.steps.pop_front() {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(Step::Interrupted) => Err(io::ErrorKind::Interrupted.into()),
            Some(Step::Data(bytes)) => {
                let (now, rest) = bytes.split_at(bytes.len().min(buffer.len()));
                buffer[..now.len()].copy_from_slice(now);
                self.model.receive(now);
                if !rest.is_empty() {
                    // The rest comes with the next read.
                    self.steps.push_front(Step::Data(rest));
                }
                Ok(now.len())
            }
        }
    }
}

/// Delivers `piece` through `read_from`, as `supervise` reads; `false` once the connection
/// closes.
fn read(frames: &mut FrameBuffer, model: &mut Model, piece: &[u8], interruptions: u32) -> bool {
    let mut steps: VecDeque<Step> = (0..interruptions).map(|_| Step::Interrupted).collect();
    steps.push_back(Step::Data(piece));
    loop {
        let mut source = Source { steps, model };
        let open = frames
            .read_from(&mut source)
            .expect("only WouldBlock and EINTR");
        assert!(open, "end of file without one");
        steps = source.steps;
        if !steps.iter().any(|step| matches!(step, Step::Data(_))) {
            return true;
        }
        // Reading stopped with more than 16 MiB waiting: the owner takes frames first.
        assert!(
            model.waiting.len() > MAX_MESSAGE_SIZE,
            "reading stopped early"
        );
        if !take(frames, model, u32::MAX) {
            return false;
        }
    }
}

/// A small deterministic generator for the chunking.
struct Dice(u32);

impl Dice {
    fn roll(&mut self, below: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 % below.max(1)
    }
}

/// The stream, with its first message padded to 16 MiB - 3 … + 3 bytes when asked (the high
/// nibble 0xa: padded runs are slow, so they are a sixteenth of what mutations make).
fn stream(control: u8, bytes: &[u8]) -> Vec<u8> {
    let pad = (control >> 1) & 7;
    if control >> 4 != 0xa || pad == 0 {
        return bytes.to_vec();
    }
    let first = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let target = (MAX_MESSAGE_SIZE + usize::from(pad)).saturating_sub(4);
    let mut padded = vec![b' '; target.saturating_sub(first)];
    padded.extend_from_slice(bytes);
    padded
}

fuzz_target!(|data: &[u8]| {
    let [control, seed, bytes @ ..] = data else {
        return;
    };
    let stream = stream(*control, bytes);
    let through_reads = control & 1 == 1;
    let mut dice = Dice(u32::from(*seed) << 8 | 0x9e37_79b9);
    let mut frames = FrameBuffer::new();
    let mut model = Model::default();
    let mut rest = &stream[..];
    while !rest.is_empty() {
        // Mostly small pieces, now and then everything left (a padded message whole).
        let len = match dice.roll(8) {
            0 => rest.len(),
            1 => 1,
            n => 1 + dice.roll(1 << (2 * n)) as usize,
        };
        let (piece, after) = rest.split_at(len.min(rest.len()));
        rest = after;
        let open = if through_reads {
            read(&mut frames, &mut model, piece, dice.roll(3))
        } else {
            frames.buffer().extend_from_slice(piece);
            model.receive(piece);
            true
        };
        if !open {
            return;
        }
        assert_eq!(frames.has_partial(), !model.waiting.is_empty());
        if !take(&mut frames, &mut model, dice.roll(4)) {
            return;
        }
    }
    // What is left (a bounded number of frames: a run of NULs is a run of empty messages).
    take(&mut frames, &mut model, 4096);
});
