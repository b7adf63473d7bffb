//! User and group names: systemd's validity rules and the `vu-NAME-ID` / `vg-NAME-ID` scheme.

/// What a synthesized name stands for: a user (`vu-`) or a group (`vg-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `vu-MACHINE-UID`.
    User,
    /// `vg-MACHINE-GID`.
    Group,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Self::User => "vu-",
            Self::Group => "vg-",
        }
    }
}

/// The longest user or group name (utmp's `ut_user` is 32 bytes with its NUL).
const MAX_NAME_LEN: usize = 31;

/// systemd's strict `valid_user_group_name(name, 0)`: `[A-Za-z_][A-Za-z0-9_-]*`, optionally
/// ending in one `$`, at most 31 bytes.
pub fn is_strictly_valid(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= MAX_NAME_LEN
}

/// systemd's relaxed `valid_user_group_name(name, VALID_USER_RELAX)`, which lookups accept:
/// not empty, no surrounding spaces, no control characters, no `:` or `/`, not all digits, not
/// `.` or `..`. (UTF-8 validity is given by the type.)
pub fn is_relaxed_valid(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(char::is_whitespace)
        && !name.ends_with(char::is_whitespace)
        && !name.chars().any(|c| c.is_control() || c == ':' || c == '/')
        && !name.bytes().all(|b| b.is_ascii_digit())
        && name != "."
        && name != ".."
}

/// The synthesized name of ID `id` of machine `machine`, if the ID is valid (see
/// [`is_valid_id`]: no name spells an invalid one, so it would not look up) and the name is
/// strictly valid.
pub fn synthesize(kind: Kind, machine: &str, id: u32) -> Option<String> {
    let name = format!("{}{machine}-{id}", kind.prefix());
    (is_valid_id(id) && is_strictly_valid(&name)).then_some(name)
}

/// Splits a synthesized name into machine name and ID: it must be strictly valid, carry the
/// kind's prefix, and end in `-ID` (split at the last `-`) with the ID in canonical decimal,
/// so that every user has exactly one name.
pub fn parse(kind: Kind, name: &str) -> Option<(&str, u32)> {
    if !is_strictly_valid(name) {
        return None;
    }
    let rest = name.strip_prefix(kind.prefix())?;
    let (machine, id) = rest.rsplit_once('-')?;
    if machine.is_empty() || !is_canonical_decimal(id) {
        return None;
    }
    let id: u32 = id.parse().ok()?;
    is_valid_id(id).then_some((machine, id))
}

/// systemd's `uid_is_valid`: neither `(uid_t) -1` nor the 16-bit `-1`, 65535.
pub fn is_valid_id(id: u32) -> bool {
    id != u32::MAX && id != 65535
}

fn is_canonical_decimal(digits: &str) -> bool {
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_names_are_short_and_plain() {
        for good in ["vu-foo-0", "_x", "a$", "vg-a-b-c-12", "A1-_"] {
            assert!(is_strictly_valid(good), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "-x",
            "a.b",
            "a b",
            "a$b",
            "vu-abcdefghijklmnopqrstuvwxyz-12",
        ] {
            assert!(!is_strictly_valid(bad), "{bad}");
        }
        assert!(is_strictly_valid("vu-abcdefghijklmnopqrstuvwxy-12"));
    }

    #[test]
    fn relaxed_names_reject_only_what_cannot_be_a_name() {
        for good in ["vu-foo-0", "Ünïcode", "a.b", "a b", "-x", "1a"] {
            assert!(is_relaxed_valid(good), "{good}");
        }
        for bad in ["", " a", "a ", "a:b", "a/b", "a\tb", "1234", ".", ".."] {
            assert!(!is_relaxed_valid(bad), "{bad}");
        }
    }

    #[test]
    fn names_split_at_the_last_dash() {
        assert_eq!(parse(Kind::User, "vu-foo-1000"), Some(("foo", 1000)));
        assert_eq!(parse(Kind::User, "vu-my-box-0"), Some(("my-box", 0)));
        assert_eq!(parse(Kind::Group, "vg-foo-5"), Some(("foo", 5)));
        assert_eq!(parse(Kind::Group, "vu-foo-5"), None);
        assert_eq!(parse(Kind::User, "vu-foo"), None);
        assert_eq!(parse(Kind::User, "vu--5"), None);
        assert_eq!(parse(Kind::User, "vu-foo-x"), None);
        assert_eq!(parse(Kind::User, "vu-foo-007"), None);
        assert_eq!(parse(Kind::User, "vu-foo-65535"), None);
        assert_eq!(parse(Kind::User, "vu-foo-4294967296"), None);
        assert_eq!(parse(Kind::User, "vu-foo-5$"), None);
    }

    #[test]
    fn synthesized_names_must_be_valid() {
        assert_eq!(
            synthesize(Kind::User, "foo", 1000).as_deref(),
            Some("vu-foo-1000")
        );
        assert_eq!(
            synthesize(Kind::Group, "foo", 1).as_deref(),
            Some("vg-foo-1")
        );
        assert_eq!(synthesize(Kind::User, "a.b", 0), None);
        assert_eq!(synthesize(Kind::User, "foo", 65535), None);
        assert_eq!(synthesize(Kind::User, &"x".repeat(30), 0), None);
    }
}
