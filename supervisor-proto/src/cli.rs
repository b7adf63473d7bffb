//! The command line: `supervise [OPTIONS] -- PROGRAM [ARGS…]`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_interfaces::machine::MachineClass;
use rustix::fs::{Access, access};

use crate::error::{Error, Result};

/// The help text.
pub const USAGE: &str = "\
Usage: supervise [OPTIONS] -- PROGRAM [ARGS...]

Starts PROGRAM as a machine's payload in a cgroup of its own, registers the machine with the
registry, serves io.systemd.MachineInstance and io.berth.Supervisor on a control socket, and
exits with the payload's status once every process of the machine is gone.

Options:
  --name NAME             Machine name (default: PROGRAM's name and supervise's PID)
  --class container|vm    Machine class (default: container)
  --service NAME          Registered as the machine's service (default: berth-supervise)
  --control-socket PATH   Control socket (default: RUNTIME/berth/supervise/NAME.sock)
  --cgroup-root DIR       cgroup2 directory for the payload's cgroups (default: our own cgroup)
  --no-cgroup             Do not use cgroups: subreaper mode only
  --registry PATH         Registry socket (default: RUNTIME/systemd/machine/io.systemd.Machine)
  --no-register           Do not register the machine
  --user                  RUNTIME is $XDG_RUNTIME_DIR (default: /run)
  --tie-to-stdin          End the machine when standard input reaches EOF
  --poweroff-signal SIG   Sent to the payload by PowerOff (default: SIGRTMIN+4)
  --reboot-signal SIG     Sent to the payload by Reboot (default: SIGINT)
  --grace SECS            Time the payload has to stop on its own (default: 10)
  --help, --version
";

/// Where the payload's cgroups come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupChoice {
    /// Below our own cgroup2 directory, if we may write there; else subreaper mode.
    Auto,
    /// Below this directory.
    At(PathBuf),
    /// Subreaper mode only.
    Off,
}

/// What `supervise` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Machine name.
    pub name: String,
    /// Machine class.
    pub class: MachineClass,
    /// Registered as the machine's service.
    pub service: String,
    /// The control socket.
    pub control_socket: PathBuf,
    /// Where the payload's cgroups come from.
    pub cgroup: CgroupChoice,
    /// The registry socket; `None` with `--no-register`.
    pub registry: Option<PathBuf>,
    /// End the machine at EOF on stdin.
    pub tie_to_stdin: bool,
    /// Sent by `PowerOff`.
    pub poweroff_signal: i32,
    /// Sent by `Reboot`.
    pub reboot_signal: i32,
    /// Time to stop on its own before everything is killed.
    pub grace: Duration,
    /// The payload program, resolved to a path.
    pub program: PathBuf,
    /// Its arguments, `argv[0]` first.
    pub argv: Vec<OsString>,
}

/// The parsed command line.
#[derive(Debug)]
pub enum Command {
    /// Supervise.
    Run(Box<Config>),
    /// Print the help.
    Help,
    /// Print the version.
    Version,
}

#[derive(Default)]
struct Raw {
    name: Option<String>,
    class: Option<MachineClass>,
    service: Option<String>,
    control_socket: Option<PathBuf>,
    cgroup: Option<CgroupChoice>,
    registry: Option<PathBuf>,
    no_register: bool,
    user: bool,
    tie_to_stdin: bool,
    poweroff_signal: Option<i32>,
    reboot_signal: Option<i32>,
    grace: Option<Duration>,
}

/// Parses the arguments after the program name.
///
/// # Errors
/// [`Error::Usage`] for unknown options, bad values or a missing payload.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let mut args = args.into_iter();
    let mut raw = Raw::default();
    loop {
        let Some(arg) = args.next() else {
            return Err(usage("no payload given (PROGRAM after --)"));
        };
        let arg = arg.into_string().map_err(|_| usage("non-UTF-8 option"))?;
        match arg.as_str() {
            "--" => break,
            "--help" | "-h" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            _ => option(&mut raw, &arg, &mut args)?,
        }
    }
    let argv: Vec<OsString> = args.collect();
    let program = argv.first().ok_or_else(|| usage("no payload after --"))?;
    let program = resolve(Path::new(program))?;
    Ok(Command::Run(Box::new(raw.into_config(program, argv)?)))
}

fn option(raw: &mut Raw, arg: &str, args: &mut impl Iterator<Item = OsString>) -> Result<()> {
    let mut value = || {
        args.next()
            .and_then(|v| v.into_string().ok())
            .ok_or_else(|| usage(&format!("{arg} needs a (UTF-8) value")))
    };
    match arg {
        "--name" => raw.name = Some(value()?),
        "--class" => raw.class = Some(class(&value()?)?),
        "--service" => raw.service = Some(value()?),
        "--control-socket" => raw.control_socket = Some(value()?.into()),
        "--cgroup-root" => raw.cgroup = Some(CgroupChoice::At(value()?.into())),
        "--no-cgroup" => raw.cgroup = Some(CgroupChoice::Off),
        "--registry" => raw.registry = Some(value()?.into()),
        "--no-register" => raw.no_register = true,
        "--user" => raw.user = true,
        "--tie-to-stdin" => raw.tie_to_stdin = true,
        "--poweroff-signal" => raw.poweroff_signal = Some(signal(&value()?)?),
        "--reboot-signal" => raw.reboot_signal = Some(signal(&value()?)?),
        "--grace" => raw.grace = Some(grace(&value()?)?),
        other => return Err(usage(&format!("unknown option {other}"))),
    }
    Ok(())
}

impl Raw {
    fn into_config(self, program: PathBuf, argv: Vec<OsString>) -> Result<Config> {
        let runtime = runtime_dir(self.user)?;
        let name = self.name.unwrap_or_else(|| default_name(&program));
        let registry = (!self.no_register).then(|| {
            self.registry
                .unwrap_or_else(|| runtime.join("systemd/machine/io.systemd.Machine"))
        });
        let control_socket = self
            .control_socket
            .unwrap_or_else(|| runtime.join(format!("berth/supervise/{name}.sock")));
        if !control_socket.is_absolute() {
            return Err(usage("--control-socket must be an absolute path"));
        }
        // Normalized (no `//`, no `.`), as the registry wants a `controlAddress`.
        let control_socket: PathBuf = control_socket.components().collect();
        Ok(Config {
            name,
            class: self.class.unwrap_or(MachineClass::Container),
            service: self.service.unwrap_or_else(|| "berth-supervise".into()),
            control_socket,
            cgroup: self.cgroup.unwrap_or(CgroupChoice::Auto),
            registry,
            tie_to_stdin: self.tie_to_stdin,
            poweroff_signal: self
                .poweroff_signal
                .unwrap_or_else(|| berth_os::signal::rtmin() + 4),
            reboot_signal: self
                .reboot_signal
                .unwrap_or(rustix::process::Signal::INT.as_raw()),
            grace: self.grace.unwrap_or(Duration::from_secs(10)),
            program,
            argv,
        })
    }
}

fn usage(what: &str) -> Error {
    Error::Usage(what.to_owned())
}

fn class(text: &str) -> Result<MachineClass> {
    match MachineClass::parse(text) {
        Some(class @ (MachineClass::Container | MachineClass::Vm)) => Ok(class),
        _ => Err(usage(&format!(
            "--class must be container or vm, not {text}"
        ))),
    }
}

fn signal(text: &str) -> Result<i32> {
    berth_os::signal::parse(text).ok_or_else(|| usage(&format!("not a signal: {text}")))
}

fn grace(text: &str) -> Result<Duration> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| usage(&format!("--grace takes seconds, not {text}")))
}

fn runtime_dir(user: bool) -> Result<PathBuf> {
    if !user {
        return Ok(PathBuf::from("/run"));
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .ok_or_else(|| usage("--user needs $XDG_RUNTIME_DIR"))
}

/// `PROGRAM-PID`, reduced to the characters of a host name.
fn default_name(program: &Path) -> String {
    let base = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "payload" } else { clean };
    format!("{clean}-{}", std::process::id())
}

/// The payload program as a path: as given when it contains a `/`, else found on `$PATH`.
fn resolve(program: &Path) -> Result<PathBuf> {
    let executable = |p: &Path| p.is_file() && access(p, Access::EXEC_OK).is_ok();
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        return executable(program)
            .then(|| program.to_owned())
            .ok_or_else(|| usage(&format!("{} is not an executable file", program.display())));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
        .ok_or_else(|| usage(&format!("{} is not on $PATH", program.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(OsString::from))
    }

    fn config(args: &[&str]) -> Config {
        match run(args) {
            Ok(Command::Run(config)) => *config,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_fit_a_systemd_container_in_system_scope() {
        let config = config(&["--name", "demo", "--", "true", "x"]);
        assert_eq!(config.name, "demo");
        assert_eq!(config.class, MachineClass::Container);
        assert_eq!(
            config.control_socket,
            Path::new("/run/berth/supervise/demo.sock")
        );
        assert_eq!(
            config.registry.as_deref(),
            Some(Path::new("/run/systemd/machine/io.systemd.Machine"))
        );
        assert_eq!(config.reboot_signal, 2);
        assert_eq!(config.poweroff_signal, berth_os::signal::rtmin() + 4);
        assert!(config.program.is_absolute());
        assert_eq!(config.argv, ["true", "x"]);
    }

    #[test]
    fn options_override_the_defaults() {
        let config = config(&[
            "--class",
            "vm",
            "--no-register",
            "--no-cgroup",
            "--grace",
            "0.5",
            "--poweroff-signal",
            "TERM",
            "--control-socket",
            "/tmp/c",
            "--",
            "/bin/true",
        ]);
        assert_eq!(config.class, MachineClass::Vm);
        assert_eq!(config.registry, None);
        assert_eq!(config.cgroup, CgroupChoice::Off);
        assert_eq!(config.grace, Duration::from_millis(500));
        assert_eq!(config.poweroff_signal, 15);
        assert_eq!(config.control_socket, Path::new("/tmp/c"));
        assert!(config.name.starts_with("true-"));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for args in [
            &["--name", "x"][..],
            &["--", "/nonexistent/program"],
            &["--bogus", "--", "true"],
            &["--class", "host", "--", "true"],
            &["--grace", "-1", "--", "true"],
            &["--reboot-signal", "NOPE", "--", "true"],
            &["--control-socket", "relative", "--", "true"],
        ] {
            assert!(matches!(run(args), Err(Error::Usage(_))), "{args:?}");
        }
        assert!(matches!(run(&["--help"]), Ok(Command::Help)));
    }
}
