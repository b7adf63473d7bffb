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

/// A daemon under test: started again and again with its stderr appended to one log file, and
/// waited for until its socket accepts connections.
#[derive(Debug)]
pub struct Daemon {
    proc: Option<Proc>,
    log: std::path::PathBuf,
}

impl Daemon {
    /// A daemon that is not running yet and logs to `log`.
    pub fn new(log: std::path::PathBuf) -> Self {
        Self { proc: None, log }
    }

    /// Starts `command` and waits until `socket` accepts connections.
    ///
    /// # Panics
    /// When it cannot start, or exits first (the panic shows its log).
    pub fn start(&mut self, command: &mut Command, socket: &std::path::Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        command.stdin(Stdio::null()).stderr(log);
        self.proc = Some(Proc::spawn(command));
        crate::wait::until(&format!("{}", socket.display()), || {
            assert!(
                !self.proc.as_mut().is_some_and(Proc::has_exited),
                "{command:?} exited:\n{}",
                self.log()
            );
            std::os::unix::net::UnixStream::connect(socket).is_ok()
        });
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its PID.
    ///
    /// # Panics
    /// When it is not running.
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().expect("running").pid()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// SIGTERM, then waits for the exit status.
    ///
    /// # Panics
    /// When it is not running.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut proc = self.proc.take().expect("running");
        let pid = Pid::from_raw(proc.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, Signal::TERM).expect("SIGTERM");
        let status = proc.child().wait().expect("wait");
        proc.kill();
        status
    }
}
