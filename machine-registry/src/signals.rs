//! Signal names and numbers, as systemd's `signal_from_string` reads them.

use berth_interfaces::machine::SignalSpec;

/// glibc's `SIGRTMIN` (the kernel's 32 and 33 are reserved by the C library).
const SIGRTMIN: i32 = 34;
/// `_NSIG - 1`.
const SIGRTMAX: i32 = 64;

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The signal number `spec` names, if it is a valid signal (1…64).
pub fn parse(spec: &SignalSpec) -> Option<i32> {
    let number = match spec {
        SignalSpec::Number(n) => i32::try_from(*n).ok()?,
        SignalSpec::Name(name) => from_name(name)?,
    };
    (1..=SIGRTMAX).contains(&number).then_some(number)
}

fn from_name(name: &str) -> Option<i32> {
    if let Ok(number) = name.parse::<i32>() {
        return Some(number);
    }
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    if let Some((_, number)) = NAMES.iter().find(|(n, _)| *n == bare) {
        return Some(*number);
    }
    realtime(bare)
}

/// `RTMIN`, `RTMIN+n`, `RTMAX`, `RTMAX-n`.
fn realtime(name: &str) -> Option<i32> {
    let (base, offset) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (SIGRTMIN, offset(rest, '+')?)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        (SIGRTMAX, -offset(rest, '-')?)
    } else {
        return None;
    };
    let number = base + offset;
    (SIGRTMIN..=SIGRTMAX).contains(&number).then_some(number)
}

fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Option<i32> {
        parse(&SignalSpec::Name(s.to_owned()))
    }

    #[test]
    fn numbers_names_and_realtime_offsets() {
        assert_eq!(parse(&SignalSpec::Number(15)), Some(15));
        assert_eq!(parse(&SignalSpec::Number(0)), None);
        assert_eq!(parse(&SignalSpec::Number(65)), None);
        assert_eq!(name("SIGTERM"), Some(15));
        assert_eq!(name("KILL"), Some(9));
        assert_eq!(name("9"), Some(9));
        assert_eq!(name("SIGRTMIN+4"), Some(38));
        assert_eq!(name("RTMAX-1"), Some(63));
        assert_eq!(name("RTMIN+31"), None);
        assert_eq!(name("SIGNOPE"), None);
        assert_eq!(name(""), None);
    }
}
