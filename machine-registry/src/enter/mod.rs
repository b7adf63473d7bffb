//! Into a machine: its root directory, terminals in it, bind mounts into it, and copies in
//! and out. Everything is done with the caller's rights, inside the machine's root pinned
//! through its leader. Only the root directory is opened here; terminals, mounts and copies
//! (and the image pool's changes) are jobs for the helper (`berth-machine-helper`), a small
//! process started for one job outside the registry's sandbox: no thread of the registry ever
//! enters a namespace. Also here: the checks of paths, user names and environment those
//! methods share, and the limit on long operations.

mod helper;
pub mod jobs;
pub mod root;

/// Whether `path` is absolute and normalized, as machined wants paths into and out of a
/// machine: no empty, `.` or `..` component, no trailing slash (but `/` itself).
pub fn is_absolute_normalized(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    path.len() < libc::PATH_MAX as usize
        && (rest.is_empty()
            || rest
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".."))
}

/// Whether `name` is a user name as systemd accepts it relaxed: not empty, not `.` or
/// `..`, at most 255 bytes, nothing that cannot appear in `/etc/passwd` (`:`, `/`, white
/// space, control characters).
pub fn is_valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.starts_with('-')
        && !name
            .chars()
            .any(|c| c == ':' || c == '/' || c.is_whitespace() || c.is_control())
}

/// Whether `assignment` is `KEY=VALUE` with a shell-variable-like key and no NUL.
pub fn is_valid_assignment(assignment: &str) -> bool {
    let Some((key, value)) = assignment.split_once('=') else {
        return false;
    };
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !value.contains('\0')
}

/// How many copies may run at once (machined's limit; more are refused with
/// `TooManyOperations`).
pub const MAX_OPERATIONS: usize = 64;

/// The copies running now.
#[derive(Debug, Default)]
pub struct Operations(std::sync::atomic::AtomicUsize);

/// One running operation; counted until dropped.
#[derive(Debug)]
pub struct Operation(std::sync::Arc<Operations>);

impl Operations {
    /// Counts one more operation, unless [`MAX_OPERATIONS`] run already.
    ///
    /// # Errors
    /// [`crate::error::Error::TooManyOperations`].
    pub fn start(self: &std::sync::Arc<Self>) -> Result<Operation, crate::error::Error> {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < MAX_OPERATIONS).then_some(running + 1)
            })
            .map_err(|_| crate::error::Error::TooManyOperations)?;
        Ok(Operation(self.clone()))
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn at_most_64_operations_run_at_once() {
        let operations = Arc::new(Operations::default());
        let running: Vec<Operation> = (0..MAX_OPERATIONS)
            .map(|_| operations.start().unwrap())
            .collect();
        assert!(matches!(
            operations.start(),
            Err(crate::error::Error::TooManyOperations)
        ));
        drop(running);
        operations.start().unwrap();
    }

    #[test]
    fn paths_must_be_absolute_and_normalized() {
        for good in ["/", "/etc", "/etc/passwd", "/a b/c"] {
            assert!(is_absolute_normalized(good), "{good}");
        }
        for bad in ["", "etc", "/etc/", "//etc", "/etc/./x", "/etc/../x", "/."] {
            assert!(!is_absolute_normalized(bad), "{bad}");
        }
    }

    #[test]
    fn users_and_environment_are_checked_as_systemd_does() {
        assert!(is_valid_user_name("alice") && is_valid_user_name("vu-x-1"));
        for bad in ["", ".", "..", "a:b", "a/b", "a b", "-x"] {
            assert!(!is_valid_user_name(bad), "{bad}");
        }
        assert!(is_valid_assignment("A_1=x") && is_valid_assignment("_=="));
        for bad in ["A", "=x", "1A=x", "A-B=x"] {
            assert!(!is_valid_assignment(bad), "{bad}");
        }
    }
}
