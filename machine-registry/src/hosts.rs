//! The host table the registry publishes for the NSS module (the layout and its rules are in
//! `berth_interfaces::hosts`).
//!
//! An entry is written with the change it reflects and before that change is answered: a new
//! machine's "ask" entry just before it enters the registry's index, a leaving machine's entry
//! removed just after it left (a lookup in between is one ordered before the change), entries
//! for changed addresses under the registry's lock, so the table never outlives what the
//! registry knows. The registry vouches for the table (takes the write lock of its lock file)
//! only once the machines of the previous run are back; if an entry cannot be written, it
//! stops vouching for good and readers ask it again.
//!
//! Most entries say "ask" (a container whose addresses nobody looked up yet): each of those is
//! a hard link of one template file, which costs one `link(2)` instead of writing a file, and
//! appears whole as a rename does. Entries are only ever replaced, never written in place, so
//! the shared file never changes.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use berth_interfaces::hosts::{HostEntry, LOCK_FILE};
use berth_interfaces::machine::{Address, MachineClass};
use berth_interfaces::registry::ResolveHostReply;
use berth_os::sys::{self, OfdLock};

use crate::atomic_dir::AtomicDir;
use crate::machine::Machine;
use crate::network::Observed;

/// The `ResolveHost` reply for `machine`: addresses for a container only.
pub fn reply(machine: &Machine, addresses: Option<Vec<Address>>) -> ResolveHostReply {
    ResolveHostReply {
        class: machine.class,
        addresses: addresses.filter(|_| machine.class == MachineClass::Container),
        if_indices: (!machine.netif.is_empty()).then(|| machine.netif.clone()),
    }
}

/// The entry for `machine`, given what is known of its addresses.
pub fn entry(machine: &Machine, observed: Observed<'_>) -> HostEntry {
    if machine.class != MachineClass::Container {
        return HostEntry::Reply(reply(machine, None));
    }
    match observed {
        Observed::Unknown => HostEntry::Ask,
        Observed::Shared => HostEntry::NoPrivateNetworking,
        Observed::Addresses(addresses) => {
            HostEntry::Reply(reply(machine, Some(addresses.to_vec())))
        }
    }
}

/// The file every `Ask` entry is a hard link of (not a valid machine name, so never an entry).
const ASK_TEMPLATE: &str = ".ask";

/// The table's directory and the registry's hold on it.
#[derive(Debug)]
pub struct HostTable {
    dir: AtomicDir,
    lock: Mutex<Vouching>,
}

#[derive(Debug)]
struct Vouching {
    file: File,
    /// An entry could not be written: the table is not vouched for again.
    failed: bool,
}

impl HostTable {
    /// Makes the directory (mode 0755), its lock file and the template of `Ask` entries, and
    /// removes the entries a previous registry left.
    ///
    /// # Errors
    /// The directory, the lock file or the template cannot be made, or an old entry cannot be
    /// removed.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let table = AtomicDir::open(dir)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(dir.join(LOCK_FILE))?;
        for old in fs::read_dir(dir)? {
            let old = old?.file_name();
            if old != LOCK_FILE {
                table.remove(&old.to_string_lossy())?;
            }
        }
        table.write_atomic(ASK_TEMPLATE, &entry_text(&HostEntry::Ask)?)?;
        Ok(Self {
            dir: table,
            lock: Mutex::new(Vouching {
                file,
                failed: false,
            }),
        })
    }

    /// Writes `entry` as `name`'s.
    pub fn put(&self, name: &str, entry: &HostEntry) {
        let linked = *entry == HostEntry::Ask && self.dir.hard_link(ASK_TEMPLATE, name).is_ok();
        if linked {
            return;
        }
        // Replacing an entry, or no link possible (such as past a file system's link limit).
        let result = entry_text(entry).and_then(|text| self.dir.write_atomic(name, &text));
        self.check(name, result);
    }

    /// Removes `name`'s entry.
    pub fn remove(&self, name: &str) {
        self.check(name, self.dir.remove(name));
    }

    fn check(&self, name: &str, result: io::Result<()>) {
        let Err(error) = result else { return };
        let mut vouching = self.vouching();
        if !vouching.failed {
            tracing::warn!(machine = %name, %error, "Cannot update the host table, lookups ask the registry from now on");
            vouching.failed = true;
            let _ = sys::ofd_lock(vouching.file.as_fd(), OfdLock::Unlock, false);
        }
    }

    fn vouching(&self) -> std::sync::MutexGuard<'_, Vouching> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Vouches for the table from now on: takes the lock file's write lock, at once or, while
    /// a reader holds a read lock, on a thread that waits for it.
    pub fn vouch(self: &Arc<Self>) {
        if self.try_vouch(false).is_ok() {
            return;
        }
        let table = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("host-table".into())
            .spawn(move || table.try_vouch(true));
        if let Err(error) = spawned {
            tracing::warn!(%error, "Cannot wait for the host table's lock, lookups ask the registry");
        }
    }

    fn try_vouch(&self, wait: bool) -> io::Result<()> {
        let file = self.vouching().file.try_clone()?;
        sys::ofd_lock(file.as_fd(), OfdLock::Write, wait)?;
        // The lock belongs to the open file, shared by the clone: drop it again if an entry
        // failed meanwhile.
        let vouching = self.vouching();
        if vouching.failed {
            let _ = sys::ofd_lock(vouching.file.as_fd(), OfdLock::Unlock, false);
        }
        Ok(())
    }
}

fn entry_text(entry: &HostEntry) -> io::Result<String> {
    serde_json::to_string(entry).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    impl HostTable {
        /// Whether the table's lock is held, as readers see it.
        fn vouched(&self) -> bool {
            let probe = File::open(self.dir.path().join(LOCK_FILE));
            probe.is_ok_and(|probe| sys::ofd_lock(probe.as_fd(), OfdLock::Read, false).is_err())
        }
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_new_table_drops_what_a_previous_registry_left_and_is_vouched_for_once_asked() {
        let dir = tempfile::tempdir().unwrap();
        let table_dir = dir.path().join("berth-hosts");
        fs::create_dir(&table_dir).unwrap();
        fs::write(table_dir.join("old"), r#""ask""#).unwrap();
        let table = Arc::new(HostTable::open(&table_dir).unwrap());
        assert_eq!(names_in(&table_dir), [ASK_TEMPLATE, LOCK_FILE]);
        table.put("demo", &HostEntry::NoPrivateNetworking);
        assert_eq!(
            fs::read_to_string(table_dir.join("demo")).unwrap(),
            r#""noPrivateNetworking""#
        );
        assert!(!table.vouched());
        table.vouch();
        assert!(table.vouched());
        table.remove("demo");
        table.remove("demo");
        assert_eq!(names_in(&table_dir), [ASK_TEMPLATE, LOCK_FILE]);
        assert!(table.vouched());
    }

    #[test]
    fn ask_entries_share_the_template_and_replacing_one_leaves_it_alone() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let table = HostTable::open(dir.path()).unwrap();
        table.put("a", &HostEntry::Ask);
        table.put("b", &HostEntry::Ask);
        let inode = |name: &str| fs::metadata(dir.path().join(name)).unwrap().ino();
        assert_eq!(inode("a"), inode(ASK_TEMPLATE));
        assert_eq!(inode("b"), inode(ASK_TEMPLATE));
        assert_eq!(
            fs::read_to_string(dir.path().join("a")).unwrap(),
            r#""ask""#
        );
        table.put("a", &HostEntry::NoPrivateNetworking);
        table.put("b", &HostEntry::Ask);
        assert_ne!(inode("a"), inode(ASK_TEMPLATE));
        assert_eq!(
            fs::read_to_string(dir.path().join(ASK_TEMPLATE)).unwrap(),
            r#""ask""#
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("b")).unwrap(),
            r#""ask""#
        );
        table.remove("b");
        assert_eq!(names_in(dir.path()), [ASK_TEMPLATE, LOCK_FILE, "a"]);
    }

    #[test]
    fn a_reader_holding_the_lock_only_delays_vouching() {
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(HostTable::open(dir.path()).unwrap());
        let reader = File::open(dir.path().join(LOCK_FILE)).unwrap();
        sys::ofd_lock(reader.as_fd(), OfdLock::Read, false).unwrap();
        table.vouch();
        std::thread::sleep(Duration::from_millis(50));
        drop(reader);
        wait_until("the registry's lock", || table.vouched());
    }

    #[test]
    fn a_failed_write_withdraws_the_table_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(HostTable::open(dir.path()).unwrap());
        table.vouch();
        assert!(table.vouched());
        // A directory in the way: the entry cannot be replaced, even by root.
        fs::create_dir(dir.path().join("demo")).unwrap();
        table.put("demo", &HostEntry::Ask);
        assert!(!table.vouched());
        table.vouch();
        assert!(!table.vouched());
    }
}
