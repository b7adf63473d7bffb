//! `supervise`'s clap command, read from its help text: the paragraph after the usage line
//! is the description, each line under `Options:` an option (`--name NAME   What it is`; a value
//! spelled `a|b` lists the values it takes; `PATH`, `DIR` and `SIG` hint at what to
//! complete), and `-- PROGRAM [ARGS...]` the payload's command line.

use anyhow::{Context, bail};
use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, Command, ValueHint};

/// The command `usage` (`berth_supervisor::cli::USAGE`) describes.
///
/// # Errors
/// The text has no description or no options, or an option line cannot be read.
pub fn command(usage: &str) -> anyhow::Result<Command> {
    let mut paragraphs = usage.split("\n\n");
    let synopsis = paragraphs.next().context("no usage line")?;
    let about = paragraphs
        .next()
        .context("no description")?
        .replace('\n', " ");
    let options = paragraphs
        .next()
        .and_then(|p| p.strip_prefix("Options:\n"))
        .context("no options")?;
    let mut command = Command::new("supervise")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Spawns, guards and controls one machine's payload")
        .long_about(about)
        .override_usage(synopsis.trim_start_matches("Usage: ").to_owned())
        .arg(
            Arg::new("program")
                .value_name("PROGRAM")
                .help("The payload and its arguments")
                .num_args(1..)
                .last(true)
                .required(true)
                .value_hint(ValueHint::CommandWithArguments),
        );
    for line in options.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(option) = option(line)? {
            command = command.arg(option);
        }
    }
    Ok(command)
}

/// The option of one line, `None` for `--help, --version` (clap has its own).
fn option(line: &str) -> anyhow::Result<Option<Arg>> {
    let line = line.trim();
    if line.starts_with("--help") {
        return Ok(None);
    }
    let Some((spec, help)) = line.split_once("  ") else {
        bail!("no description on {line:?}");
    };
    let mut words = spec.split_whitespace();
    let long = words
        .next()
        .and_then(|w| w.strip_prefix("--"))
        .with_context(|| format!("not an option: {line:?}"))?;
    let arg = Arg::new(long.to_owned())
        .long(long.to_owned())
        .help(help.trim().to_owned());
    Ok(Some(match words.next() {
        None => arg.action(ArgAction::SetTrue),
        Some(value) if value.contains('|') => {
            arg.value_name("VALUE")
                .value_parser(PossibleValuesParser::new(
                    value.split('|').map(str::to_owned),
                ))
        }
        Some(value) => arg.value_name(value.to_owned()).value_hint(match value {
            "PATH" => ValueHint::FilePath,
            "DIR" => ValueHint::DirPath,
            _ => ValueHint::Other,
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_of_the_help_text_is_read() {
        let command = command(berth_supervisor::cli::USAGE).unwrap();
        let longs: Vec<&str> = command.get_arguments().filter_map(Arg::get_long).collect();
        for option in ["name", "class", "registry", "user", "tie-to-stdin", "grace"] {
            assert!(longs.contains(&option), "{option} in {longs:?}");
        }
        let class = command
            .get_arguments()
            .find(|a| a.get_long() == Some("class"));
        let values = class.unwrap().get_possible_values();
        assert_eq!(values.len(), 2);
        let about = command.get_long_about().unwrap().to_string();
        assert!(about.starts_with("Starts PROGRAM"), "{about}");
        command.debug_assert();
    }
}
