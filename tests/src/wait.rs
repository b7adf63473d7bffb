//! Waiting for conditions with a deadline.

use std::time::{Duration, Instant};

/// How long any condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds; panics with `what` after [`DEADLINE`].
pub fn until(what: &str, condition: impl FnMut() -> bool) {
    until_within(what, DEADLINE, condition);
}

/// [`until`] with a deadline of its own (booting a container, say).
pub fn until_within(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Async form of [`until`].
pub async fn until_async<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + DEADLINE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
