//! Who may hold the floating address, behind one seam ([`Election`]) so that the state
//! machine, the address handling, ARP, tracking, hooks and status are shared. The LAN
//! protocol ([`Lan`]) decides among the group's nodes inside the state machine (see
//! [`crate::state`]); [`etcd`] lets a key under an etcd lease decide instead, so that a
//! partition never yields two holders.

pub mod etcd;

use std::time::Duration;

/// An election the daemon stands in. What it decides comes back as events; these are
/// the daemon's requests to it, and the deadline it must respect.
pub trait Election {
    /// `lan` or `etcd`, for the log and `floatip status`.
    fn kind(&self) -> &'static str;
    /// Stand for election now and whenever the seat is free.
    fn campaign(&self);
    /// How many live backups should stand before us when the seat becomes free (the LAN
    /// protocol orders them itself).
    fn rank(&self, _better: u32) {}
    /// Stop standing and give the seat up. Remove the address first.
    fn resign(&self);
    /// How long this node may still act as holder; `None`: not at all. The daemon checks
    /// it before acting as holder and wakes no later than it says, so a frozen process
    /// removes the address first on thaw.
    fn holds_for(&self) -> Option<Duration>;
}

/// The LAN protocol: the state machine's own detection and rank timers decide, so there
/// is nothing to ask for or give up, and no deadline beyond the machine's.
pub struct Lan;

impl Election for Lan {
    fn kind(&self) -> &'static str {
        "lan"
    }
    fn campaign(&self) {}
    fn resign(&self) {}
    fn holds_for(&self) -> Option<Duration> {
        Some(Duration::MAX)
    }
}
