//! Who gets a connection. Connections are capped overall, per user, and for unprivileged users
//! together: an eighth of the total is kept for root and the service's own user (the userdb
//! bridge, root's lookups, the administrator), so no number of unprivileged connections can
//! make the service unreachable for them. A refused client is told why in an error reply
//! before the connection is closed; the refusals are logged at most once every few seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use berth_interfaces::service::SystemError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::peer::Peer;
use crate::protocol::{ErrorReply, error_message};

/// How often at most a refusal is logged.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every connection the service may serve is taken (by unprivileged users, when the
    /// caller is one).
    Full,
    /// The caller's user has as many connections as one user may have.
    UserLimit,
}

impl Refusal {
    /// The error reply that tells the client: `io.systemd.System` with `ENFILE` (the
    /// service's table of connections is full) or `EMFILE` (the user's share is).
    pub(crate) fn message(self) -> Vec<u8> {
        let errno = match self {
            Self::Full => libc::ENFILE,
            Self::UserLimit => libc::EMFILE,
        };
        error_message(&ErrorReply::from(SystemError::System { errno }))
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Full => "too many connections",
            Self::UserLimit => "too many connections of one user",
        }
    }
}

/// The limits, and the connections counted against them.
#[derive(Debug)]
pub(crate) struct Admission {
    all: Arc<Semaphore>,
    max_unprivileged: usize,
    max_per_uid: usize,
    counts: Mutex<Counts>,
    log: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct Counts {
    unprivileged: usize,
    per_uid: HashMap<u32, usize>,
}

#[derive(Debug, Default)]
struct LogState {
    last: Option<Instant>,
    suppressed: u64,
}

/// One admitted connection; gives its place back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    _permit: OwnedSemaphorePermit,
    admission: Arc<Admission>,
    /// The UID it counts against, for unprivileged connections.
    uid: Option<u32>,
}

impl Admission {
    /// At most `max` connections, `max_per_uid` of one unprivileged user, and all unprivileged
    /// ones together at most seven eighths of `max`.
    pub(crate) fn new(max: usize, max_per_uid: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(max)),
            max_unprivileged: max - max.div_ceil(8),
            max_per_uid,
            counts: Mutex::new(Counts::default()),
            log: Mutex::new(LogState::default()),
        }
    }

    /// Every connection's place, for shutdown to wait until all are given back.
    pub(crate) fn all(&self) -> &Arc<Semaphore> {
        &self.all
    }

    /// Admits `peer`, or says why not (and logs it, rate-limited).
    pub(crate) fn admit(self: &Arc<Self>, peer: &Peer) -> Result<Ticket, Refusal> {
        let admitted = self.try_admit(peer);
        if let Err(refusal) = admitted {
            self.log_refusal(refusal, peer.uid);
        }
        admitted
    }

    fn try_admit(self: &Arc<Self>, peer: &Peer) -> Result<Ticket, Refusal> {
        let permit = Arc::clone(&self.all)
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        let uid = (!peer.is_privileged()).then_some(peer.uid);
        if let Some(uid) = uid {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            if counts.unprivileged >= self.max_unprivileged {
                return Err(Refusal::Full);
            }
            let mine = counts.per_uid.entry(uid).or_insert(0);
            if *mine >= self.max_per_uid {
                return Err(Refusal::UserLimit);
            }
            *mine += 1;
            counts.unprivileged += 1;
        }
        Ok(Ticket {
            _permit: permit,
            admission: Arc::clone(self),
            uid,
        })
    }

    fn release(&self, uid: u32) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.unprivileged -= 1;
        if let Some(count) = counts.per_uid.get_mut(&uid) {
            *count -= 1;
            if *count == 0 {
                counts.per_uid.remove(&uid);
            }
        }
    }

    fn log_refusal(&self, refusal: Refusal, uid: u32) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if log.last.is_some_and(|last| now - last < LOG_INTERVAL) {
            log.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut log.suppressed);
        log.last = Some(now);
        tracing::warn!(
            uid,
            reason = refusal.reason(),
            refused_since_last_report = suppressed,
            "Refusing a connection"
        );
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(uid) = self.uid {
            self.admission.release(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32) -> Peer {
        Peer::new(uid, uid, Vec::new(), None, None)
    }

    #[test]
    fn unprivileged_users_leave_an_eighth_for_root() {
        let admission = Arc::new(Admission::new(16, 10));
        let mut held = Vec::new();
        for uid in [60001, 60002] {
            while let Ok(ticket) = admission.admit(&peer(uid)) {
                held.push(ticket);
            }
        }
        assert_eq!(held.len(), 14);
        assert_eq!(admission.admit(&peer(60003)).unwrap_err(), Refusal::Full);
        held.push(admission.admit(&peer(0)).unwrap());
        held.push(admission.admit(&peer(0)).unwrap());
        assert_eq!(admission.admit(&peer(0)).unwrap_err(), Refusal::Full);
        held.clear();
        assert!(admission.admit(&peer(60003)).is_ok());
    }

    #[test]
    fn one_user_gets_at_most_its_share() {
        let admission = Arc::new(Admission::new(16, 3));
        let held: Vec<_> = (0..3)
            .map(|_| admission.admit(&peer(60001)).unwrap())
            .collect();
        assert_eq!(
            admission.admit(&peer(60001)).unwrap_err(),
            Refusal::UserLimit
        );
        assert!(admission.admit(&peer(60002)).is_ok());
        drop(held);
        assert!(admission.admit(&peer(60001)).is_ok());
    }

    #[test]
    fn refusals_say_why() {
        let full = String::from_utf8(Refusal::Full.message()).unwrap();
        assert!(full.contains("io.systemd.System") && full.contains(&libc::ENFILE.to_string()));
        assert!(full.ends_with('\0'));
    }
}
