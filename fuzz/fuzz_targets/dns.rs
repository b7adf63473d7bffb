//! The resolve hook's DNS wire records: an A or AAAA record for a name and an address, and the
//! answer that carries it (the record for humans and its wire form in Base64); and the names
//! above a name, which decide NXDOMAIN.
//!
//! Input: the address's length, the address, then the name asked about (the seeds are the
//! questions resolved asks: A and AAAA for machine names, names below them, long labels).
//!
//! Properties: a record exists exactly when the address has 4 or 16 bytes and the name is a
//! DNS name (labels of 1 to 63 bytes, at most 255 bytes encoded); it parses back (by a parser
//! written here from RFC 1035) to the name, type A or AAAA, class IN, TTL 0 and the address,
//! with nothing left over; every valid machine name whose labels fit has one; the answer's
//! Base64 is that record and its key says the same; the parents of a name are its suffixes
//! after each dot, shortest last.

#![no_main]

use base64::Engine;
use berth_interfaces::machine::Address;
use berth_interfaces::names::is_valid_machine_name;
use berth_interfaces::resolve::{CLASS_IN, TYPE_A, TYPE_AAAA};
use berth_machine_registry::dns;
use libfuzzer_sys::fuzz_target;

/// A resource record in wire format: owner name (labels), type, class, TTL, data.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    labels: Vec<Vec<u8>>,
    rr_type: u16,
    class: u16,
    ttl: u32,
    data: Vec<u8>,
}

fn parse(wire: &[u8]) -> Option<Record> {
    let mut at = 0;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*wire.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(wire.get(at..at + len)?.to_vec());
        at += len;
    }
    if at > 255 {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_be_bytes(wire.get(at..at + 2)?.try_into().ok()?));
    let rr_type = u16_at(at)?;
    let class = u16_at(at + 2)?;
    let ttl = u32::from_be_bytes(wire.get(at + 4..at + 8)?.try_into().ok()?);
    let len = usize::from(u16_at(at + 8)?);
    let data = wire.get(at + 10..at + 10 + len)?.to_vec();
    (at + 10 + len == wire.len()).then_some(Record {
        labels,
        rr_type,
        class,
        ttl,
        data,
    })
}

fn is_dns_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    let labels: Vec<&str> = name.split('.').collect();
    let encoded: usize = labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    labels.iter().all(|l| !l.is_empty() && l.len() <= 63) && encoded <= 255
}

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let (address, name) = rest.split_at(usize::from(len).min(rest.len()));
    let address = address.to_vec();
    let name = String::from_utf8_lossy(name).into_owned();
    let record = dns::address_record(&name, &address);
    let rr_type = match address.len() {
        4 => Some(TYPE_A),
        16 => Some(TYPE_AAAA),
        _ => None,
    };
    assert_eq!(record.is_some(), rr_type.is_some() && is_dns_name(&name));
    if rr_type.is_some()
        && is_valid_machine_name(&name)
        && name.split('.').all(|label| label.len() <= 63)
    {
        assert!(record.is_some(), "a machine name has no record");
    }
    let family = if address.len() == 4 {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let answer = dns::answer(
        &name,
        &Address {
            ifindex: None,
            family,
            address: address.clone(),
        },
    );
    assert_eq!(answer.is_some(), record.is_some());
    if let (Some(wire), Some(rr_type), Some(answer)) = (record, rr_type, answer) {
        let parsed = parse(&wire).expect("a record parses back");
        let labels: Vec<&[u8]> = parsed.labels.iter().map(Vec::as_slice).collect();
        assert_eq!(labels.join(&b'.'), name.trim_end_matches('.').as_bytes());
        assert_eq!(
            (parsed.rr_type, parsed.class, parsed.ttl, &parsed.data),
            (rr_type, CLASS_IN, 0, &address)
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&answer.raw)
            .expect("the answer's raw record is Base64");
        assert_eq!(raw, wire);
        let rr = answer.rr.expect("the answer has its record");
        assert_eq!(
            (rr.key.rr_type, rr.key.class, rr.key.name.as_str()),
            (rr_type, Some(CLASS_IN), name.as_str())
        );
        assert_eq!(rr.address.as_ref(), Some(&address));
    }
    let trimmed = name.trim_end_matches('.');
    let parents: Vec<&str> = dns::parents(&name).collect();
    assert_eq!(parents.len(), trimmed.matches('.').count());
    for (i, parent) in parents.iter().enumerate() {
        assert!(trimmed.ends_with(&format!(".{parent}")));
        if let Some(next) = parents.get(i + 1) {
            assert!(next.len() < parent.len());
        }
    }
});
