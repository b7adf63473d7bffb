//! The bridge's only state: the registry's containers as the `Watch` stream last described
//! them, or nothing while that stream is not synchronized.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::index::Index;

/// The containers that have users, shared between the watcher (writer) and the handlers
/// (readers). Locks are held only to copy a few fields out or to apply one event.
///
/// The watcher starts only once a lookup [`Cache::want`]s the listing: lookups of the host's
/// own users and groups (every `initgroups()` on the host asks every userdb service) neither
/// wait for the registry nor start it through its socket.
#[derive(Debug)]
pub struct Cache {
    index: RwLock<Option<Index>>,
    installed: watch::Sender<bool>,
    asked: AtomicBool,
    wanted: Notify,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            index: RwLock::default(),
            installed: watch::Sender::new(false),
            asked: AtomicBool::new(false),
            wanted: Notify::new(),
        }
    }
}

impl Cache {
    /// Installs a complete listing: from now on lookups are answered from it.
    pub fn install(&self, index: Index) {
        *self.index.write().unwrap_or_else(PoisonError::into_inner) = Some(index);
        self.installed.send_replace(true);
    }

    /// Forgets everything: the registry is gone, so nothing known may be trusted.
    pub fn clear(&self) {
        *self.index.write().unwrap_or_else(PoisonError::into_inner) = None;
        self.installed.send_replace(false);
    }

    /// Asks for the listing: `true` the first time, when this starts the watcher.
    pub fn want(&self) -> bool {
        let first = !self.asked.swap(true, Ordering::AcqRel);
        if first {
            self.wanted.notify_one();
        }
        first
    }

    /// Waits until a lookup wants the listing.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wanted(&self) {
        if !self.asked.load(Ordering::Acquire) {
            self.wanted.notified().await;
        }
    }

    /// Waits at most `within` for a listing to be installed; whether one is.
    pub async fn synchronized_within(&self, within: Duration) -> bool {
        let mut installed = self.installed.subscribe();
        let waited = tokio::time::timeout(within, installed.wait_for(|i| *i)).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// Applies a change to the installed listing (nothing if there is none).
    pub fn update(&self, change: impl FnOnce(&mut Index)) {
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = index.as_mut() {
            change(index);
        }
    }

    /// Runs `read` on the installed listing, or on `None` while there is none.
    pub fn read<R>(&self, read: impl FnOnce(Option<&Index>) -> R) -> R {
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        read(index.as_ref())
    }

    /// Whether a listing is installed.
    pub fn is_synchronized(&self) -> bool {
        self.read(|index| index.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::{line, summary};

    #[test]
    fn changes_apply_only_to_an_installed_listing() {
        let cache = Cache::default();
        cache.update(|index| index.upsert(&summary("early", Some(vec![line(0, 65536, 65536)]))));
        assert!(!cache.is_synchronized());
        cache.install(Index::default());
        cache.update(|index| index.upsert(&summary("late", Some(vec![line(0, 65536, 65536)]))));
        assert_eq!(cache.read(|index| index.map(Index::len)), Some(1));
        cache.clear();
        assert_eq!(cache.read(|index| index.map(Index::len)), None);
    }
}
