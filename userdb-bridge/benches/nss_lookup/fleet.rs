//! The containers of the benchmark: `sleep`s in user namespaces of their own (UIDs and GIDs
//! 0…65535 at host 65536 × (i + 2)…), each in a cgroup `machine-NAME.scope` (machined 257
//! refuses a leader that is in no unit), below a slice of the benchmark's own.

use std::fs;
use std::path::PathBuf;

use berth_tests::netns::UsernsLeader;
use berth_tests::wait;

const CGROUP2: &str = "/sys/fs/cgroup/unified";

/// One container.
#[derive(Debug)]
pub struct Container {
    /// Its machine name, `bNNNN`.
    pub name: String,
    leader: UsernsLeader,
    scope: PathBuf,
}

impl Container {
    /// The leader's PID.
    pub fn pid(&self) -> u32 {
        self.leader.pid()
    }
}

/// All containers, removed with their cgroups on drop.
#[derive(Debug)]
pub struct Fleet {
    slice: PathBuf,
    containers: Vec<Container>,
}

/// The host ID of ID 0 of container `i`.
pub fn shift(i: usize) -> u32 {
    u32::try_from(i + 2).expect("few containers") * 65536
}

impl Fleet {
    /// An empty fleet with its slice.
    pub fn new() -> Self {
        let slice = PathBuf::from(CGROUP2).join(format!("berthbench{}.slice", std::process::id()));
        fs::create_dir(&slice).expect("the benchmark's cgroup slice");
        Self {
            slice,
            containers: Vec::new(),
        }
    }

    /// Starts containers until there are `n`; returns the new ones.
    pub fn grow_to(&mut self, n: usize) -> &[Container] {
        let old = self.containers.len();
        for i in old..n {
            let name = format!("b{i:04}");
            let scope = self.slice.join(format!("machine-{name}.scope"));
            fs::create_dir(&scope).expect("scope cgroup");
            let leader = UsernsLeader::start(shift(i));
            fs::write(scope.join("cgroup.procs"), leader.pid().to_string()).expect("cgroup.procs");
            self.containers.push(Container {
                name,
                leader,
                scope,
            });
        }
        &self.containers[old..]
    }

    /// How many containers there are.
    pub fn len(&self) -> usize {
        self.containers.len()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for container in self.containers.drain(..) {
            let scope = container.scope.clone();
            drop(container);
            wait::until("an emptied scope to go away", || {
                fs::remove_dir(&scope).is_ok()
            });
        }
        let _ = fs::remove_dir(&self.slice);
    }
}
