//! `berthctl`: see the crate documentation.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = berthctl::cli::Cli::parse();
    match berthctl::run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("berthctl: {}", berthctl::error::chain(&error));
            ExitCode::from(error.exit_code())
        }
    }
}
