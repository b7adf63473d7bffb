//! `berth-xtask docs DIR`: writes the man pages and shell completions of Berth's programs below
//! `DIR`, for `scripts/install`:
//!
//! * `DIR/man/man8/berth-machine-registry.8`, `DIR/man/man8/berth-userdb-bridge.8`,
//!   `DIR/man/man1/supervise.1`, `DIR/man/man1/berthctl.1`;
//! * `DIR/completions/{bash,zsh,fish}/` with each program's completion in the file name its
//!   shell looks for (`NAME`, `_NAME`, `NAME.fish`).
//!
//! The services' pages and completions come from their clap commands (`clap_mangen`,
//! `clap_complete`); `supervise` parses its own command line (no clap: it stays small), so its
//! command is read from its help text ([`supervise`]).
#![forbid(unsafe_code)]

mod supervise;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// The registry's man page beyond its options.
const REGISTRY_ABOUT: &str = "\
The machine registry: serves io.systemd.Machine (wire-compatible with systemd-machined), \
io.berth.Registry and io.systemd.service on /run/systemd/machine/io.systemd.Machine, and \
io.systemd.Resolve.Hook on /run/systemd/resolve.hook/io.systemd.Machine; keeps machined's \
state files in /run/systemd/machines/ and the NSS module's host table in \
/run/systemd/machine/berth-hosts/. Normally started by systemd through \
berth-machine-registry.socket (LISTEN_FDNAMES=varlink, resolve-hook); with --user, the \
calling user's registry below $XDG_RUNTIME_DIR/systemd/. Logs to the journal with a field \
of its own per value (MACHINE=, LEADER=, UID=, ERROR=, ...) when standard error is the \
journal, else to standard error; RUST_LOG sets the level.";

/// berthctl's man page beyond its options.
const BERTHCTL_ABOUT: &str = "\
Inspects and controls the machines registered with Berth's machine registry, the way \
machinectl does for systemd-machined, speaking only Varlink to \
/run/systemd/machine/io.systemd.Machine (--user: $XDG_RUNTIME_DIR/systemd/machine/; \
--runtime-dir DIR: DIR/systemd/machine/). Tables get a header and a pager only on a \
terminal. Exit status: 0 on success, 1 when the registry or a machine refused or failed, 2 \
for a wrong command line, 3 when the registry cannot be reached, 4 when a machine is not \
known.";

/// The bridge's man page beyond its options.
const BRIDGE_ABOUT: &str = "\
The userdb bridge: serves io.systemd.UserDatabase (service io.systemd.Machine) on \
/run/systemd/userdb/io.systemd.Machine with the users and groups of user-namespaced \
containers (vu-NAME-UID, vg-NAME-GID), followed from the machine registry's \
io.berth.Registry.Watch stream. Normally started by systemd through berth-userdb-bridge.socket \
(LISTEN_FDNAMES=userdb). Logs as berth-machine-registry(8) does.";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, dir] if command == "docs" => docs(Path::new(dir)),
        _ => bail!("usage: berth-xtask docs DIR"),
    }
}

/// The programs: their clap command and man section.
fn programs() -> anyhow::Result<Vec<(Command, &'static str)>> {
    let registry = berth_machine_registry::config::Args::command().long_about(REGISTRY_ABOUT);
    let bridge = berth_userdb_bridge::config::Args::command().long_about(BRIDGE_ABOUT);
    Ok(vec![
        (registry, "8"),
        (bridge, "8"),
        (supervise::command(berth_supervisor::cli::USAGE)?, "1"),
        (
            berthctl::cli::Cli::command().long_about(BERTHCTL_ABOUT),
            "1",
        ),
    ])
}

fn docs(dir: &Path) -> anyhow::Result<()> {
    for (command, section) in programs()? {
        let name = command.get_name().to_owned();
        let pages = dir.join("man").join(format!("man{section}"));
        std::fs::create_dir_all(&pages)?;
        let mut page = Vec::new();
        clap_mangen::Man::new(command.clone())
            .section(section)
            .manual("Berth")
            .source(format!("Berth {}", env!("CARGO_PKG_VERSION")))
            .render(&mut page)?;
        write(&pages.join(format!("{name}.{section}")), &page)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), &name, &mut script);
            let to = dir.join("completions").join(shell.to_string());
            std::fs::create_dir_all(&to)?;
            write(&to.join(completion_file(shell, &name)), &script)?;
        }
    }
    Ok(())
}

/// The file name each shell looks a command's completion up by.
fn completion_file(shell: Shell, name: &str) -> PathBuf {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    }
    .into()
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("Cannot write {}", path.display()))
}
