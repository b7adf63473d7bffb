//! Into a machine: its root directory, terminals in it, bind mounts into it, and copies in
//! and out. Everything is done with the caller's rights, inside the machine's root pinned
//! through its leader; what needs the machine's namespaces is done by the helper
//! (`berth-machine-helper`), a small process started for one job, never by a thread of the
//! registry.

pub mod copy;
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
