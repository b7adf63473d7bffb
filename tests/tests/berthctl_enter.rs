//! `berthctl shell`, `login`, `copy-to`, `copy-from` and `bind` against the real registry and
//! a real container: what a user types, what it prints, and its errors.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use berth_tests::berthctl::{berthctl, berthctl_command};
use berth_tests::clients::{Run, run};
use berth_tests::container::{ALICE, Container};
use berth_tests::daemon::Registry;
use berth_tests::require;

/// `berthctl ARGS` with `input` on its standard input (a pipe, not a terminal).
fn berthctl_with_input(registry: &Registry, args: &[&str], input: &str) -> Run {
    let mut child = berthctl_command(registry, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}

#[test]
fn shell_runs_a_command_or_the_login_shell_as_a_user_of_the_machine() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let _container = Container::boxed(&registry, 430_000);
    let ran = berthctl(
        &registry,
        &[
            "shell",
            "-E",
            "GREETING=hi",
            "boxed",
            "/bin/sh",
            "-c",
            "id -un; echo $GREETING",
        ],
    );
    assert!(ran.success, "{ran:?}");
    assert!(
        ran.stdout.contains("root") && ran.stdout.contains("hi"),
        "{ran:?}"
    );

    let as_alice = berthctl(&registry, &["shell", "alice@boxed", "/usr/bin/id", "-u"]);
    assert!(as_alice.stdout.contains(&ALICE.to_string()), "{as_alice:?}");

    // The login shell reads what is typed; the end of the input ends it.
    let typed = berthctl_with_input(&registry, &["shell", "boxed"], "echo typed=$((40+2))\n");
    assert!(typed.success, "{typed:?}");
    assert!(typed.stdout.contains("typed=42"), "{typed:?}");
}

#[test]
fn login_shows_a_prompt() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let _container = Container::boxed(&registry, 440_000);
    let mut child = berthctl_command(&registry, &["login", "boxed"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("login:") {
        let n = std::io::Read::read(&mut stdout, &mut buffer).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn copies_go_both_ways_with_owners_translated() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 450_000);
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("notes");
    fs::write(&file, "notes\n").unwrap();

    let to = berthctl(
        &registry,
        &["copy-to", "boxed", file.to_str().unwrap(), "/root/notes"],
    );
    assert!(to.success, "{to:?}");
    let inside = fs::metadata(container.inside("root/notes")).unwrap();
    assert_eq!((inside.uid(), inside.gid()), (450_000, 450_000));

    let again = berthctl(
        &registry,
        &["copy-to", "boxed", file.to_str().unwrap(), "/root/notes"],
    );
    assert!(
        !again.success && again.stderr.contains("io.systemd.System"),
        "{again:?}"
    );
    let forced = berthctl(
        &registry,
        &[
            "copy-to",
            "--force",
            "boxed",
            file.to_str().unwrap(),
            "/root/notes",
        ],
    );
    assert!(forced.success, "{forced:?}");

    let back = host.path().join("back");
    let from = berthctl(
        &registry,
        &["copy-from", "boxed", "/root/notes", back.to_str().unwrap()],
    );
    assert!(from.success, "{from:?}");
    assert_eq!(fs::read_to_string(&back).unwrap(), "notes\n");
    assert_eq!(fs::metadata(&back).unwrap().uid(), 450_000);

    let missing = berthctl(&registry, &["copy-from", "nope", "/etc/passwd", "/tmp/x"]);
    assert!(missing.stderr.contains("No machine 'nope'"), "{missing:?}");
}

#[test]
fn bind_mounts_a_host_directory() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let container = Container::boxed(&registry, 460_000);
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("shared"), "shared\n").unwrap();
    let bound = berthctl(
        &registry,
        &[
            "bind",
            "--mkdir",
            "--read-only",
            "boxed",
            host.path().to_str().unwrap(),
            "/srv/host",
        ],
    );
    assert!(bound.success, "{bound:?}");
    assert_eq!(
        fs::read_to_string(container.inside("srv/host/shared")).unwrap(),
        "shared\n"
    );
    let relative = berthctl(&registry, &["bind", "boxed", "/tmp", "srv"]);
    assert!(
        !relative.success && relative.stderr.contains("InvalidParameter"),
        "{relative:?}"
    );
}

/// Runs `berthctl ARGS…` on a terminal of its own (python's `pty.fork`), types a command,
/// waits for its output, then `^]` three times; prints what it saw and its exit status.
const ON_A_TERMINAL: &str = r#"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
def wait_for(text):
    global seen
    deadline = time.time() + 10
    while text not in seen and time.time() < deadline:
        seen += os.read(fd, 4096)
wait_for(b"Press ^] three times")
os.write(fd, b"echo answer=$((6*7))\r")
wait_for(b"answer=42")
os.write(fd, b"\x1d\x1d\x1d")
wait_for(b"terminated")
_, status = os.waitpid(pid, 0)
print(seen.decode(errors="replace"))
print("status", os.waitstatus_to_exitcode(status))
"#;

#[test]
fn an_interactive_shell_leaves_with_three_escapes() {
    if !(require::root() && require::program("unshare")) {
        return;
    }
    let registry = Registry::without_cgroup();
    let _container = Container::boxed(&registry, 470_000);
    let berthctl = berth_tests::workspace_binary("berthctl");
    let session = run(Command::new("/usr/bin/python3")
        .args(["-c", ON_A_TERMINAL])
        .arg(&berthctl)
        .arg("--runtime-dir")
        .arg(registry.runtime_dir())
        .args(["shell", "boxed"]));
    assert!(session.stdout.contains("answer=42"), "{session:?}");
    assert!(
        session
            .stdout
            .contains("Connection to machine boxed terminated."),
        "{session:?}"
    );
    assert!(session.stdout.contains("status 0"), "{session:?}");
}
