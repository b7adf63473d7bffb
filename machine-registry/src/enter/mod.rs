//! Into a machine: its root directory, terminals in it, bind mounts into it, and copies in
//! and out. Everything is done with the caller's rights, inside the machine's root pinned
//! through its leader; what needs the machine's namespaces is done by the helper
//! (`berth-machine-helper`), a small process started for one job, never by a thread of the
//! registry.

pub mod root;
