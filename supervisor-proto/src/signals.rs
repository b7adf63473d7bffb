//! Signal names as the command line takes them, and the signals `supervise` handles itself.

use berth_service_runtime::sys;
use rustix::process::Signal;

/// Signals that end the machine (as `Terminate` does) when sent to `supervise`.
pub const TERMINATING: [Signal; 4] = [Signal::TERM, Signal::INT, Signal::HUP, Signal::QUIT];

/// The signals `supervise` reads from its signalfd: the terminating ones and `SIGCHLD`.
pub fn handled() -> Vec<i32> {
    TERMINATING
        .iter()
        .chain([&Signal::CHILD])
        .map(|s| s.as_raw())
        .collect()
}

const NAMES: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("WINCH", Signal::WINCH),
    ("PWR", Signal::POWER),
];

/// Parses `15`, `TERM`, `SIGTERM`, `RTMIN+4`, `SIGRTMIN+4` or `SIGRTMAX-1`
/// (`RTMIN` counted as glibc and systemd count it).
pub fn parse(text: &str) -> Option<i32> {
    if let Ok(number) = text.parse::<i32>() {
        return (1..=sys::SIGNAL_MAX).contains(&number).then_some(number);
    }
    let name = text.strip_prefix("SIG").unwrap_or(text);
    if let Some((_, signal)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Some(signal.as_raw());
    }
    let realtime = if let Some(rest) = name.strip_prefix("RTMIN") {
        sys::signal_rtmin().checked_add(offset(rest, '+')?)
    } else {
        sys::SIGNAL_MAX.checked_sub(offset(name.strip_prefix("RTMAX")?, '-')?)
    }?;
    (sys::signal_rtmin()..=sys::SIGNAL_MAX)
        .contains(&realtime)
        .then_some(realtime)
}

fn offset(rest: &str, sign: char) -> Option<i32> {
    match rest.strip_prefix(sign) {
        _ if rest.is_empty() => Some(0),
        Some(number) => number.parse().ok(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_realtime_offsets_parse() {
        assert_eq!(parse("15"), Some(15));
        assert_eq!(parse("TERM"), Some(15));
        assert_eq!(parse("SIGINT"), Some(2));
        let rtmin = sys::signal_rtmin();
        assert_eq!(parse("SIGRTMIN+4"), Some(rtmin + 4));
        assert_eq!(parse("RTMIN"), Some(rtmin));
        assert_eq!(parse("SIGRTMAX-1"), Some(63));
        for bad in ["0", "65", "NOPE", "RTMIN+40", "RTMIN-1", "SIGRTMAX+1", ""] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
