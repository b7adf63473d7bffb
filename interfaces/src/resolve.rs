//! Wire types of `io.systemd.Resolve.Hook` (`idl/io.systemd.Resolve.Hook.varlink`): what the
//! registry serves to systemd-resolved so machine names resolve through it.

use serde::{Deserialize, Serialize};

/// DNS class IN.
pub const CLASS_IN: u16 = 1;
/// DNS type A.
pub const TYPE_A: u16 = 1;
/// DNS type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// DNS rcode SUCCESS.
pub const RCODE_SUCCESS: u16 = 0;
/// DNS rcode NXDOMAIN.
pub const RCODE_NXDOMAIN: u16 = 3;

/// The class/type/name part of a resource record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceKey {
    /// RR class (default IN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<u16>,
    /// RR type.
    #[serde(rename = "type")]
    pub rr_type: u16,
    /// The domain name.
    pub name: String,
}

/// One key to look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// The key.
    pub key: ResourceKey,
}

/// A resource record (the address records this hook answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// Its key.
    pub key: ResourceKey,
    /// Address bytes of an A or AAAA record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Vec<u8>>,
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The record, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rr: Option<ResourceRecord>,
    /// The record in DNS wire format, Base64.
    pub raw: String,
}

/// Reply of `QueryFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryFilterReply {
    /// Domains this hook answers for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_domains: Option<Vec<String>>,
}

/// Parameters of `ResolveRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveRecordRequest {
    /// The keys looked up together.
    pub question: Vec<Question>,
}

/// Reply of `ResolveRecord`: empty to let the lookup continue elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResolveRecordReply {
    /// DNS response code, when this hook decides the lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<u16>,
    /// The answer, with rcode SUCCESS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Vec<Answer>>,
}
