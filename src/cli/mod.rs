//! The command line: one module per subcommand, each returning a `Result`; `main` maps
//! errors to exit codes.

mod check;
mod release;
mod run;
mod status;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use log::warn;

use crate::config::{self, Loaded};

#[derive(Debug, Parser)]
#[command(
    name = "floatip",
    version,
    about = "Keeps one floating IP address on exactly one healthy host of a LAN group"
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (logs to stderr)
    Run(ConfigArg),
    /// Validate the configuration and environment and print the resolved configuration
    Check(ConfigArg),
    /// Remove the floating IP from this host if it is there (idempotent; for ExecStopPost)
    Release(ConfigArg),
    /// Show the running daemon's state, holder, peers and counters
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the raw JSON snapshot
    #[arg(long)]
    pub json: bool,
    /// The daemon's status socket (default: status_socket from the config file)
    #[arg(long)]
    pub socket: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Path to gateway.yml; only its floating_ip section is read
    #[arg(short, long, default_value = config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
}

impl Cli {
    pub fn execute(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(a) => run::run(&a.config),
            Command::Check(a) => check::check(&a.config),
            Command::Release(a) => release::release(&a.config),
            Command::Status(a) => status::status(&a),
        }
    }
}

/// What an unknown key inside `floating_ip` does (a typo, or a key of a newer version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKeys {
    /// `floatip check`: the file is wrong until every key is known.
    Fail,
    /// The daemon: logged as a warning; the gateway's own file may carry newer keys.
    Warn,
}

/// Reads and resolves the configuration file.
pub fn load(path: &Path, unknown: UnknownKeys) -> anyhow::Result<Loaded> {
    let interfaces = crate::net::discover().context("cannot list network interfaces")?;
    let (loaded, unknown_keys) = config::load(path, &interfaces)?;
    if unknown == UnknownKeys::Fail && !unknown_keys.is_empty() {
        bail!("{}", unknown_keys.join("; "));
    }
    for line in unknown_keys {
        warn!("{line}");
    }
    Ok(loaded)
}
