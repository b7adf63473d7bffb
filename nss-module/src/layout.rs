//! Packing an answer into the caller's buffer, byte for byte as nss-mymachines does (spec
//! §4.2): the name first, then `gaih_addrtuple`s, or the `hostent` aliases, addresses and
//! address pointers. Pointers into the buffer are written as numbers (the buffer's address plus
//! an offset), so all of this is safe code and is tested on plain byte arrays.

use std::mem::{offset_of, size_of};

use berth_interfaces::machine::Address;

/// glibc's `struct gaih_addrtuple` (`<nss.h>`), for its field offsets and size.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct GaihAddrtuple {
    /// The next tuple, or null.
    pub next: *mut GaihAddrtuple,
    /// The host name.
    pub name: *mut libc::c_char,
    /// `AF_INET` or `AF_INET6`.
    pub family: libc::c_int,
    /// The address, in network byte order (IPv4 in the first four bytes).
    pub addr: [u32; 4],
    /// The IPv6 scope (interface index).
    pub scopeid: u32,
}

const POINTER: usize = size_of::<usize>();
const TUPLE: usize = size_of::<GaihAddrtuple>();

/// Why nothing was packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No address (of the family asked for).
    NotFound,
    /// The buffer is too small.
    TooSmall,
    /// A malformed address: `EAFNOSUPPORT` for a foreign family, `EINVAL` for a wrong length.
    Errno(i32),
}

/// Where a packed `hostent`'s parts are: offsets into the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostEntry {
    /// `h_name`, also the canonical name.
    pub name: usize,
    /// `h_aliases`: an empty list.
    pub aliases: usize,
    /// `h_addr_list`.
    pub addr_list: usize,
    /// `h_addrtype`.
    pub family: i32,
    /// `h_length`.
    pub length: i32,
}

/// systemd's `ALIGN`: rounds up to the size of a pointer.
fn align(n: usize) -> usize {
    n.div_ceil(POINTER) * POINTER
}

/// The length of an address of `family`, if it is one nss-mymachines returns.
pub fn address_length(family: i32) -> Option<usize> {
    match family {
        libc::AF_INET => Some(4),
        libc::AF_INET6 => Some(16),
        _ => None,
    }
}

/// Writes into a buffer that starts at address `base` in memory.
struct Writer<'a> {
    buffer: &'a mut [u8],
    base: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, at: usize, bytes: &[u8]) {
        self.buffer[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn pointer(&mut self, at: usize, to: Option<usize>) {
        let value = to.map_or(0, |offset| self.base + offset);
        self.bytes(at, &value.to_ne_bytes());
    }

    /// The name and its NUL at the start; returns where the next part begins.
    fn name(&mut self, name: &str) -> usize {
        self.bytes(0, name.as_bytes());
        self.bytes(name.len(), &[0]);
        align(name.len() + 1)
    }
}

/// Packs `addresses` as a chain of `gaih_addrtuple`s for `gethostbyname4_r`; returns the
/// offset of the first tuple. `scope_id` goes into every tuple.
///
/// # Errors
/// See [`Refusal`]; the size is checked before any address is looked at.
pub fn tuples(
    name: &str,
    addresses: &[Address],
    scope_id: u32,
    buffer: &mut [u8],
    base: usize,
) -> Result<usize, Refusal> {
    if addresses.is_empty() {
        return Err(Refusal::NotFound);
    }
    let first = align(name.len() + 1);
    if buffer.len() < first + align(TUPLE) * addresses.len() {
        return Err(Refusal::TooSmall);
    }
    let mut out = Writer { buffer, base };
    out.name(name);
    for (i, address) in addresses.iter().enumerate() {
        let length = address_length(address.family).ok_or(Refusal::Errno(libc::EAFNOSUPPORT))?;
        if address.address.len() != length {
            return Err(Refusal::Errno(libc::EINVAL));
        }
        let at = first + i * align(TUPLE);
        let next = (i + 1 < addresses.len()).then_some(at + align(TUPLE));
        out.bytes(at, &[0; TUPLE]);
        out.pointer(at + offset_of!(GaihAddrtuple, next), next);
        out.pointer(at + offset_of!(GaihAddrtuple, name), Some(0));
        out.bytes(
            at + offset_of!(GaihAddrtuple, family),
            &address.family.to_ne_bytes(),
        );
        out.bytes(at + offset_of!(GaihAddrtuple, addr), &address.address);
        out.bytes(
            at + offset_of!(GaihAddrtuple, scopeid),
            &scope_id.to_ne_bytes(),
        );
    }
    Ok(first)
}

/// Packs the addresses of `family` for `gethostbyname3_r`: name, an empty alias list, the
/// addresses, then the null-terminated list of pointers to them.
///
/// # Errors
/// See [`Refusal`]; addresses of other families are skipped.
pub fn host_entry(
    name: &str,
    family: i32,
    addresses: &[Address],
    buffer: &mut [u8],
    base: usize,
) -> Result<HostEntry, Refusal> {
    let length = address_length(family).ok_or(Refusal::Errno(libc::EAFNOSUPPORT))?;
    let selected: Vec<&[u8]> = addresses
        .iter()
        .filter(|a| a.family == family)
        .map(|a| a.address.as_slice())
        .collect();
    let count = selected.len();
    if count == 0 {
        return Err(Refusal::NotFound);
    }
    let aliases = align(name.len() + 1);
    let first_address = aliases + POINTER;
    let addr_list = first_address + count * align(length);
    if buffer.len() < addr_list + (count + 1) * POINTER {
        return Err(Refusal::TooSmall);
    }
    let mut out = Writer { buffer, base };
    out.name(name);
    out.pointer(aliases, None);
    for (i, address) in selected.iter().enumerate() {
        if address.len() != length {
            return Err(Refusal::Errno(libc::EINVAL));
        }
        let at = first_address + i * align(length);
        out.bytes(at, address);
        out.pointer(addr_list + i * POINTER, Some(at));
    }
    out.pointer(addr_list + count * POINTER, None);
    Ok(HostEntry {
        name: 0,
        aliases,
        addr_list,
        family,
        length: length as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: usize = 0x1000;

    fn v4(bytes: [u8; 4]) -> Address {
        Address {
            ifindex: None,
            family: libc::AF_INET,
            address: bytes.to_vec(),
        }
    }

    fn v6(last: u8) -> Address {
        let mut address = vec![0x20, 0x01, 0x0d, 0xb8];
        address.resize(15, 0);
        address.push(last);
        Address {
            ifindex: None,
            family: libc::AF_INET6,
            address,
        }
    }

    fn word(buffer: &[u8], at: usize) -> usize {
        usize::from_ne_bytes(buffer[at..at + POINTER].try_into().unwrap())
    }

    fn int(buffer: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(buffer[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn the_tuple_struct_is_glibcs() {
        assert_eq!(offset_of!(GaihAddrtuple, family), 2 * POINTER);
        assert_eq!(offset_of!(GaihAddrtuple, addr), 2 * POINTER + 4);
        assert_eq!(offset_of!(GaihAddrtuple, scopeid), 2 * POINTER + 20);
        assert_eq!(TUPLE, align(2 * POINTER + 24));
    }

    #[test]
    fn tuples_follow_the_name_and_chain_in_reply_order() {
        let addresses = [v4([198, 51, 100, 7]), v6(7)];
        let mut buffer = vec![0xaa; 8 + 2 * TUPLE];
        let first = tuples("demo", &addresses, 3, &mut buffer, BASE).unwrap();
        assert_eq!(first, 8);
        assert_eq!(&buffer[..5], b"demo\0");
        let second = first + TUPLE;
        assert_eq!(word(&buffer, first), BASE + second);
        assert_eq!(word(&buffer, second), 0);
        for tuple in [first, second] {
            assert_eq!(word(&buffer, tuple + POINTER), BASE);
            assert_eq!(int(&buffer, tuple + offset_of!(GaihAddrtuple, scopeid)), 3);
        }
        let addr = offset_of!(GaihAddrtuple, addr);
        assert_eq!(int(&buffer, first + 2 * POINTER), libc::AF_INET as u32);
        assert_eq!(
            &buffer[first + addr..first + addr + 16],
            &[198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(int(&buffer, second + 2 * POINTER), libc::AF_INET6 as u32);
        assert_eq!(buffer[second + addr + 15], 7);
    }

    #[test]
    fn tuples_need_room_for_all_and_take_only_inet_families_of_the_right_length() {
        let addresses = [v4([198, 51, 100, 7]), v6(7)];
        let mut buffer = vec![0; 8 + 2 * TUPLE - 1];
        assert_eq!(
            tuples("demo", &addresses, 0, &mut buffer, BASE),
            Err(Refusal::TooSmall)
        );
        assert_eq!(
            tuples("demo", &[], 0, &mut buffer, BASE),
            Err(Refusal::NotFound)
        );
        let mut buffer = vec![0; 256];
        let unix = Address {
            family: libc::AF_UNIX,
            ..v4([1, 2, 3, 4])
        };
        assert_eq!(
            tuples("demo", &[unix], 0, &mut buffer, BASE),
            Err(Refusal::Errno(libc::EAFNOSUPPORT))
        );
        let short = Address {
            family: libc::AF_INET6,
            ..v4([1, 2, 3, 4])
        };
        assert_eq!(
            tuples("demo", &[short], 0, &mut buffer, BASE),
            Err(Refusal::Errno(libc::EINVAL))
        );
    }

    #[test]
    fn a_host_entry_holds_only_the_family_asked_for() {
        let addresses = [v4([198, 51, 100, 7]), v6(7), v4([198, 51, 100, 9])];
        // name (8) + aliases (1 pointer) + 2 addresses (8 each) + 3 pointers
        let size = 8 + POINTER + 2 * align(4) + 3 * POINTER;
        let mut buffer = vec![0xaa; size];
        let entry = host_entry("demo", libc::AF_INET, &addresses, &mut buffer, BASE).unwrap();
        assert_eq!(&buffer[..5], b"demo\0");
        assert_eq!((entry.name, entry.aliases), (0, 8));
        assert_eq!(word(&buffer, 8), 0, "no aliases");
        let first = 8 + POINTER;
        assert_eq!(&buffer[first..first + 4], &[198, 51, 100, 7]);
        assert_eq!(
            &buffer[first + align(4)..first + align(4) + 4],
            &[198, 51, 100, 9]
        );
        let list = entry.addr_list;
        assert_eq!(list, first + 2 * align(4));
        assert_eq!(word(&buffer, list), BASE + first);
        assert_eq!(word(&buffer, list + POINTER), BASE + first + align(4));
        assert_eq!(word(&buffer, list + 2 * POINTER), 0);
        assert_eq!((entry.family, entry.length), (libc::AF_INET, 4));

        let mut small = vec![0; size - 1];
        assert_eq!(
            host_entry("demo", libc::AF_INET, &addresses, &mut small, BASE),
            Err(Refusal::TooSmall)
        );
    }

    #[test]
    fn a_host_entry_of_a_family_without_addresses_is_not_found() {
        let mut buffer = vec![0; 256];
        let entry = host_entry("demo", libc::AF_INET6, &[v6(1)], &mut buffer, BASE).unwrap();
        assert_eq!(entry.length, 16);
        assert_eq!(
            host_entry(
                "demo",
                libc::AF_INET6,
                &[v4([1, 2, 3, 4])],
                &mut buffer,
                BASE
            ),
            Err(Refusal::NotFound)
        );
        let bad = Address {
            family: libc::AF_INET6,
            ..v4([1, 2, 3, 4])
        };
        assert_eq!(
            host_entry("demo", libc::AF_INET6, &[bad], &mut buffer, BASE),
            Err(Refusal::Errno(libc::EINVAL))
        );
    }
}
