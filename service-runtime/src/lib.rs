//! Shared plumbing of Berth's services, so that each service is only its own logic.
//!
//! * [`activation`]: listening sockets from `LISTEN_FDS`/`LISTEN_FDNAMES`, or bound by path
//!   without ever stealing a live socket.
//! * [`protocol`]: the Varlink protocol without a runtime (framing, envelopes, IDL validation,
//!   `org.varlink.service`, replies), for every Berth endpoint.
//! * [`varlink`]: the tokio server on top (one task per connection, `io.systemd.service`
//!   built in).
//! * [`notify`]: sd-notify readiness, status, stopping, watchdog.
//! * [`logging`]: tracing setup and runtime log level changes.
//! * [`peer`]: credentials of a connected client.
//! * [`shutdown`]: SIGTERM/SIGINT as a stop flag.
//!
//! Everything it asks of the OS goes through `berth_os`. The feature `protocol` alone gives
//! [`protocol`] and [`peer`] on std (for `supervise`); `server` (the default) adds the rest.

#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod activation;
#[cfg(feature = "server")]
pub mod logging;
#[cfg(feature = "server")]
pub mod notify;
#[cfg(feature = "protocol")]
pub mod peer;
#[cfg(feature = "protocol")]
pub mod protocol;
#[cfg(feature = "server")]
pub mod shutdown;
#[cfg(feature = "server")]
pub mod varlink;

/// `error` and its sources, as one line (`Cannot save: No space left on device (os error 28)`),
/// for the one place that logs or prints it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
