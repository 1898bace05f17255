//! Every duration the machine derives from the configured interval and timeout.

use std::time::Duration;

use crate::vocabulary::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Heartbeat and announce period.
    pub interval: Duration,
    /// Detection time: holder silence that starts a take-over.
    pub timeout: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub garp_refresh: Option<Duration>,
    /// Without a key anyone can forge an announce: a master steps down for a better one
    /// only after that node itself answered a heartbeat as a master.
    pub confirm_claims: bool,
}

impl Timing {
    /// The second gratuitous ARP burst after a take-over, for hosts that missed the first.
    pub const GARP_FOLLOWUP: Duration = Duration::from_secs(1);

    /// After `floatip handover` a node does not take the address back from a live holder
    /// (by preemption) for this long; it still takes over if nobody holds it.
    pub const HANDOVER_HOLD_OFF: Duration = Duration::from_secs(300);

    /// A node that does not hold the address speaks when what it says changes, when it
    /// hears a member it did not know, and otherwise this rarely, so members that came
    /// later (or forgot it) still learn it; the holder's announce serves as the heartbeat.
    pub const MEMBER_REFRESH: Duration = Duration::from_secs(30);

    /// Holder silence after which a backup asks the holder directly, over its open
    /// connection, whether it is alive: half the detection time.
    pub fn ask_after(&self) -> Duration {
        self.timeout / 2
    }

    /// How often a node in `role` announces itself when nothing changes.
    pub fn announce_period(&self, role: Role) -> Duration {
        match role {
            Role::Master => self.interval,
            Role::Backup | Role::Fault => Self::MEMBER_REFRESH.max(self.interval),
        }
    }

    /// How long a member not holding the address is remembered without news: two
    /// refreshes may be lost.
    pub fn member_ttl(&self) -> Duration {
        Self::MEMBER_REFRESH.max(self.interval) * 2 + self.timeout
    }

    /// How long a peer in `role` is remembered: a master announces every interval.
    pub fn memory(&self, role: Role) -> Duration {
        match role {
            Role::Master => self.timeout,
            Role::Backup | Role::Fault => self.member_ttl(),
        }
    }

    /// How often a master tells a holder it took over from silently that it holds now,
    /// and for how long at most (a dead holder never answers).
    pub const SUSPECT_PROBE: Duration = Duration::from_millis(20);
    pub const SUSPECT_FOR: Duration = Duration::from_secs(300);

    /// Whether a suspected second master needs probes of its own: the periodic announce
    /// already reaches it as often at short intervals.
    pub fn probes_suspects(&self) -> bool {
        Self::SUSPECT_PROBE < self.interval
    }

    /// Long enough to hear every live node's announce once before acting.
    pub fn startup_wait(&self) -> Duration {
        self.interval * 3 / 2
    }

    /// Backups that rank lower wait longer, so only the best one moves (VRRP's skew).
    /// One and a half intervals per rank covers the phase difference of their detections.
    pub fn rank_delay(&self, rank: u32) -> Duration {
        self.interval * 3 / 2 * rank
    }

    pub fn conflict_retry(&self) -> Duration {
        self.interval
    }

    /// A gap between two events this long means the process was frozen: by then a
    /// backup may have taken over, so the view is stale. Normal gaps never exceed one interval.
    pub fn stall_threshold(&self) -> Duration {
        self.timeout
            .saturating_sub(self.interval)
            .max(self.interval * 2)
    }
}
