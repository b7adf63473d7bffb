//! Helper processes, each in its own process group, killed and reaped on drop.

use std::process::{Child, Command, Stdio};

use rustix::process::{Pid, Signal, kill_process_group};

/// A process started for a test.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    reaped: bool,
}

impl Proc {
    /// Starts `command` in a new process group.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn spawn(command: &mut Command) -> Self {
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Self {
            child,
            reaped: false,
        }
    }

    /// `sleep` for a long time: the simplest leader.
    pub fn sleeper() -> Self {
        Self::spawn(Command::new("sleep").arg("100000").stdin(Stdio::null()))
    }

    /// `sh -c SCRIPT`.
    pub fn shell(script: &str) -> Self {
        Self::spawn(Command::new("sh").args(["-c", script]).stdin(Stdio::null()))
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child handle (e.g. for its stdin).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the whole group and reaps the process.
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        if let Some(pgid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Whether it has exited (and reaps it if so).
    pub fn has_exited(&mut self) -> bool {
        if self.reaped {
            return true;
        }
        let exited = matches!(self.child.try_wait(), Ok(Some(_)));
        self.reaped = exited;
        exited
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `pid` is gone (or a zombie nobody reaped yet, which runs no code).
pub fn is_dead(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rfind(')').map_or("", |end| &stat[end + 2..]);
            state.starts_with('Z') || state.starts_with('X')
        })
        .unwrap_or(true)
}
