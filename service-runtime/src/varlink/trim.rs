//! Giving memory back after load: once connections have ended or a large message was handled,
//! and the server has been quiet for a moment, the heap's free memory goes back to the system.

use std::time::Duration;

use tokio::sync::Notify;

/// How long after the last request the memory is given back.
const QUIET: Duration = Duration::from_secs(1);

/// Collects requests to give memory back; [`Trimmer::run`] carries them out, at most once per
/// quiet second however many there were.
#[derive(Debug, Default)]
pub(crate) struct Trimmer {
    wanted: Notify,
}

impl Trimmer {
    /// Asks for memory to be given back soon.
    pub(crate) fn request(&self) {
        self.wanted.notify_one();
    }

    /// Gives memory back after each burst of requests, forever.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub(crate) async fn run(&self) {
        loop {
            self.wanted.notified().await;
            tokio::time::sleep(QUIET).await;
            berth_os::sys::release_free_memory();
        }
    }
}
