//! Signal names and numbers, read as systemd's `signal_from_string()` reads them: a number,
//! a name with or without `SIG`, or a real-time signal as `RTMIN+n` / `RTMAX-n`, counted from
//! glibc's `SIGRTMIN` (34: the C library keeps the kernel's 32 and 33 for itself), so that
//! `SIGRTMIN+4` means here what it means to systemd and to a container's init.

/// The highest signal number Linux accepts (`_NSIG - 1`).
pub const SIGNAL_MAX: i32 = 64;

/// Every standard signal by its name without `SIG`, as `signal_to_string()` spells them.
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

/// The lowest real-time signal number as glibc counts it (`SIGRTMIN`).
pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

/// Whether `number` is a signal Linux accepts (1…64).
pub fn is_valid(number: i32) -> bool {
    (1..=SIGNAL_MAX).contains(&number)
}

/// `number` if it is a valid signal.
pub fn from_number(number: i64) -> Option<i32> {
    i32::try_from(number).ok().filter(|&n| is_valid(n))
}

/// Parses `15`, `TERM`, `SIGTERM`, `RTMIN`, `SIGRTMIN+4` or `SIGRTMAX-1`; `None` for anything
/// that is not a valid signal.
pub fn parse(text: &str) -> Option<i32> {
    if let Ok(number) = text.parse::<i64>() {
        return from_number(number);
    }
    let name = text.strip_prefix("SIG").unwrap_or(text);
    if let Some(&(_, number)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Some(number);
    }
    realtime(name)
}

/// The name of `number` with its `SIG` prefix (`SIGTERM`, `SIGRTMIN+4`), if it is valid.
pub fn name(number: i32) -> Option<String> {
    if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == number) {
        return Some(format!("SIG{name}"));
    }
    let offset = number - rtmin();
    (offset >= 0 && number <= SIGNAL_MAX).then(|| match offset {
        0 => "SIGRTMIN".to_owned(),
        _ => format!("SIGRTMIN+{offset}"),
    })
}

/// `RTMIN`, `RTMIN+n`, `RTMAX`, `RTMAX-n`.
fn realtime(name: &str) -> Option<i32> {
    let number = if let Some(rest) = name.strip_prefix("RTMIN") {
        rtmin().checked_add(offset(rest, '+')?)?
    } else {
        SIGNAL_MAX.checked_sub(offset(name.strip_prefix("RTMAX")?, '-')?)?
    };
    (rtmin()..=SIGNAL_MAX).contains(&number).then_some(number)
}

fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(sign)?;
    // `RTMIN++4` or `RTMIN+-4` are not offsets.
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_names_and_realtime_offsets_parse() {
        assert_eq!(parse("15"), Some(15));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("TERM"), Some(15));
        assert_eq!(parse("SIGINT"), Some(2));
        assert_eq!(parse("SIGSYS"), Some(libc::SIGSYS));
        assert_eq!(parse("STKFLT"), Some(libc::SIGSTKFLT));
        assert_eq!(rtmin(), 34, "glibc keeps 32 and 33");
        assert_eq!(parse("SIGRTMIN+4"), Some(38));
        assert_eq!(parse("RTMIN"), Some(34));
        assert_eq!(parse("SIGRTMAX-1"), Some(63));
        assert_eq!(parse("RTMAX"), Some(64));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "0",
            "-1",
            "65",
            "99999999999",
            "NOPE",
            "SIG",
            "",
            "RTMIN+31",
            "RTMIN-1",
            "RTMIN++1",
            "RTMIN+-1",
            "SIGRTMAX+1",
            "RTMAX-31",
            "term",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(from_number(0), None);
        assert_eq!(from_number(i64::from(i32::MAX) + 1), None);
    }

    #[test]
    fn names_round_trip() {
        for number in 1..=SIGNAL_MAX {
            if number == 32 || number == 33 {
                assert_eq!(name(number), None);
                continue;
            }
            let name = name(number).unwrap();
            assert_eq!(parse(&name), Some(number), "{name}");
        }
    }
}
