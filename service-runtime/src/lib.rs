//! Shared plumbing of Berth's services, so that each service is only its own logic.
//!
//! * [`activation`]: listening sockets from `LISTEN_FDS`/`LISTEN_FDNAMES`, or bound by path
//!   without ever stealing a live socket.
//! * [`varlink`]: the Varlink server (one task per connection, IDL validation before dispatch,
//!   `org.varlink.service` and `io.systemd.service` built in).
//! * [`notify`]: sd-notify readiness, status, stopping, watchdog.
//! * [`logging`]: tracing setup and runtime log level changes.
//! * [`peer`]: credentials of a connected client.
//! * [`shutdown`]: SIGTERM/SIGINT as a stop flag.
//!
//! Everything it asks of the OS goes through `berth_os`.

#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod activation;
#[cfg(feature = "server")]
pub mod logging;
#[cfg(feature = "server")]
pub mod notify;
#[cfg(feature = "server")]
pub mod peer;
#[cfg(feature = "server")]
pub mod shutdown;
#[cfg(feature = "server")]
pub mod varlink;
