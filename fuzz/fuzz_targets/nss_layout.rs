//! The NSS module's packing of an answer into the caller's buffer (`gethostbyname4_r`'s
//! `gaih_addrtuple` chain, `gethostbyname3_r`'s `hostent`), for any name, addresses (of any
//! family and length), scope, family asked for and buffer size.
//!
//! The size needed is computed here as nss-mymachines computes it. Properties: an answer is
//! refused as too small exactly when the buffer is smaller than that, and a buffer of that
//! size then fits it; refusals come in nss-mymachines' order (family, no address, size, a
//! malformed address); a packed answer reads back (name, every address in order with its
//! family and scope, pointers into the buffer, null-terminated lists) and nothing is written
//! past the size needed.

#![no_main]

use std::mem::{offset_of, size_of};

use berth_interfaces::machine::Address;
use libfuzzer_sys::fuzz_target;
use nss_mymachines::layout::{self, GaihAddrtuple, HostEntry, Refusal};

const POINTER: usize = size_of::<usize>();
const UNTOUCHED: u8 = 0xa5;

/// One call: `flags` (bit 0: `gethostbyname4_r`, else `gethostbyname3_r`), the buffer's
/// slack (i16, little endian), the scope ID (u32, little endian), the family asked for, the
/// name (length, bytes), then addresses (family, length, bytes) to the end.
#[derive(Debug)]
struct Input {
    tuples: bool,
    /// The buffer size, as an offset from the size needed.
    slack: i16,
    scope_id: u32,
    asked: i32,
    name: String,
    addresses: Vec<Address>,
}

impl Input {
    fn parse(data: &[u8]) -> Option<Self> {
        let (&[flags, s0, s1, i0, i1, i2, i3, asked, name_len], rest) = data.split_first_chunk()?;
        let (name, mut rest) = rest.split_at_checked(usize::from(name_len))?;
        let mut addresses = Vec::new();
        while let [family, len, after @ ..] = rest {
            let (address, after) = after.split_at(usize::from(*len).min(after.len()));
            addresses.push(Address {
                ifindex: None,
                family: i32::from(*family),
                address: address.to_vec(),
            });
            rest = after;
        }
        Some(Self {
            tuples: flags & 1 == 1,
            slack: i16::from_le_bytes([s0, s1]),
            scope_id: u32::from_le_bytes([i0, i1, i2, i3]),
            asked: i32::from(asked),
            name: String::from_utf8_lossy(name).into_owned(),
            addresses,
        })
    }
}

fn align(n: usize) -> usize {
    n.div_ceil(POINTER) * POINTER
}

fn length(family: i32) -> Option<usize> {
    match family {
        libc::AF_INET => Some(4),
        libc::AF_INET6 => Some(16),
        _ => None,
    }
}

fn word(buffer: &[u8], at: usize) -> usize {
    usize::from_ne_bytes(buffer[at..at + POINTER].try_into().unwrap())
}

fn int(buffer: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buffer[at..at + 4].try_into().unwrap())
}

/// A buffer of `size` bytes, filled with a byte nothing writes, and its address.
fn buffer(size: usize) -> (Vec<u8>, usize) {
    let buffer = vec![UNTOUCHED; size];
    let base = buffer.as_ptr() as usize;
    (buffer, base)
}

/// `slack` bytes more (or fewer) than `needed`.
fn size(needed: usize, slack: i16) -> usize {
    needed.saturating_add_signed(isize::from(slack))
}

fn name_reads_back(buffer: &[u8], name: &str) {
    assert_eq!(&buffer[..name.len()], name.as_bytes());
    assert_eq!(buffer[name.len()], 0);
}

fn untouched_past(buffer: &[u8], needed: usize) {
    assert!(
        buffer.iter().skip(needed).all(|&b| b == UNTOUCHED),
        "written past the size needed"
    );
}

fn tuples(input: &Input) {
    let addresses = &input.addresses;
    let tuple = align(size_of::<GaihAddrtuple>());
    let needed = align(input.name.len() + 1) + tuple * addresses.len();
    let (mut bytes, base) = buffer(size(needed, input.slack));
    let result = layout::tuples(&input.name, addresses, input.scope_id, &mut bytes, base);
    let malformed = addresses.iter().find_map(|a| match length(a.family) {
        None => Some(libc::EAFNOSUPPORT),
        Some(len) if len != a.address.len() => Some(libc::EINVAL),
        Some(_) => None,
    });
    let expected = if addresses.is_empty() {
        Err(Refusal::NotFound)
    } else if bytes.len() < needed {
        Err(Refusal::TooSmall)
    } else if let Some(errno) = malformed {
        Err(Refusal::Errno(errno))
    } else {
        Ok(align(input.name.len() + 1))
    };
    assert_eq!(result, expected);
    if result == Err(Refusal::TooSmall) {
        let (mut bytes, base) = buffer(needed);
        let again = layout::tuples(&input.name, addresses, input.scope_id, &mut bytes, base);
        assert_ne!(
            again,
            Err(Refusal::TooSmall),
            "the size needed is too small"
        );
        return;
    }
    let Ok(first) = result else { return };
    name_reads_back(&bytes, &input.name);
    let mut at = first;
    for (i, address) in addresses.iter().enumerate() {
        assert_eq!(at % POINTER, 0, "a tuple is not aligned");
        let next = word(&bytes, at + offset_of!(GaihAddrtuple, next));
        assert_eq!(word(&bytes, at + offset_of!(GaihAddrtuple, name)), base);
        let family = int(&bytes, at + offset_of!(GaihAddrtuple, family));
        assert_eq!(family as i32, address.family);
        let addr = at + offset_of!(GaihAddrtuple, addr);
        assert_eq!(
            &bytes[addr..addr + address.address.len()],
            &address.address[..]
        );
        assert!(
            bytes[addr + address.address.len()..addr + 16]
                .iter()
                .all(|&b| b == 0)
        );
        let scope = int(&bytes, at + offset_of!(GaihAddrtuple, scopeid));
        assert_eq!(scope, input.scope_id);
        if i + 1 == addresses.len() {
            assert_eq!(next, 0, "the chain does not end");
        } else {
            assert!(next > base + at, "the chain goes back");
            at = next - base;
            assert!(at + tuple <= needed, "a tuple past the size needed");
        }
    }
    untouched_past(&bytes, needed);
}

fn host_entry(input: &Input) {
    let addresses = &input.addresses;
    let asked = input.asked;
    let selected: Vec<&Address> = addresses.iter().filter(|a| a.family == asked).collect();
    let len = length(asked);
    let needed = align(input.name.len() + 1)
        + POINTER
        + selected.len() * align(len.unwrap_or(0))
        + (selected.len() + 1) * POINTER;
    let (mut bytes, base) = buffer(size(needed, input.slack));
    let result = layout::host_entry(&input.name, asked, addresses, &mut bytes, base);
    let expected_refusal = match len {
        None => Some(Refusal::Errno(libc::EAFNOSUPPORT)),
        Some(_) if selected.is_empty() => Some(Refusal::NotFound),
        Some(_) if bytes.len() < needed => Some(Refusal::TooSmall),
        Some(len) if selected.iter().any(|a| a.address.len() != len) => {
            Some(Refusal::Errno(libc::EINVAL))
        }
        Some(_) => None,
    };
    assert_eq!(result.err(), expected_refusal);
    if result == Err(Refusal::TooSmall) {
        let (mut bytes, base) = buffer(needed);
        let again = layout::host_entry(&input.name, asked, addresses, &mut bytes, base);
        assert_ne!(
            again,
            Err(Refusal::TooSmall),
            "the size needed is too small"
        );
        return;
    }
    let Ok(HostEntry {
        name,
        aliases,
        addr_list,
        family,
        length,
    }) = result
    else {
        return;
    };
    assert_eq!((name, family, Some(length as usize)), (0, asked, len));
    name_reads_back(&bytes, &input.name);
    assert_eq!(aliases % POINTER, 0);
    assert_eq!(word(&bytes, aliases), 0, "aliases are not an empty list");
    assert_eq!(addr_list % POINTER, 0);
    for (i, address) in selected.iter().enumerate() {
        let pointer = word(&bytes, addr_list + i * POINTER);
        assert!(pointer >= base && pointer - base + address.address.len() <= needed);
        let at = pointer - base;
        assert_eq!(&bytes[at..at + address.address.len()], &address.address[..]);
    }
    assert_eq!(word(&bytes, addr_list + selected.len() * POINTER), 0);
    untouched_past(&bytes, needed);
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    if input.tuples {
        tuples(&input);
    } else {
        host_entry(&input);
    }
});
