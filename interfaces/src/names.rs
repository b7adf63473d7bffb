//! Machine names, as every side of the wire checks them: the registry when a machine registers
//! or is looked up, the NSS module before it reads the registry's host table.

/// Longest machine name (Linux `HOST_NAME_MAX`).
const HOST_NAME_MAX: usize = 64;

/// The name of the synthetic machine standing for the host.
pub const HOST_MACHINE: &str = ".host";

/// Whether `name` may be registered: a hostname of letters, digits, `-` and `.`, at most 64
/// characters, no empty labels, no label starting or ending with `-`, no trailing dot.
pub fn is_valid_machine_name(name: &str) -> bool {
    if name.is_empty() || name.len() > HOST_NAME_MAX || name == HOST_MACHINE {
        return false;
    }
    let (mut after_dot, mut after_hyphen) = (true, true);
    for c in name.chars() {
        match c {
            '.' if after_dot || after_hyphen => return false,
            '.' => (after_dot, after_hyphen) = (true, false),
            '-' if after_dot => return false,
            '-' => (after_dot, after_hyphen) = (false, true),
            c if c.is_ascii_alphanumeric() => (after_dot, after_hyphen) = (false, false),
            _ => return false,
        }
    }
    !after_dot && !after_hyphen
}

/// Whether `name` is acceptable in a lookup: a registrable name or `.host`. Such a name is
/// also a safe file name (no `/`, never `.` or `..`).
pub fn is_valid_lookup_name(name: &str) -> bool {
    name == HOST_MACHINE || is_valid_machine_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_follow_the_hostname_rules() {
        for good in ["a", "demo", "a-b", "a.b", "a1.b-2.c", &"x".repeat(64)] {
            assert!(is_valid_machine_name(good), "{good} should be valid");
        }
        for bad in [
            "",
            ".host",
            ".a",
            "a.",
            "-a",
            "a-",
            "a..b",
            "a.-b",
            "a-.b",
            "a b",
            "a_b",
            "a/b",
            "ä",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_machine_name(bad), "{bad:?} should be invalid");
        }
        assert!(is_valid_lookup_name(".host"));
        for bad in ["", ".", "..", ".lock"] {
            assert!(!is_valid_lookup_name(bad), "{bad:?} should be invalid");
        }
    }
}
