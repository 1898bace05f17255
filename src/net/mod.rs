//! The OS side, one file per job. Nothing here decides anything; the daemon calls it
//! to carry out the state machine's actions.

pub mod alias;
pub mod arp;
#[cfg(test)]
pub mod fake;
pub mod host;
pub mod interfaces;
pub mod link_watch;
pub mod ndisc;
pub mod netlink;
#[cfg(target_os = "linux")]
mod packet_socket;
pub mod ping;
pub mod tools;

use std::net::IpAddr;

use crate::vocabulary::NoInterface;

pub use host::{Host, Observation, SystemHost};
pub use interfaces::discover;
pub use tools::{MissingTool, Tool};

/// The operating systems floatip knows how to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
}

impl Os {
    /// The one place that picks the running OS; everything else takes an `Os` argument.
    pub fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::MacOs
        } else {
            Os::Linux
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot list interfaces: {0}")]
    Discover(nix::Error),
    #[error(transparent)]
    NoInterface(#[from] NoInterface),
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{vip} still {state} on {iface} after `{command}`")]
    NotApplied {
        vip: IpAddr,
        iface: String,
        state: &'static str,
        command: String,
    },
    #[error("{what} on {iface}: {error}")]
    Socket {
        what: &'static str,
        iface: String,
        error: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Missing(#[from] MissingTool),
    /// A teardown that went on past its failures.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<NetError>),
}
