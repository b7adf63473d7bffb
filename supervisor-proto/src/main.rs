//! `supervise [OPTIONS] -- PROGRAM [ARGS…]`: see `supervise --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use berth_supervisor::cli::{self, Command};

/// Our own failures (not the payload's): as `env`, `timeout` and container runtimes do.
const FAILED: u8 = 125;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("supervise: {e}\nTry 'supervise --help'.");
            return ExitCode::from(FAILED);
        }
    };
    match command {
        Command::Help => print!("{}", cli::USAGE),
        Command::Version => println!("supervise {}", env!("CARGO_PKG_VERSION")),
        Command::Run(config) => {
            return match berth_supervisor::run(*config) {
                Ok(status) => ExitCode::from(status),
                Err(e) => {
                    berth_supervisor::log::error(&berth_service_runtime::error_chain(&e));
                    ExitCode::from(FAILED)
                }
            };
        }
    }
    ExitCode::SUCCESS
}
