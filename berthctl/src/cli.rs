//! The command line.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Inspect and control the machines registered with Berth.
#[derive(Debug, Parser)]
#[command(name = "berthctl", version, about, long_about = None)]
pub struct Cli {
    /// Where to find the services.
    #[command(flatten)]
    pub scope: Scope,
    /// How to print.
    #[command(flatten)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub verb: Verb,
}

/// Which registry: the system's, the user's, or one below a runtime directory.
#[derive(Debug, Clone, Args)]
pub struct Scope {
    /// Talk to the calling user's registry (below $XDG_RUNTIME_DIR).
    #[arg(long, global = true)]
    pub user: bool,
    /// Talk to the registry started with this --runtime-dir.
    #[arg(long, global = true, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
}

/// Output options.
#[derive(Debug, Clone, Args)]
pub struct Output {
    /// Do not print the header and footer of tables.
    #[arg(long, global = true)]
    pub no_legend: bool,
    /// Do not pipe the output into a pager.
    #[arg(long, global = true)]
    pub no_pager: bool,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// List the registered machines.
    List {
        /// Also show the host itself (`.host`).
        #[arg(long, short)]
        all: bool,
        /// One JSON object per machine, as `varlinkctl call --more` prints them.
        #[arg(long)]
        json: bool,
    },
    /// Show a machine in detail, its processes, and what its cgroup uses.
    Status {
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a machine's properties as KEY=VALUE lines.
    Show {
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Terminate machines (through their controller if they have one, else by signals).
    Terminate {
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Send a signal to processes of machines.
    Kill {
        /// Which processes: leader, supervisor or all.
        #[arg(long, value_enum, default_value_t = KillWhom::All)]
        kill_whom: KillWhom,
        /// The signal, by name or number.
        #[arg(long, short, default_value = "SIGTERM")]
        signal: String,
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Ask machines to power off (through their controller).
    Poweroff {
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Ask machines to reboot (through their controller).
    Reboot {
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Freeze machines (through their controller).
    Pause {
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Thaw frozen machines (through their controller).
    Resume {
        /// The machines.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Open an interactive shell in a machine (or on `.host`): its login shell, or PATH with
    /// ARGUMENTS, as root or another user of the machine.
    Shell {
        /// The user inside the machine (also given as USER@NAME).
        #[arg(long, value_name = "USER")]
        uid: Option<String>,
        /// Set an environment variable for the shell (VAR=VALUE; repeatable).
        #[arg(long = "setenv", short = 'E', value_name = "VAR=VALUE")]
        environment: Vec<String>,
        /// The machine, as NAME or USER@NAME.
        name: String,
        /// The program (an absolute path in the machine) and its arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PATH"
        )]
        command: Vec<String>,
    },
    /// Get a login prompt of a machine.
    Login {
        /// The machine.
        name: String,
    },
    /// Copy a file or directory from the host into a machine.
    CopyTo {
        /// Replace the destination if it exists.
        #[arg(long)]
        force: bool,
        /// The machine.
        name: String,
        /// The host path.
        source: PathBuf,
        /// The absolute path in the machine (default: SOURCE's absolute path).
        destination: Option<String>,
    },
    /// Copy a file or directory from a machine to the host.
    CopyFrom {
        /// Replace the destination if it exists.
        #[arg(long)]
        force: bool,
        /// The machine.
        name: String,
        /// The absolute path in the machine.
        source: String,
        /// The host path (default: the same path as SOURCE).
        destination: Option<PathBuf>,
    },
    /// Bind-mount a host file or directory into a running container.
    Bind {
        /// Mount it read-only.
        #[arg(long)]
        read_only: bool,
        /// Make the mount point if it is missing.
        #[arg(long)]
        mkdir: bool,
        /// The machine.
        name: String,
        /// The host path.
        source: PathBuf,
        /// The absolute path in the machine (default: SOURCE's absolute path).
        destination: Option<String>,
    },
    /// List the images of the pool.
    ListImages {
        /// Also show hidden images (names starting with '.').
        #[arg(long, short)]
        all: bool,
    },
    /// Show an image in detail, with its OS and hostname.
    ImageStatus {
        /// The images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Copy an image under a new name (reflinks where the file system can).
    Clone {
        /// Make the copy read-only.
        #[arg(long)]
        read_only: bool,
        /// The image.
        name: String,
        /// The copy's name.
        new_name: String,
    },
    /// Rename an image (and its .nspawn/.vmspawn settings files).
    Rename {
        /// The image.
        name: String,
        /// Its new name.
        new_name: String,
    },
    /// Mark an image read-only (or, with "false", writable).
    ReadOnly {
        /// The image.
        name: String,
        /// Read-only or not.
        #[arg(default_value_t = true, action = clap::ArgAction::Set)]
        read_only: bool,
    },
    /// Remove images.
    Remove {
        /// The images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set the size limit of the pool, or of one image.
    SetLimit {
        /// The image (none: the whole pool), then the limit in bytes.
        #[arg(num_args = 1..=2, required = true, value_name = "[NAME] BYTES")]
        args: Vec<String>,
    },
    /// Remove hidden images (with --all: every image no machine uses).
    Clean {
        /// Every unused image, not only hidden ones.
        #[arg(long)]
        all: bool,
    },
    /// Follow machines coming, changing and going, live.
    Watch,
    /// Run PROGRAM as the payload of a new machine, under `supervise`, registered.
    Spawn {
        /// The machine's name.
        name: String,
        /// The program and its arguments.
        #[arg(last = true, required = true, value_name = "PROGRAM")]
        program: Vec<OsString>,
    },
}

/// Whom `kill` signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KillWhom {
    /// The machine's leader.
    Leader,
    /// The machine's supervisor.
    Supervisor,
    /// Every process of the machine.
    All,
}
