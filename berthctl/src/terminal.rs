//! Relaying our terminal to a machine's pty: raw mode while connected, the window size kept
//! in step (`SIGWINCH`, read from a signalfd), `^]` three times within a second to leave, as
//! `machinectl` does. Without a terminal on standard input, input and output are relayed as
//! they are, and the end of the input becomes an end-of-file character for the program.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_os::sys;
use rustix::event::{PollFd, PollFlags};
use rustix::termios::{OptionalActions, Termios};

/// The escape character (`^]`), and how often within [`ESCAPE_WINDOW`] it ends the session.
const ESCAPE: u8 = 0x1d;
const ESCAPES: u32 = 3;
const ESCAPE_WINDOW: Duration = Duration::from_secs(1);

/// `^D`: the end of input, for a program reading a terminal in canonical mode.
const END_OF_FILE: u8 = 0x04;

/// Our terminal's settings, restored when dropped.
struct RawMode<'a> {
    terminal: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(terminal: BorrowedFd<'a>) -> io::Result<Self> {
        let saved = rustix::termios::tcgetattr(terminal)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(terminal, OptionalActions::Now, &raw)?;
        Ok(Self { terminal, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(self.terminal, OptionalActions::Now, &self.saved);
    }
}

/// Counts `^]`s: three within a second end the session.
struct EscapeCounter {
    count: u32,
    first: Instant,
}

impl EscapeCounter {
    fn saw(&mut self, input: &[u8]) -> bool {
        for &byte in input {
            if byte != ESCAPE {
                self.count = 0;
                continue;
            }
            if self.count == 0 || self.first.elapsed() > ESCAPE_WINDOW {
                self.count = 0;
                self.first = Instant::now();
            }
            self.count += 1;
            if self.count >= ESCAPES {
                return true;
            }
        }
        false
    }
}

fn copy_window_size(from: BorrowedFd<'_>, to: &OwnedFd) {
    if let Ok(size) = rustix::termios::tcgetwinsize(from) {
        let _ = rustix::termios::tcsetwinsize(to, size);
    }
}

/// Relays standard input and output to `master` until the machine's side closes (or the
/// user escapes).
///
/// # Errors
/// Reading or writing failed.
pub fn relay(master: OwnedFd, machine: &str) -> io::Result<()> {
    let stdin = io::stdin();
    let input = stdin.as_fd();
    let interactive = rustix::termios::isatty(input);
    let _raw = interactive.then(|| RawMode::enter(input)).transpose()?;
    let resized = if interactive {
        copy_window_size(input, &master);
        sys::block_signals(&[libc::SIGWINCH])?;
        eprint!(
            "Connected to machine {machine}. Press ^] three times within 1s to exit session.\r\n"
        );
        Some(sys::signal_fd(&[libc::SIGWINCH])?)
    } else {
        None
    };
    pump(input, &master, resized.as_ref(), interactive)?;
    if interactive {
        eprint!("\r\nConnection to machine {machine} terminated.\r\n");
    }
    Ok(())
}

/// The relay loop, until the machine's side closes or the user escapes.
fn pump(
    input: BorrowedFd<'_>,
    master: &OwnedFd,
    resized: Option<&OwnedFd>,
    interactive: bool,
) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    let mut escapes = EscapeCounter {
        count: 0,
        first: Instant::now(),
    };
    let mut input_open = true;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![PollFd::new(master, PollFlags::IN)];
        if input_open {
            fds.push(PollFd::new(&input, PollFlags::IN));
        }
        if let Some(signals) = resized {
            fds.push(PollFd::new(signals, PollFlags::IN));
        }
        rustix::io::retry_on_intr(|| rustix::event::poll(&mut fds, None))?;
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        if ready[0] {
            match rustix::io::read(master, &mut buffer) {
                // EIO: the machine's side of the pty is closed everywhere.
                Ok(0) | Err(rustix::io::Errno::IO) => return Ok(()),
                Ok(n) => {
                    stdout.write_all(&buffer[..n])?;
                    stdout.flush()?;
                }
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if input_open && ready[1] {
            let n = rustix::io::read(input, &mut buffer)?;
            if n == 0 {
                input_open = false;
                if !interactive {
                    write_all(master, &[END_OF_FILE])?;
                }
                continue;
            }
            if interactive && escapes.saw(&buffer[..n]) {
                return Ok(());
            }
            write_all(master, &buffer[..n])?;
        }
        if let Some(signals) = resized
            && ready[fds.len() - 1]
            && sys::read_signal(signals.as_fd())?.is_some()
        {
            copy_window_size(input, master);
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = rustix::io::retry_on_intr(|| rustix::io::write(fd, bytes))?;
        bytes = &bytes[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_escapes_in_a_row_end_the_session() {
        let mut counter = EscapeCounter {
            count: 0,
            first: Instant::now(),
        };
        assert!(!counter.saw(&[ESCAPE, ESCAPE, b'x', ESCAPE]));
        assert!(counter.saw(&[ESCAPE, ESCAPE]));
    }
}
