//! Address resource records in DNS wire format, as the resolve hook hands them to
//! systemd-resolved.

use base64::Engine;
use berth_interfaces::machine::Address;
use berth_interfaces::resolve::{Answer, CLASS_IN, ResourceKey, ResourceRecord, TYPE_A, TYPE_AAAA};

/// Longest encoded domain name.
const NAME_MAX: usize = 255;
/// Longest label.
const LABEL_MAX: usize = 63;
/// The time to live of synthesized records: machines come and go, so no caching.
const TTL: u32 = 0;

/// The wire form of an A (4 bytes) or AAAA (16 bytes) record for `name`; `None` if `name` is
/// not a valid domain name or the address has another length.
pub fn address_record(name: &str, address: &[u8]) -> Option<Vec<u8>> {
    let rr_type = match address.len() {
        4 => TYPE_A,
        16 => TYPE_AAAA,
        _ => return None,
    };
    let mut wire = encode_name(name)?;
    wire.extend_from_slice(&rr_type.to_be_bytes());
    wire.extend_from_slice(&CLASS_IN.to_be_bytes());
    wire.extend_from_slice(&TTL.to_be_bytes());
    wire.extend_from_slice(&(address.len() as u16).to_be_bytes());
    wire.extend_from_slice(address);
    Some(wire)
}

/// The answer record of the resolve hook for `name` at `address`: the record for humans and its
/// wire form (Base64); `None` where [`address_record`] has none.
pub fn answer(name: &str, address: &Address) -> Option<Answer> {
    let raw = address_record(name, &address.address)?;
    let rr_type = if address.address.len() == 4 {
        TYPE_A
    } else {
        TYPE_AAAA
    };
    Some(Answer {
        rr: Some(ResourceRecord {
            key: ResourceKey {
                class: Some(CLASS_IN),
                rr_type,
                name: name.to_owned(),
            },
            address: Some(address.address.clone()),
        }),
        raw: base64::engine::general_purpose::STANDARD.encode(raw),
    })
}

fn encode_name(name: &str) -> Option<Vec<u8>> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > LABEL_MAX {
            return None;
        }
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    (wire.len() <= NAME_MAX).then_some(wire)
}

/// The names above `name`: `a.b.c` → `b.c`, `c`.
pub fn parents(name: &str) -> impl Iterator<Item = &str> {
    let name = name.trim_end_matches('.');
    name.match_indices('.')
        .map(move |(dot, _)| &name[dot + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_the_wire_layout() {
        let wire = address_record("demo.local", &[198, 51, 100, 7]).unwrap();
        let expected: Vec<u8> = [
            &[4][..],
            b"demo",
            &[5],
            b"local",
            &[0],
            &[0, 1],
            &[0, 1],
            &[0, 0, 0, 0],
            &[0, 4],
            &[198, 51, 100, 7],
        ]
        .concat();
        assert_eq!(wire, expected);
        let v6 = address_record("x", &[0; 16]).unwrap();
        assert_eq!(&v6[3..5], &[0, 28]);
        assert!(address_record("", &[1, 2, 3, 4]).is_none());
        assert!(address_record("a..b", &[1, 2, 3, 4]).is_none());
        assert!(address_record("x", &[1, 2, 3]).is_none());
    }

    #[test]
    fn parents_climb_to_the_top_label() {
        assert_eq!(parents("a.b.c").collect::<Vec<_>>(), ["b.c", "c"]);
        assert_eq!(parents("demo.").count(), 0);
    }
}
