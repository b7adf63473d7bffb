//! A real container for the tests that go into machines: its own user (IDs 0…65535 at a
//! shift), mount, PID, network, UTS and IPC namespaces, and a root directory of its own with
//! the host's `/usr` read-only, `/etc/passwd` with `root` and `alice` (1000), a devpts of its
//! own, `/proc`, and a writable `/tmp`. Its leader is `sleep`, chrooted into that root.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::process::Proc;
use crate::wait;

/// The user besides root inside the container.
pub const ALICE: u32 = 1000;

/// A running container.
#[derive(Debug)]
pub struct Container {
    proc: Proc,
    leader: u32,
    shift: u32,
    root: TempDir,
}

/// The container's first process: makes the user namespace itself (so that it keeps its
/// capabilities there until it becomes root of it), waits until the maps are written, becomes
/// root inside, makes the other namespaces and forks the leader into the new PID namespace,
/// which sets up the root's mounts and chroots into it. `argv[1]` is the root directory.
const INIT: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def unshare(flags):
    if libc.unshare(flags) != 0:
        sys.exit("unshare failed: %d" % ctypes.get_errno())
unshare(0x10000000)
if len(sys.argv) > 2:
    # An unprivileged user's container: it maps its own ID as root, and nothing else.
    open("/proc/self/setgroups", "w").write("deny")
    open("/proc/self/uid_map", "w").write("0 %s 1" % sys.argv[2])
    open("/proc/self/gid_map", "w").write("0 %s 1" % sys.argv[2])
else:
    print("userns", flush=True)
    sys.stdin.readline()
    os.setgroups([])
os.setresgid(0, 0, 0)
os.setresuid(0, 0, 0)
unshare(0x00020000 | 0x20000000 | 0x40000000 | 0x04000000 | 0x08000000)
pid = os.fork()
if pid == 0:
    os.execvp("sh", ["sh", "-c", SETUP, "sh", sys.argv[1]])
print(pid, flush=True)
os.waitpid(pid, 0)
"#;

/// Run by the leader inside every namespace: the root's mounts, then `sleep` in it.
const SETUP: &str = r#"set -e
r=$1
mount --rbind -o ro /usr "$r/usr"
mount -o remount,bind,ro "$r/usr"
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=0755 tmpfs "$r/dev"
mkdir "$r/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
for node in null zero full random urandom tty; do
    touch "$r/dev/$node"
    mount --bind "/dev/$node" "$r/dev/$node"
done
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
hostname container
echo ready
exec chroot "$r" /usr/bin/sleep 100000
"#;

impl Container {
    /// Builds its root and starts it with its IDs at `shift` (root is `shift`, alice
    /// `shift + 1000`); returns once the leader runs in its root.
    pub fn start(shift: u32) -> Self {
        Self::start_with(shift, None)
    }

    /// Starts one (as [`Container::start`]) and registers it with `registry` as `boxed`.
    pub fn boxed(registry: &crate::daemon::Registry, shift: u32) -> Self {
        let container = Self::start(shift);
        crate::machines::register_raw(registry, "boxed", "container", container.pid());
        container
    }

    /// Starts one as the unprivileged user `uid` would (`unshare` as that user): its user
    /// namespace, owned by `uid`, maps only `uid` (as root inside); its root belongs to `uid`.
    pub fn start_owned_by(uid: u32) -> Self {
        Self::start_with(uid, Some(uid))
    }

    fn start_with(shift: u32, owner: Option<u32>) -> Self {
        let root = tempfile::Builder::new()
            .prefix("berth-container-")
            .tempdir()
            .expect("tempdir");
        build_root(root.path(), shift, owner.is_some());
        let init = INIT.replace("SETUP", &format!("{SETUP:?}"));
        let mut command = match owner {
            Some(uid) => crate::users::as_user(uid, "/usr/bin/python3"),
            None => Command::new("/usr/bin/python3"),
        };
        command.args(["-c", &init]).arg(root.path());
        if let Some(uid) = owner {
            command.arg(uid.to_string());
        }
        let mut proc = Proc::spawn(command.stdin(Stdio::piped()).stdout(Stdio::piped()));
        let first = proc.pid();
        let child = proc.child();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        if owner.is_none() {
            assert_eq!(read_line(&mut stdout), "userns", "no user namespace");
            let map = format!("0 {shift} 65536");
            std::fs::write(format!("/proc/{first}/uid_map"), &map).expect("uid_map");
            std::fs::write(format!("/proc/{first}/gid_map"), &map).expect("gid_map");
            let stdin = child.stdin.as_mut().expect("stdin");
            stdin.write_all(b"go\n").expect("go");
        }
        let leader: u32 = read_line(&mut stdout).parse().expect("the leader's PID");
        assert_eq!(
            read_line(&mut stdout),
            "ready",
            "the container's setup failed"
        );
        wait::until("the container's leader to run in its root", || {
            std::fs::read_to_string(format!("/proc/{leader}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
        });
        Self {
            proc,
            leader,
            shift,
            root,
        }
    }

    /// The leader's PID (as the host sees it).
    pub fn pid(&self) -> u32 {
        self.leader
    }

    /// The host UID of UID 0 inside.
    pub fn shift(&self) -> u32 {
        self.shift
    }

    /// The container's root directory, as the host sees it (its mounts are not visible here).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A path inside the container as the host sees it, through the leader's root (its mounts
    /// included).
    pub fn inside(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.leader)).join(path.trim_start_matches('/'))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.proc.kill();
    }
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line");
    line.trim().to_owned()
}

/// The root directory: mount points, `/etc`, homes, and the usual symlinks into `/usr`, all
/// owned by the container's root.
fn build_root(root: &Path, shift: u32, single_id: bool) {
    for dir in ["usr", "proc", "dev", "tmp", "etc", "root", "home/alice"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    for link in ["bin", "sbin", "lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link)).expect("symlink");
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\ntty:x:5:\nalice:x:1000:\nwheel:x:10:alice\n",
    )
    .expect("group");
    std::fs::write(root.join("etc/os-release"), "ID=berthbox\n").expect("os-release");
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let status = Command::new("chown")
        .args(["-R", "-h", &format!("{shift}:{shift}")])
        .arg(root)
        .status()
        .expect("chown");
    assert!(status.success());
    let alice = match single_id {
        true => shift.to_string(), // only root is mapped
        false => (shift + ALICE).to_string(),
    };
    let status = Command::new("chown")
        .args(["-R", &format!("{alice}:{alice}")])
        .arg(root.join("home/alice"))
        .status()
        .expect("chown");
    assert!(status.success());
}
