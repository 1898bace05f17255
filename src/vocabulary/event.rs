use std::net::IpAddr;

use super::{Health, Mac, Peer};

/// How the holder was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// No echo for the detection time: the holder is dead, frozen or cut off.
    Silence,
    /// The connection was reset, refused or closed: the holder's daemon is gone.
    Closed,
}

/// Whether anyone answers for the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    Free,
    InUse(Mac),
}

/// A key held under a lease in an external election (etcd): the lease and the key's
/// revision at take-over, which grows with every take-over (a fencing token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub revision: i64,
}

/// What the state machine is told: by the threads, by the daemon's timers and signals,
/// and as the outcome of its own actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A timer fired; the machine checks its deadlines.
    Tick,
    /// The prober got an answer from whoever holds the address.
    Echo(Peer),
    /// The prober's connection to the address failed.
    HolderLost(Loss),
    /// A node's periodic broadcast.
    Announce(Peer),
    /// A master removed the address and says so.
    Resign {
        from: Peer,
        successor: Option<IpAddr>,
    },
    /// Some node removed a stale copy of the address (`floatip release`, start-up clean-up).
    Released(IpAddr),
    /// Outcome of [`super::Action::ProbeAddress`].
    Probe(ProbeOutcome),
    /// A node asked by [`super::Action::ConfirmMaster`] answered a heartbeat, saying this.
    MasterConfirmed(Peer),
    /// What the interface looks like now (polled by the daemon).
    Observed {
        link_up: bool,
        address_present: bool,
    },
    /// An action could not be carried out (e.g. `ifconfig` failed).
    ActionFailed(String),
    /// The service checks' verdict or penalty changed.
    Health(Health),
    /// `floatip handover`: a master hands the address to `to`, or to the best backup.
    HandOver { to: Option<IpAddr> },
    /// The external election made this node the holder.
    Elected(Lease),
    /// The external election no longer names this node (or may not: a deadline passed).
    ElectionLost { reason: String },
    /// SIGTERM / SIGINT.
    Shutdown,
}
