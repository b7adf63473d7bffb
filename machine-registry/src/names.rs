//! Validation of names, paths and identifiers, with systemd's rules.

const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

pub use berth_interfaces::names::{HOST_MACHINE, is_valid_lookup_name, is_valid_machine_name};

/// systemd's `path_is_valid`: non-empty, shorter than `PATH_MAX`, no component over `NAME_MAX`.
pub fn is_valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() < PATH_MAX
        && path.split('/').all(|component| component.len() <= NAME_MAX)
}

/// An absolute, valid path without `.`/`..` components or `//` (a trailing `/` is fine).
pub fn is_absolute_normalized_path(path: &str) -> bool {
    is_valid_path(path)
        && path.starts_with('/')
        && !path.contains("//")
        && path
            .split('/')
            .all(|component| component != "." && component != "..")
}

/// An absolute valid path (`.` and `..` allowed).
pub fn is_absolute_path(path: &str) -> bool {
    is_valid_path(path) && path.starts_with('/')
}

/// A string safe to pass on: no control characters, no backslash, no quotes.
pub fn is_safe_string(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || matches!(c, '\\' | '"' | '\''))
}

/// A string that is not a 128-bit ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Not a 128-bit ID")]
pub struct InvalidId;

/// Parses a 128-bit ID given as 32 hex digits or as a UUID; returns 32 lowercase hex digits,
/// or `Ok(None)` for the all-zero ("null") ID.
///
/// # Errors
/// [`InvalidId`] for anything else.
pub fn parse_id128(s: &str) -> Result<Option<String>, InvalidId> {
    let hex: String = match s.len() {
        32 => s.to_owned(),
        36 if [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-') => s.replace('-', ""),
        _ => return Err(InvalidId),
    };
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(InvalidId);
    }
    let hex = hex.to_ascii_lowercase();
    Ok((hex != "0".repeat(32)).then_some(hex))
}

/// systemd's `unit_name_escape` for the characters a machine name can hold.
pub fn escape_unit_name(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        match c {
            c if c.is_ascii_alphanumeric() || matches!(c, ':' | '_') => escaped.push(c),
            '.' if i > 0 => escaped.push('.'),
            c => escaped.push_str(&format!("\\x{:02x}", u32::from(c))),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute_and_normalized() {
        for good in ["/", "/var/lib/machines/x", "/a/b/"] {
            assert!(is_absolute_normalized_path(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/..",
            "/.",
            &format!("/{}", "x".repeat(256)),
        ] {
            assert!(!is_absolute_normalized_path(bad), "{bad:?}");
        }
        assert!(is_absolute_path("/a/../b"));
        assert!(!is_absolute_path("a"));
    }

    #[test]
    fn ids_are_hex_or_uuid_and_all_zero_means_none() {
        let hex = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(parse_id128(hex).unwrap().unwrap(), hex.to_ascii_lowercase());
        assert_eq!(
            parse_id128("01234567-89ab-cdef-0123-456789abcdef")
                .unwrap()
                .unwrap(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(parse_id128(&"0".repeat(32)).unwrap(), None);
        for bad in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(parse_id128(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_names_escape_hyphens_like_systemd() {
        assert_eq!(escape_unit_name("foo-bar.baz"), "foo\\x2dbar.baz");
    }

    #[test]
    fn safe_strings_have_no_quotes_backslashes_or_controls() {
        assert!(is_safe_string("vsock/3"));
        for bad in ["a\"b", "a'b", "a\\b", "a\nb", "\u{7f}"] {
            assert!(!is_safe_string(bad), "{bad:?}");
        }
    }
}
