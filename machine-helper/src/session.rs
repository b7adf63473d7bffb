//! What runs on an `Open`ed pty: nothing (`tty`), a login prompt (`login`: the machine's
//! `agetty`, else its `login`), or a program as a user of the machine (`shell`), each the
//! leader of a new session with the pty as its controlling terminal.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_interfaces::helper::HelperFailure;
use berth_interfaces::machine::OpenMode;
use berth_os::sys::{self, ExecImage, SessionUser};
use rustix::fs::{Gid, Mode, Uid};

use crate::Failure;
use crate::passwd::{self, Account};
use crate::pty::Pty;

/// What `shell` runs.
#[derive(Debug)]
pub struct Program<'a> {
    /// The user inside.
    pub user: &'a str,
    /// The program, absolute (none: the user's shell).
    pub path: Option<&'a str>,
    /// Its `argv` from `argv[0]`.
    pub args: Option<&'a [String]>,
    /// Environment to add.
    pub environment: &'a [String],
}

/// The `PATH` sessions start with.
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The terminal type unless the caller says otherwise (machined's containers get the same).
const TERM: &str = "TERM=vt220";

/// Starts what `mode` asks for on `pty`, born in `cgroup` when given.
///
/// # Errors
/// `NoSuchUser`, `NoLogin`, or the kernel's error.
pub fn start(
    mode: OpenMode,
    pty: &Pty,
    program: &Program<'_>,
    cgroup: Option<&OwnedFd>,
) -> Result<(), Failure> {
    let (account, argv, environment) = match mode {
        OpenMode::Tty => return Ok(()),
        OpenMode::Shell => shell(program)?,
        OpenMode::Login => login()?,
    };
    let (groups, tty_group) = passwd::groups(&account.name);
    let peer = pty.peer()?;
    let owner = Some(Uid::from_raw(account.uid));
    let group = |gid: u32| Some(Gid::from_raw(gid));
    // The tty group, unless the machine's user namespace does not map it (EINVAL).
    match rustix::fs::fchown(&peer, owner, group(tty_group.unwrap_or(account.gid))) {
        Err(rustix::io::Errno::INVAL) => rustix::fs::fchown(&peer, owner, group(account.gid)),
        chowned => chowned,
    }
    .and_then(|()| rustix::fs::fchmod(&peer, Mode::from_raw_mode(0o620)))
    .map_err(|e| Failure::system("giving the pty to the user", e))?;
    let image = ExecImage::new(OsStr::new(&argv[0]), &argv[1..], &environment)
        .map_err(|e| Failure::system("preparing the program", e))?;
    let user = SessionUser {
        uid: account.uid,
        gid: account.gid,
        groups,
        home: std::ffi::CString::new(account.home.clone())
            .map_err(|_| Failure::system("preparing the program", rustix::io::Errno::INVAL))?,
    };
    let spawned = sys::spawn_session(&image, peer.as_fd(), &user, cgroup.map(AsFd::as_fd));
    let spawned = match spawned {
        // The cgroup may not take it (another user's, or controllers in the way): start it
        // where we are rather than not at all.
        Err(e) if cgroup.is_some() && refused_by_cgroup(&e) => {
            sys::spawn_session(&image, peer.as_fd(), &user, None)
        }
        spawned => spawned,
    };
    spawned
        .map(drop)
        .map_err(|e| Failure::system("starting the program", e))
}

fn refused_by_cgroup(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EBUSY | libc::EOPNOTSUPP | libc::EACCES | libc::EPERM | libc::ENOENT)
    )
}

/// `(program, argv…)` and the environment, the program first.
type Command = (Account, Vec<OsString>, Vec<OsString>);

fn find_user(name: &str) -> Result<Account, Failure> {
    passwd::find_user(name)
        .map_err(|e| Failure::system("reading /etc/passwd", e))?
        .ok_or(Failure(HelperFailure::NoSuchUser))
}

fn shell(program: &Program<'_>) -> Result<Command, Failure> {
    let account = find_user(program.user)?;
    let shell = match account.shell.as_str() {
        "" => "/bin/sh",
        shell => shell,
    };
    let argv: Vec<String> = match (program.path, program.args) {
        (Some(_), Some(args)) if !args.is_empty() => args.to_vec(),
        (Some(path), _) => vec![path.to_owned()],
        (None, _) => vec![shell.to_owned(), "-l".to_owned()],
    };
    let path = program.path.unwrap_or(shell);
    let mut environment = vec![
        PATH.to_owned(),
        TERM.to_owned(),
        format!("HOME={}", account.home),
        format!("USER={}", account.name),
        format!("LOGNAME={}", account.name),
        format!("SHELL={shell}"),
    ];
    for assignment in program.environment {
        let key = assignment.split('=').next().unwrap_or_default();
        environment.retain(|old| old.split('=').next() != Some(key));
        environment.push(assignment.clone());
    }
    let mut command = vec![OsString::from(path)];
    command.extend(argv.into_iter().map(OsString::from));
    Ok((
        account,
        command,
        environment.into_iter().map(OsString::from).collect(),
    ))
}

/// The login prompts a machine may have, most capable first.
const GETTYS: [&str; 2] = ["/sbin/agetty", "/usr/sbin/agetty"];
const LOGINS: [&str; 2] = ["/bin/login", "/usr/bin/login"];

fn login() -> Result<Command, Failure> {
    let root = find_user("root")?;
    let environment = vec![OsString::from(TERM), OsString::from(PATH)];
    let found = |candidates: &[&'static str]| {
        candidates
            .iter()
            .copied()
            .find(|path| Path::new(path).is_file())
    };
    let command: Vec<OsString> = if let Some(agetty) = found(&GETTYS) {
        // As container-getty@.service runs it: the terminal is standard input ("-").
        [
            agetty,
            "agetty",
            "--noclear",
            "--keep-baud",
            "-",
            "115200,38400,9600",
            "vt220",
        ]
        .map(OsString::from)
        .to_vec()
    } else if let Some(login) = found(&LOGINS) {
        [login, "login"].map(OsString::from).to_vec()
    } else {
        return Err(Failure(HelperFailure::NoLogin));
    };
    Ok((root, command, environment))
}
