//! Users and groups of the machine, from its own `/etc/passwd` and `/etc/group` (read after
//! entering its root; no NSS module of the machine is ever loaded into the helper).

use std::io::{self, Read};

use rustix::fs::{FileType, Mode, OFlags};

/// A user of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: u32,
    /// Its primary GID.
    pub gid: u32,
    /// Its home directory.
    pub home: String,
    /// Its login shell.
    pub shell: String,
}

/// The most read of either file.
const LIMIT: u64 = 4 * 1024 * 1024;

/// Reads a database of the machine: a regular file only (a FIFO there must not block us).
fn read(path: &str) -> io::Result<String> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(LIMIT)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The user `name` of `/etc/passwd`.
///
/// # Errors
/// The file cannot be read.
pub fn find_user(name: &str) -> io::Result<Option<Account>> {
    Ok(parse_user(&read("/etc/passwd")?, name))
}

/// The user `name` in the text of a passwd file.
pub fn parse_user(text: &str, name: &str) -> Option<Account> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let [user, _, uid, gid, _, home, shell] = fields[..] else {
            return None;
        };
        if user != name {
            return None;
        }
        Some(Account {
            name: user.to_owned(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            home: home.to_owned(),
            shell: shell.to_owned(),
        })
    })
}

/// The supplementary groups of `user` and the GID of the group `tty`, from `/etc/group`
/// (none when it cannot be read).
pub fn groups(user: &str) -> (Vec<u32>, Option<u32>) {
    read("/etc/group").map_or_else(|_| (Vec::new(), None), |text| parse_groups(&text, user))
}

/// As [`groups`], from the text of a group file.
pub fn parse_groups(text: &str, user: &str) -> (Vec<u32>, Option<u32>) {
    let mut member_of = Vec::new();
    let mut tty = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let [name, _, gid, members] = fields[..] else {
            continue;
        };
        let Ok(gid) = gid.parse::<u32>() else {
            continue;
        };
        if name == "tty" {
            tty = Some(gid);
        }
        if members.split(',').any(|member| member == user) {
            member_of.push(gid);
        }
    }
    (member_of, tty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_are_found_by_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nbroken:x\nalice:x:1000:100::/home/alice:\n";
        let alice = parse_user(passwd, "alice").unwrap();
        assert_eq!(
            (alice.uid, alice.gid, alice.shell.as_str()),
            (1000, 100, "")
        );
        assert_eq!(parse_user(passwd, "root").unwrap().home, "/root");
        assert_eq!(parse_user(passwd, "broken"), None);
        assert_eq!(parse_user(passwd, "bob"), None);
        let group = "tty:x:5:\nwheel:x:10:root,alice\nbad:x:y:alice\n";
        assert_eq!(parse_groups(group, "alice"), (vec![10], Some(5)));
        assert_eq!(parse_groups(group, "bob"), (vec![], Some(5)));
    }
}
