//! What Berth's fuzz targets share: the endpoints the services really serve (with their IDL
//! texts) and a client to stand for, JSON values drawn from the fuzzer's bytes, freely or
//! following an IDL type, and the properties of what an endpoint makes of a message.
//!
//! * [`served`]: the registry's, the resolve hook's, the userdb bridge's and `supervise`'s
//!   endpoints, and one peer.
//! * [`json`]: arbitrary JSON, and JSON shaped like an IDL type (sometimes not quite).
//! * [`check`]: answers are well-formed, accepted calls stay accepted, typed decoding agrees
//!   with the IDL.

#![forbid(unsafe_code)]

pub mod check;
pub mod json;
pub mod served;
