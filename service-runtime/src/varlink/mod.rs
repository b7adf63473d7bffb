//! The tokio transport of the Varlink protocol: a server that behaves like sd-varlink towards
//! its clients, on top of the runtime-free [`protocol`](crate::protocol) core.
//!
//! Why not zlink's `Server`: it serves every connection from one task, drops the connection on
//! a malformed call instead of answering with the error sd-varlink sends, has no notion of a
//! client that went away, and grows messages up to 100 MiB. This server adds to the core:
//!
//! * one task per connection, so a slow handler or a client that stops reading only ever
//!   stalls itself; connections are capped overall and per UID (`server`);
//! * reading messages off each connection and dispatching them (`connection`): the core
//!   answers `org.varlink.service` and every malformed call, `builtin` answers
//!   `io.systemd.service`, the rest goes to [`Service::handle`] with the method the service
//!   routed it to;
//! * streamed replies through a [`Replier`], and clean shutdown.
//!
//! A service names its handlers in [`Service::route`] (typically by the method enums of
//! `berth_interfaces::methods`, dispatched with an exhaustive `match`); [`Server::new`]
//! refuses to start when a served method has no handler.

mod admission;
mod builtin;
mod config;
mod connection;
mod output;
mod reply;
mod server;
mod service;
mod trim;

pub use config::ServerConfig;
pub use reply::{HandlerResult, Replier};
pub use server::Server;
pub use service::Service;

pub use crate::protocol::{
    Call, ErrorReply, InterfaceSet, MAX_MESSAGE_SIZE, ProtocolError as ServerError, ServerInfo,
};
