//! A thin epoll wrapper: descriptors registered under `u64` tokens, waits without timeout.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};

/// An epoll instance.
pub struct Poller {
    epoll: OwnedFd,
    events: Vec<epoll::Event>,
}

/// Readable (or hung up).
pub const READ: EventFlags = EventFlags::IN.union(EventFlags::RDHUP);
/// Readable and writable.
pub const READ_WRITE: EventFlags = READ.union(EventFlags::OUT);
/// A priority event (`cgroup.events` changed).
pub const PRIORITY: EventFlags = EventFlags::PRI;

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("epoll", &self.epoll)
            .finish()
    }
}

impl Poller {
    /// A new epoll instance.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
            events: Vec::with_capacity(32),
        })
    }

    /// Watches `fd` for `flags`, reported as `token`.
    ///
    /// # Errors
    /// The kernel's error (`EPERM` for regular files).
    pub fn add(&self, fd: impl AsFd, token: u64, flags: EventFlags) -> io::Result<()> {
        Ok(epoll::add(
            &self.epoll,
            fd,
            EventData::new_u64(token),
            flags,
        )?)
    }

    /// Changes what `fd` is watched for.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn modify(&self, fd: impl AsFd, token: u64, flags: EventFlags) -> io::Result<()> {
        Ok(epoll::modify(
            &self.epoll,
            fd,
            EventData::new_u64(token),
            flags,
        )?)
    }

    /// Stops watching `fd` (closing it does as well).
    pub fn remove(&self, fd: impl AsFd) {
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Waits until something happens (no timeout: nothing wakes us while idle) and returns
    /// the tokens and what happened to each.
    ///
    /// # Errors
    /// The kernel's error; `EINTR` is retried.
    pub fn wait(&mut self) -> io::Result<Vec<(u64, EventFlags)>> {
        self.events.clear();
        loop {
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut self.events),
                None,
            ) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self
            .events
            .iter()
            .map(|e| (e.data.u64(), e.flags))
            .collect())
    }
}
