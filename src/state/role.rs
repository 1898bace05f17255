//! What the machine knows in each role. Data that means something in one role only lives
//! inside it, so a MASTER with a fault, or a BACKUP with a GARP follow-up, cannot exist.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Timing;
use crate::vocabulary::{Loss, Mac, Peer, Role};

/// Why a FAULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Link,
    Conflict(Mac),
    Failed(String),
    /// The service checks fail (which and why).
    Unhealthy(String),
}

/// What a node not holding the address knows about the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Holder {
    #[default]
    Unknown,
    Alive {
        peer: Peer,
        last: Instant,
    },
    Lost {
        peer: Option<Peer>,
        loss: Loss,
        at: Instant,
    },
}

/// Why a take-over is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    Startup,
    Lost(Loss),
    Resigned,
    /// The holder resigned naming us (its node address).
    HandedOver(IpAddr),
    Retry,
    /// Service checks pass again and no holder is known.
    Recovered,
    /// The external election granted us the key.
    Elected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Takeover {
    pub at: Instant,
    pub scheduled: Instant,
    pub cause: Cause,
    /// Whether the delay already includes our rank among the backups.
    pub ranked: bool,
    /// The address probe is out; its outcome decides.
    pub probing: bool,
}

impl Takeover {
    /// A take-over whose delay already accounts for our rank.
    pub fn ranked(now: Instant, delay: Duration, cause: Cause) -> Takeover {
        Takeover {
            at: now + delay,
            scheduled: now,
            cause,
            ranked: true,
            probing: false,
        }
    }

    /// A take-over after a listening period; the rank delay is added when it ends, once
    /// the announces heard meanwhile tell who else is waiting.
    pub fn unranked(now: Instant, delay: Duration, cause: Cause) -> Takeover {
        Takeover {
            ranked: false,
            ..Takeover::ranked(now, delay, cause)
        }
    }
}

/// What a BACKUP or FAULT node follows and plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Watch {
    pub holder: Holder,
    pub takeover: Option<Takeover>,
}

/// Why a master probes its own address; it announces nothing until the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verification {
    /// The loop stalled: a backup may have taken over meanwhile.
    AfterStall,
    /// The address vanished from the interface: re-add it if nobody else has it.
    Restoring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Master {
    pub verification: Option<Verification>,
    /// The second gratuitous ARP burst after taking over.
    pub garp_followup: Option<Instant>,
    pub next_refresh: Option<Instant>,
    /// When we last asked a better master to confirm its claim (see [`Timing::confirm_claims`]).
    pub confirming: Option<Instant>,
    /// A master that may still hold the address and that we cannot hear.
    pub suspect: Option<Suspect>,
}

/// The holder we took over from because it fell silent: frozen, cut off or dead, it may
/// still hold the address. Until we hear from it (or give up), we tell it we hold now,
/// often, so two masters meet the moment the path between them is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Suspect {
    pub node: IpAddr,
    pub next: Instant,
    pub until: Instant,
}

impl Master {
    pub fn fresh(now: Instant, timing: &Timing) -> Master {
        Master {
            verification: None,
            garp_followup: Some(now + Timing::GARP_FOLLOWUP),
            next_refresh: timing.garp_refresh.map(|r| now + r),
            confirming: None,
            suspect: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RoleState {
    Backup {
        watch: Watch,
        /// Since when this backup outranks the holder and wants it to hand over.
        preempt_since: Option<Instant>,
    },
    Master(Master),
    Fault {
        fault: Fault,
        watch: Watch,
    },
}

impl RoleState {
    pub fn backup(watch: Watch) -> RoleState {
        RoleState::Backup {
            watch,
            preempt_since: None,
        }
    }

    pub fn fault(fault: Fault, watch: Watch) -> RoleState {
        RoleState::Fault { fault, watch }
    }

    pub fn role(&self) -> Role {
        match self {
            RoleState::Backup { .. } => Role::Backup,
            RoleState::Master(_) => Role::Master,
            RoleState::Fault { .. } => Role::Fault,
        }
    }

    pub fn watch(&self) -> Option<&Watch> {
        match self {
            RoleState::Backup { watch, .. } | RoleState::Fault { watch, .. } => Some(watch),
            RoleState::Master(_) => None,
        }
    }

    pub fn watch_mut(&mut self) -> Option<&mut Watch> {
        match self {
            RoleState::Backup { watch, .. } | RoleState::Fault { watch, .. } => Some(watch),
            RoleState::Master(_) => None,
        }
    }

    /// A MASTER not busy verifying its address: free to announce and decide.
    pub fn settled_master(&self) -> bool {
        matches!(self, RoleState::Master(m) if m.verification.is_none())
    }
}
