//! The command line: one module per subcommand, each returning a `Result`; `main` maps
//! errors to exit codes ([`exit_code`]).

mod check;
mod handover;
mod release;
mod run;
mod status;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use log::warn;

use crate::config::{self, ConfigError, Loaded};
use crate::daemon::DaemonError;
use crate::environment::EnvError;

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
    /// Hand the floating IP over to a backup now; the daemon keeps running as BACKUP
    Handover(HandoverArgs),
}

#[derive(Debug, clap::Args)]
pub struct HandoverArgs {
    /// The backup to hand to (its node address); default: the best live backup
    #[arg(long, value_name = "NODE")]
    pub to: Option<std::net::IpAddr>,
    /// The daemon's status socket (default: status_socket from the config file)
    #[arg(long)]
    pub socket: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArg,
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
            Command::Handover(a) => handover::handover(&a),
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
        return Err(ConfigError::UnknownKeys(unknown_keys).into());
    }
    for line in unknown_keys {
        warn!("{line}");
    }
    Ok(loaded)
}

/// sysexits(3): a bad configuration file; systemd does not restart on it
/// (`RestartPreventExitStatus=78`), since the next start would fail the same way.
pub const EX_CONFIG: u8 = 78;
/// sysexits(3): not allowed (floatip must run as root).
pub const EX_NOPERM: u8 = 77;
/// sysexits(3): something the host must provide is missing (a program, the interface).
pub const EX_UNAVAILABLE: u8 = 69;
/// Anything that went wrong at run time.
pub const EX_FAILURE: u8 = 1;

/// The exit code for an error, by the first cause in its chain that says what kind it is.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<ConfigError>() || matches!(cause.downcast_ref(), Some(DaemonError::Config(_)))
        {
            return EX_CONFIG;
        }
        match cause.downcast_ref::<EnvError>() {
            Some(EnvError::NotRoot) => return EX_NOPERM,
            Some(_) => return EX_UNAVAILABLE,
            None => {}
        }
    }
    EX_FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_tell_config_permission_and_environment_apart() {
        let config = ConfigError::UnknownKeys(vec!["x: unknown key floating_ip.y".into()]);
        let wrapped = anyhow::Error::from(config).context("loading");
        assert_eq!(exit_code(&wrapped), EX_CONFIG);
        let reload = DaemonError::Config(ConfigError::UnknownKeys(vec![]));
        assert_eq!(exit_code(&reload.into()), EX_CONFIG);
        assert_eq!(exit_code(&EnvError::NotRoot.into()), EX_NOPERM);
        let down = EnvError::InterfaceDown("eth0".into());
        assert_eq!(exit_code(&down.into()), EX_UNAVAILABLE);
        assert_eq!(exit_code(&anyhow::anyhow!("socket closed")), EX_FAILURE);
    }
}
