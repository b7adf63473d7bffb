//! Berth's Varlink interfaces: the IDL files (the source of truth) and their Rust wire types.
//!
//! * [`idl`] holds the interface texts, verbatim from `idl/*.varlink`; services serve these
//!   texts for introspection and validate every incoming call against them.
//! * [`machine`], [`image`], [`registry`], [`resolve`], [`instance`], [`supervisor`], [`userdb`] and
//!   [`service`] hold the serde types for the parameters, replies and errors,
//!   named exactly like the IDL. Error enums list exactly the IDL error names.
//! * [`methods`] has each interface's methods as an enum ([`Methods`]), checked against the
//!   IDL, for services to dispatch on with an exhaustive `match`.
//! * [`helper`] has the jobs the registry gives its machine helper and their answers.
//! * [`names`] checks machine names; [`hosts`] is the registry's host table, which the NSS
//!   module reads.
//! * `client` (feature `client`) has typed async proxies over zlink for tests and for the
//!   services that call each other; `blocking` (feature `blocking`) is a small std-only client
//!   for the NSS module and the supervisor. The NSS module builds this crate without that feature, so
//!   it links neither zlink nor an async runtime.
#![forbid(unsafe_code)]

mod errors;
pub use errors::WireError;
pub mod helper;
pub mod hosts;
pub mod idl;
pub mod image;
pub mod instance;
pub mod machine;
pub mod methods;
pub use methods::Methods;
pub mod names;
pub mod registry;
pub mod resolve;
pub mod service;
pub mod supervisor;
pub mod userdb;

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "client")]
pub mod client;
