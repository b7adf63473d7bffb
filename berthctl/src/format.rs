//! Output for people and for scripts: tables with a legend (left out with `--no-legend`),
//! bold headers and a pager only on a terminal, addresses and timestamps spelled out.

use std::io::{self, IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Stdio};

use berth_interfaces::machine::Address;

use crate::cli::Output;

/// The text `each` makes of every name, one after the other with a blank line between (the
/// `status` verbs).
///
/// # Errors
/// The first error of `each`.
pub fn blocks<E>(
    names: &[String],
    mut each: impl FnMut(&str) -> Result<String, E>,
) -> Result<String, E> {
    let texts = names
        .iter()
        .map(|name| each(name))
        .collect::<Result<Vec<_>, E>>()?;
    Ok(texts.join("\n"))
}

/// A table: a header and rows of cells, printed in columns as wide as their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text: header (bold on a terminal) unless `legend` is false, then the rows.
    pub fn render(&self, legend: bool, bold: bool) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|column| {
                let cells = self.rows.iter().filter_map(|row| row.get(column));
                let header = legend.then(|| &self.header[column]);
                cells
                    .chain(header)
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        if legend {
            let line = line(&self.header, &widths);
            if bold {
                text.push_str(&format!("\x1b[1m{line}\x1b[0m\n"));
            } else {
                text.push_str(&line);
                text.push('\n');
            }
        }
        for row in &self.rows {
            text.push_str(&line(row, &widths));
            text.push('\n');
        }
        text
    }
}

fn line(cells: &[String], widths: &[usize]) -> String {
    let last = cells.len().saturating_sub(1);
    let padded: Vec<String> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| match i {
            i if i == last => cell.clone(),
            i => format!("{cell:<width$}", width = widths[i]),
        })
        .collect();
    padded.join(" ").trim_end().to_owned()
}

/// An address as text (`198.51.100.7`, `fe80::1%3` with its interface for link-local ones).
pub fn address(address: &Address) -> String {
    let ip = match (address.family, address.address.as_slice()) {
        (libc::AF_INET, &[a, b, c, d]) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        (libc::AF_INET6, bytes) if bytes.len() == 16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return format!("(family {})", address.family),
    };
    match (ip, address.ifindex) {
        (IpAddr::V6(v6), Some(index)) if v6.is_unicast_link_local() => format!("{v6}%{index}"),
        (ip, _) => ip.to_string(),
    }
}

/// A CLOCK_REALTIME timestamp in µs as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn timestamp(micros: u64) -> String {
    let seconds = micros / 1_000_000;
    let (days, in_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// How long ago `micros` (CLOCK_REALTIME, µs) was, roughly (`3min 2s ago`).
pub fn ago(micros: u64, now_micros: u64) -> String {
    let seconds = now_micros.saturating_sub(micros) / 1_000_000;
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    let parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")];
    let spelled: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    match spelled.is_empty() {
        true => "just now".to_owned(),
        false => format!("{} ago", spelled.join(" ")),
    }
}

/// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Where output goes: standard output, through a pager when it is a terminal (unless
/// `--no-pager`; `$SYSTEMD_PAGER`/`$PAGER`, else `less -FRSXMK`, as systemd does).
#[derive(Debug)]
pub struct Sink {
    pager: Option<Child>,
    terminal: bool,
}

impl Sink {
    /// Opens the output for `options`; `page` says whether this verb's output may be paged.
    pub fn open(options: &Output, page: bool) -> Self {
        let terminal = io::stdout().is_terminal();
        let pager = (page && terminal && !options.no_pager)
            .then(spawn_pager)
            .flatten();
        Self { pager, terminal }
    }

    /// Whether the output is a terminal (then tables have bold headers).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Writes `text`.
    ///
    /// # Errors
    /// Writing failed (a closed pipe is not an error: the reader had enough).
    pub fn write(&mut self, text: &str) -> io::Result<()> {
        let written = match self.pager.as_mut().and_then(|p| p.stdin.as_mut()) {
            Some(pager) => pager.write_all(text.as_bytes()),
            None => io::stdout().write_all(text.as_bytes()),
        };
        match written {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(mut pager) = self.pager.take() {
            drop(pager.stdin.take());
            let _ = pager.wait();
        }
    }
}

fn spawn_pager() -> Option<Child> {
    let configured = std::env::var("SYSTEMD_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .ok();
    if configured
        .as_deref()
        .is_some_and(|p| p.is_empty() || p == "cat")
    {
        return None;
    }
    let command = configured.unwrap_or_else(|| "less".to_owned());
    let mut words = command.split_whitespace();
    let program = words.next()?;
    Command::new(program)
        .args(words)
        .env(
            "LESS",
            std::env::var("LESS").unwrap_or_else(|_| "FRSXMK".into()),
        )
        .stdin(Stdio::piped())
        .spawn()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_and_drop_their_legend_on_request() {
        let mut table = Table::new(&["MACHINE", "CLASS"]);
        table.row(vec!["a-long-name".into(), "container".into()]);
        table.row(vec!["b".into(), "vm".into()]);
        assert_eq!(
            table.render(true, false),
            "MACHINE     CLASS\na-long-name container\nb           vm\n"
        );
        assert_eq!(
            table.render(false, false),
            "a-long-name container\nb           vm\n"
        );
    }

    #[test]
    fn addresses_and_times_are_spelled_out() {
        let v4 = Address {
            ifindex: None,
            family: libc::AF_INET,
            address: vec![198, 51, 100, 7],
        };
        assert_eq!(address(&v4), "198.51.100.7");
        let mut link_local = vec![0xfe, 0x80];
        link_local.extend([0; 13]);
        link_local.push(1);
        let v6 = Address {
            ifindex: Some(3),
            family: libc::AF_INET6,
            address: link_local,
        };
        assert_eq!(address(&v6), "fe80::1%3");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(1_796_342_400_000_000), "2026-12-04 00:00:00 UTC");
        assert_eq!(ago(0, 62_000_000), "1min 2s ago");
        assert_eq!(ago(5, 5), "just now");
    }
}
