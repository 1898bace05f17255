//! The BACKUP / MASTER / FAULT machine: a pure function of (state, event, now).
//!
//! [`Machine::handle`] takes an [`Event`] and the current monotonic time and returns the
//! [`Action`]s to perform. It never reads a clock, touches a socket or runs a command;
//! the daemon executes the actions and feeds their outcomes back as events.
//!
//! The rules, in one place:
//! - A BACKUP follows the holder through echoes and master announces. Silence for the
//!   detection time, or the holder's connection closing, or its resignation, schedules a
//!   take-over, delayed by the node's rank among live backups so only the best one moves.
//! - A resignation counts only from the holder followed (same node and boot, still alive).
//! - Before adding the address the node probes it (ARP), briefly after a hand-over. Free: take over. In use by the
//!   silent holder we followed: it is frozen or partitioned; take over anyway, it steps
//!   down when it wakes. In use by anything else: a conflict; FAULT and retry.
//! - Two masters that meet keep the better one: higher priority, then higher node address.
//! - Preemption happens only for a strictly higher priority and only if configured; the
//!   master hands over (resigns to the preempting node), it is never pulled away.
//! - A loop that stalled longer than the stall threshold (a frozen process) distrusts its
//!   view: a master re-probes its address before announcing anything and steps down if
//!   another host answers for it.
//! - Service checks ([`Event::Health`], rules in [`health`]): a node whose checks fail is
//!   FAULT and never takes over; a failing MASTER hands over to a healthy backup if one
//!   announces, else keeps the address. Failing weighted checks lower the priority used
//!   in announces, ranks, preemption and two-master decisions.

mod health;
#[cfg(test)]
mod tests;
mod timing;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::vocabulary::{
    fmt_mac, Action, BootId, Event, Health, Loss, Mac, Peer, Priority, ProbeOutcome, Role, Verdict,
};
pub use timing::Timing;

/// This node's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Me {
    pub node: Ipv4Addr,
    pub boot: BootId,
    pub priority: Priority,
}

/// Why a FAULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Link,
    Conflict(Mac),
    Failed(String),
    /// The service checks fail (which and why).
    Unhealthy(String),
}

/// What a BACKUP knows about the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Startup,
    Lost(Loss),
    Resigned,
    /// The holder resigned naming us (its node address).
    HandedOver(Ipv4Addr),
    Retry,
    /// Service checks pass again and no holder is known.
    Recovered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Takeover {
    at: Instant,
    scheduled: Instant,
    cause: Cause,
    /// Whether the delay already includes our rank among the backups.
    ranked: bool,
    probing: bool,
}

/// A peer and when it was last heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub peer: Peer,
    pub at: Instant,
}

/// What the machine counts, for `floatip status` (there, beside the heartbeat threads' counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub takeovers: u64,
    pub conflicts: u64,
    #[serde(rename = "heartbeats_lost")]
    pub holder_losses: u64,
}

#[derive(Debug, Clone)]
pub struct Machine {
    me: Me,
    timing: Timing,
    role: Role,
    since: Instant,
    reason: String,
    fault: Option<Fault>,
    holder: Holder,
    peers: BTreeMap<Ipv4Addr, Seen>,
    takeover: Option<Takeover>,
    verifying: bool,
    /// The master's address vanished: re-add it if the probe (under `verifying`) finds it free.
    restoring: bool,
    last_event: Instant,
    next_announce: Instant,
    garp_followup: Option<Instant>,
    next_refresh: Option<Instant>,
    preempt_since: Option<Instant>,
    stopped: bool,
    counters: Counters,
    /// The last resignation heard (sender's boot id, when): resignations are sent twice.
    last_resign: Option<(BootId, Instant)>,
    /// When we last asked a better master to confirm its claim (see [`Timing::confirm_claims`]).
    confirming: Option<Instant>,
    health: Health,
}

impl Machine {
    /// A node starts as BACKUP and listens for one start-up wait before it may take over.
    pub fn new(me: Me, timing: Timing, now: Instant) -> (Machine, Vec<Action>) {
        let m = Machine {
            me,
            timing,
            role: Role::Backup,
            since: now,
            reason: "starting".into(),
            fault: None,
            holder: Holder::Unknown,
            peers: BTreeMap::new(),
            takeover: None,
            verifying: false,
            restoring: false,
            last_event: now,
            next_announce: now + timing.interval,
            garp_followup: None,
            next_refresh: None,
            preempt_since: None,
            stopped: false,
            counters: Counters::default(),
            last_resign: None,
            confirming: None,
            health: Health::healthy(),
        };
        let mut m = m;
        m.schedule_unranked(now, timing.startup_wait(), Cause::Startup);
        (m, vec![Action::SetProbing(true), Action::Announce])
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn me(&self) -> Me {
        self.me
    }
    pub fn since(&self) -> Instant {
        self.since
    }
    pub fn reason(&self) -> &str {
        &self.reason
    }
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }
    pub fn holder(&self) -> Holder {
        self.holder
    }
    pub fn peers(&self) -> impl Iterator<Item = &Seen> {
        self.peers.values()
    }
    pub fn counters(&self) -> Counters {
        self.counters
    }
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Timings may change on reload; the address and identity may not.
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// True while this backup asks the master to hand over (preemption).
    pub fn preempt_requesting(&self, now: Instant) -> bool {
        self.preempt_since
            .is_some_and(|t| now >= t + self.timing.preempt_delay)
    }

    /// The earliest time the machine wants a [`Event::Tick`].
    pub fn next_deadline(&self) -> Instant {
        let mut d = self.next_announce;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                d = d.min(t);
            }
        };
        consider(
            self.takeover
                .filter(|t| !t.probing && self.may_take_over())
                .map(|t| t.at),
        );
        consider(self.garp_followup);
        consider(self.next_refresh);
        if let Holder::Alive { last, .. } = self.holder {
            consider(Some(last + self.timing.timeout));
        }
        if let Some(t) = self.preempt_since {
            consider(Some(t + self.timing.preempt_delay));
        }
        d
    }

    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        if self.stopped {
            return Vec::new();
        }
        let mut out = Vec::new();
        let gap = now.saturating_duration_since(self.last_event);
        self.last_event = now;
        if gap >= self.timing.stall_threshold() {
            self.on_stall(now, gap, &mut out);
        }
        match event {
            Event::Tick => {}
            Event::Echo(peer) => self.on_holder_heard(now, peer, "echo", &mut out),
            Event::HolderLost(loss) => self.on_holder_lost(now, loss, &mut out),
            Event::Announce(peer) => self.on_announce(now, peer, &mut out),
            Event::Resign { from, successor } => self.on_resign(now, from, successor, &mut out),
            Event::Released(from) => self.on_released(now, from, &mut out),
            Event::Probe(outcome) => self.on_probe(now, outcome, &mut out),
            Event::MasterConfirmed(peer) => self.on_master_confirmed(now, peer, &mut out),
            Event::Observed {
                link_up,
                address_present,
            } => self.on_observed(now, link_up, address_present, &mut out),
            Event::ActionFailed(error) => self.on_failed(now, error, &mut out),
            Event::Health(health) => self.on_health(now, health, &mut out),
            Event::Shutdown => {
                self.on_shutdown(&mut out);
                return out;
            }
        }
        self.on_timers(now, &mut out);
        out
    }

    // ---- transitions -------------------------------------------------------------

    fn enter(
        &mut self,
        now: Instant,
        to: Role,
        fault: Option<Fault>,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        let from = self.role;
        self.role = to;
        self.fault = fault;
        self.since = now;
        self.reason = reason.clone();
        self.preempt_since = None;
        self.verifying = false;
        self.restoring = false;
        if to != Role::Master {
            self.garp_followup = None;
            self.next_refresh = None;
        }
        let probing = !matches!(
            (&to, &self.fault),
            (Role::Master, _) | (Role::Fault, Some(Fault::Link))
        );
        out.push(Action::SetProbing(probing));
        out.push(Action::Transition { from, to, reason });
        out.push(Action::Announce);
        self.next_announce = now + self.timing.interval;
    }

    fn take_over(&mut self, now: Instant, reason: String, out: &mut Vec<Action>) {
        self.takeover = None;
        self.holder = Holder::Unknown;
        self.counters.takeovers += 1;
        out.push(Action::AddAddress);
        out.push(Action::SendGarp);
        self.enter(now, Role::Master, None, reason, out);
        self.garp_followup = Some(now + Timing::GARP_FOLLOWUP);
        self.next_refresh = self.timing.garp_refresh.map(|r| now + r);
    }

    /// Leaving a fault: BACKUP, or FAULT for the service checks if they still fail.
    fn enter_backup(&mut self, now: Instant, reason: String, out: &mut Vec<Action>) {
        if self.health.verdict == Verdict::Failing {
            let detail = self.health.detail.clone();
            let reason = format!("{reason}, but service checks fail: {detail}");
            self.takeover = None;
            self.enter(
                now,
                Role::Fault,
                Some(Fault::Unhealthy(detail)),
                reason,
                out,
            );
        } else {
            self.enter(now, Role::Backup, None, reason, out);
        }
    }

    /// Master gives the address up; `successor` is told to take it at once.
    fn step_down(
        &mut self,
        now: Instant,
        to: Role,
        fault: Option<Fault>,
        successor: Option<Ipv4Addr>,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::RemoveAddress);
        out.push(Action::Resign { successor });
        self.enter(now, to, fault, reason, out);
    }

    /// Schedules a take-over whose delay already accounts for our rank.
    fn schedule(&mut self, now: Instant, delay: Duration, cause: Cause) {
        self.takeover = Some(Takeover {
            at: now + delay,
            scheduled: now,
            cause,
            ranked: true,
            probing: false,
        });
    }

    /// Schedules a take-over after a listening period; the rank delay is added when it ends,
    /// once the announces heard meanwhile tell who else is waiting.
    fn schedule_unranked(&mut self, now: Instant, delay: Duration, cause: Cause) {
        self.takeover = Some(Takeover {
            at: now + delay,
            scheduled: now,
            cause,
            ranked: false,
            probing: false,
        });
    }

    // ---- event handlers ----------------------------------------------------------

    fn on_stall(&mut self, now: Instant, gap: Duration, out: &mut Vec<Action>) {
        let ms = gap.as_millis();
        match self.role {
            Role::Master => {
                out.push(Action::Note(format!(
                    "loop stalled {ms} ms (frozen?): verifying nobody else holds the address before going on"
                )));
                self.verifying = true;
                out.push(Action::ProbeAddress);
            }
            Role::Backup | Role::Fault => {
                out.push(Action::Note(format!(
                    "loop stalled {ms} ms: discarding timers, waiting for fresh evidence"
                )));
                if let Holder::Alive { peer, .. } = self.holder {
                    self.holder = Holder::Alive { peer, last: now };
                }
                if let Some(t) = &mut self.takeover {
                    t.at = t.at.max(now + self.timing.interval);
                    t.probing = false;
                }
            }
        }
        // Peer sightings from before the stall are stale.
        self.peers
            .retain(|_, s| now.saturating_duration_since(s.at) < self.timing.interval);
    }

    fn on_holder_heard(&mut self, now: Instant, peer: Peer, how: &str, out: &mut Vec<Action>) {
        if peer.boot == self.me.boot || peer.role != Role::Master {
            return;
        }
        match self.role {
            Role::Master => self.two_masters(now, peer, out),
            // Without a key an announce may be forged: only the holder's echo (or its own
            // announces) says who holds; a claim from another node does not replace it.
            Role::Backup
                if self.timing.confirm_claims
                    && how == "announce"
                    && self.follows_another(now, peer) => {}
            Role::Backup => {
                self.holder = Holder::Alive { peer, last: now };
                self.takeover = None;
                self.update_preempt(now, peer);
            }
            Role::Fault => {
                self.holder = Holder::Alive { peer, last: now };
                if let Some(Fault::Conflict(_)) = self.fault {
                    self.takeover = None;
                    let reason = format!("holder {} answers ({how}); conflict resolved", peer.node);
                    self.enter_backup(now, reason, out);
                } else if let Some(Fault::Failed(_)) = self.fault {
                    self.takeover = None;
                    let reason = format!("holder {} answers ({how})", peer.node);
                    self.enter_backup(now, reason, out);
                }
            }
        }
    }

    fn update_preempt(&mut self, now: Instant, holder: Peer) {
        let wanted =
            self.timing.preempt && self.may_take_over() && self.priority() > holder.priority;
        match (wanted, self.preempt_since) {
            (true, None) => self.preempt_since = Some(now),
            (false, Some(_)) => self.preempt_since = None,
            _ => {}
        }
    }

    fn on_holder_lost(&mut self, now: Instant, loss: Loss, out: &mut Vec<Action>) {
        if self.role != Role::Backup {
            return;
        }
        if let Holder::Alive { peer, .. } = self.holder {
            self.lose_holder(now, Some(peer), loss, out);
        }
    }

    fn lose_holder(&mut self, now: Instant, peer: Option<Peer>, loss: Loss, out: &mut Vec<Action>) {
        self.holder = Holder::Lost {
            peer,
            loss,
            at: now,
        };
        self.counters.holder_losses += 1;
        self.preempt_since = None;
        let rank = self.rank(now, peer.map(|p| p.node));
        let what = match loss {
            Loss::Silence => format!("silent for {} ms", self.timing.timeout.as_millis()),
            Loss::Closed => "connection closed".to_string(),
        };
        let who = peer.map_or("holder".to_string(), |p| format!("holder {}", p.node));
        out.push(Action::Note(format!(
            "{who} {what}; take-over in rank {rank}"
        )));
        self.schedule(now, self.timing.rank_delay(rank), Cause::Lost(loss));
    }

    /// How many live backups would win a take-over against us.
    fn rank(&self, now: Instant, excluding: Option<Ipv4Addr>) -> u32 {
        let mine = (self.priority(), self.me.node);
        self.peers
            .values()
            .filter(|s| now.saturating_duration_since(s.at) < self.timing.timeout)
            // A FAULT peer may be waiting out the same conflict we are: it still competes.
            .filter(|s| s.peer.role != Role::Master && Some(s.peer.node) != excluding)
            .filter(|s| s.peer.rank_key() > mine)
            .count() as u32
    }

    fn best_backup(&self, now: Instant) -> Option<Ipv4Addr> {
        self.best_backup_peer(now).map(|p| p.node)
    }

    /// The live BACKUP that ranks highest (FAULT nodes, unhealthy ones included, never count).
    fn best_backup_peer(&self, now: Instant) -> Option<Peer> {
        self.peers
            .values()
            .filter(|s| {
                now.saturating_duration_since(s.at) < self.timing.timeout
                    && s.peer.role == Role::Backup
            })
            .max_by_key(|s| s.peer.rank_key())
            .map(|s| s.peer)
    }

    fn on_announce(&mut self, now: Instant, peer: Peer, out: &mut Vec<Action>) {
        if peer.boot == self.me.boot {
            return;
        }
        if peer.node == self.me.node {
            out.push(Action::Note(format!(
                "another daemon announces our own address {}; ignored",
                peer.node
            )));
            return;
        }
        self.peers.insert(peer.node, Seen { peer, at: now });
        match peer.role {
            Role::Master => self.on_holder_heard(now, peer, "announce", out),
            Role::Backup if self.role == Role::Master && !self.verifying => {
                if self.yield_for_health(now, out) {
                    return;
                }
                if peer.preempt_request && peer.priority > self.priority() {
                    let reason = format!(
                        "preempted by {} (priority {} > ours {})",
                        peer.node,
                        peer.priority,
                        self.priority()
                    );
                    self.step_down(now, Role::Backup, None, Some(peer.node), reason, out);
                    self.schedule(now, self.timing.timeout, Cause::Resigned);
                }
            }
            _ => {}
        }
    }

    /// True while a live holder other than `peer` is followed.
    fn follows_another(&self, now: Instant, peer: Peer) -> bool {
        matches!(self.holder, Holder::Alive { peer: h, last } if h.node != peer.node && now < last + self.timing.timeout)
    }

    fn two_masters(&mut self, now: Instant, peer: Peer, out: &mut Vec<Action>) {
        if self.verifying {
            return;
        }
        if peer.rank_key() > (self.priority(), self.me.node) {
            if self.timing.confirm_claims {
                if !self
                    .confirming
                    .is_some_and(|at| now < at + self.timing.interval)
                {
                    self.confirming = Some(now);
                    out.push(Action::Note(format!(
                        "{} announces itself master with priority {}; asking it before stepping down",
                        peer.node, peer.priority
                    )));
                    out.push(Action::ConfirmMaster(peer.node));
                }
                return;
            }
            self.yield_to(now, peer, "", out);
        } else {
            out.push(Action::Note(format!(
                "two masters: we ({} priority {}) outrank {} (priority {}); re-announcing",
                self.me.node,
                self.priority(),
                peer.node,
                peer.priority
            )));
            out.push(Action::Announce);
            out.push(Action::SendGarp);
        }
    }

    /// Steps down for a better master `peer`.
    fn yield_to(&mut self, now: Instant, peer: Peer, how: &str, out: &mut Vec<Action>) {
        let reason = format!(
            "two masters: {} (priority {}{how}) outranks us ({} priority {})",
            peer.node,
            peer.priority,
            self.me.node,
            self.priority()
        );
        self.step_down(now, Role::Backup, None, None, reason, out);
        self.holder = Holder::Alive { peer, last: now };
        self.takeover = None;
    }

    fn on_master_confirmed(&mut self, now: Instant, peer: Peer, out: &mut Vec<Action>) {
        self.confirming = None;
        let better = peer.role == Role::Master && peer.rank_key() > (self.priority(), self.me.node);
        if self.role == Role::Master && !self.verifying && better {
            self.yield_to(now, peer, ", it answered a heartbeat", out);
        }
    }

    fn on_resign(
        &mut self,
        now: Instant,
        from: Peer,
        successor: Option<Ipv4Addr>,
        out: &mut Vec<Action>,
    ) {
        let repeated = self
            .last_resign
            .is_some_and(|(boot, at)| boot == from.boot && now < at + self.timing.interval);
        if from.boot == self.me.boot || repeated {
            return;
        }
        // Only the holder we follow, still alive, can resign it: anything else (a replay of
        // an older resignation, a node we never followed) moves nothing.
        let followed = matches!(self.holder, Holder::Alive { peer, .. } if peer.node == from.node && peer.boot == from.boot);
        if self.role != Role::Master && !followed {
            out.push(Action::Note(format!(
                "ignored a resignation from {}: not the holder we follow",
                from.node
            )));
            return;
        }
        self.last_resign = Some((from.boot, now));
        self.peers.insert(
            from.node,
            Seen {
                peer: Peer {
                    role: Role::Backup,
                    ..from
                },
                at: now,
            },
        );
        match (self.role, &self.fault) {
            (Role::Master, _) => {
                if !self.verifying {
                    out.push(Action::Note(format!(
                        "{} resigned; re-announcing our hold",
                        from.node
                    )));
                    out.push(Action::SendGarp);
                }
            }
            (Role::Fault, Some(Fault::Link)) => {}
            (Role::Fault, Some(Fault::Unhealthy(_))) => {
                // Not ours to take; on recovery we look for a holder again.
                self.holder = Holder::Lost {
                    peer: Some(from),
                    loss: Loss::Closed,
                    at: now,
                };
            }
            _ if successor == Some(self.me.node) && self.may_take_over() => {
                // The holder says it removed the address: a brief probe proves it.
                self.holder = Holder::Lost {
                    peer: Some(from),
                    loss: Loss::Closed,
                    at: now,
                };
                let cause = Cause::HandedOver(from.node);
                self.takeover = Some(Takeover {
                    at: now,
                    scheduled: now,
                    cause,
                    ranked: true,
                    probing: true,
                });
                out.push(Action::ProbeHandedOver);
            }
            _ => {
                self.holder = Holder::Lost {
                    peer: Some(from),
                    loss: Loss::Closed,
                    at: now,
                };
                let rank = self.rank(now, Some(from.node)) + u32::from(successor.is_some());
                self.schedule(now, self.timing.rank_delay(rank), Cause::Resigned);
            }
        }
    }

    fn on_released(&mut self, now: Instant, from: Ipv4Addr, out: &mut Vec<Action>) {
        // The node we followed (by its announces) just removed a copy: it is not holding.
        if let Holder::Alive { peer, .. } = self.holder {
            if peer.node == from && self.role == Role::Backup {
                self.lose_holder(now, Some(peer), Loss::Closed, out);
                return;
            }
        }
        if let Some(t) = self.takeover {
            if !t.probing && t.cause != Cause::Startup {
                // Everyone waiting hears this at once: keep the rank order so only the best moves.
                let rank = self.rank(now, Some(from));
                out.push(Action::Note(format!(
                    "{from} released a stale copy; probing in rank {rank}"
                )));
                self.schedule(now, self.timing.rank_delay(rank), t.cause);
            }
        }
    }

    fn on_probe(&mut self, now: Instant, outcome: ProbeOutcome, out: &mut Vec<Action>) {
        if self.role == Role::Master {
            if self.verifying {
                self.verifying = false;
                let restoring = std::mem::take(&mut self.restoring);
                match outcome {
                    ProbeOutcome::Free if restoring => {
                        out.push(Action::Note("the address vanished from the interface and nobody else has it; restoring it".into()));
                        out.push(Action::AddAddress);
                        out.push(Action::SendGarp);
                    }
                    ProbeOutcome::Free => {
                        out.push(Action::Note("still the only holder after the stall".into()))
                    }
                    ProbeOutcome::InUse(mac) => {
                        let why = if restoring {
                            "the address vanished"
                        } else {
                            "view stale after a stall"
                        };
                        let reason = format!("{why}: {} answers for the address", fmt_mac(&mac));
                        self.step_down(now, Role::Backup, None, None, reason, out);
                        self.schedule_unranked(now, self.timing.startup_wait(), Cause::Startup);
                    }
                }
            }
            return;
        }
        let Some(t) = self.takeover.filter(|t| t.probing) else {
            return;
        };
        match outcome {
            ProbeOutcome::Free => {
                let reason = match t.cause {
                    Cause::Startup => "no holder found at start-up".to_string(),
                    Cause::Lost(Loss::Silence) => self.lost_reason("silent"),
                    Cause::Lost(Loss::Closed) => self.lost_reason("gone"),
                    Cause::Resigned => "holder resigned".to_string(),
                    Cause::HandedOver(from) => format!("{from} handed the address over to us"),
                    Cause::Retry => "address free again".to_string(),
                    Cause::Recovered => "service checks pass and no holder is around".to_string(),
                };
                self.take_over(now, reason, out);
            }
            ProbeOutcome::InUse(mac) => {
                let lost_silent = match self.holder {
                    Holder::Lost {
                        peer: Some(p),
                        loss: Loss::Silence,
                        ..
                    } => p.mac == mac,
                    _ => false,
                };
                if t.cause == Cause::Lost(Loss::Silence) && lost_silent {
                    let reason = format!(
                        "{}; it still answers ARP ({}), so it is frozen or cut off and will step down",
                        self.lost_reason("silent"),
                        fmt_mac(&mac)
                    );
                    self.take_over(now, reason, out);
                } else {
                    self.counters.conflicts += u64::from(self.fault != Some(Fault::Conflict(mac)));
                    let rank = self.rank(now, None);
                    self.schedule(
                        now,
                        self.timing.conflict_retry() + self.timing.rank_delay(rank),
                        Cause::Retry,
                    );
                    if self.fault != Some(Fault::Conflict(mac)) {
                        let reason = format!(
                            "address conflict: {} answers for the address but sends no heartbeat; not adding it, retrying",
                            fmt_mac(&mac)
                        );
                        self.enter(now, Role::Fault, Some(Fault::Conflict(mac)), reason, out);
                    }
                }
            }
        }
    }

    fn lost_reason(&self, how: &str) -> String {
        match self.holder {
            Holder::Lost { peer: Some(p), .. } => format!("holder {} {how}", p.node),
            _ => format!("holder {how}"),
        }
    }

    fn on_observed(&mut self, now: Instant, link_up: bool, present: bool, out: &mut Vec<Action>) {
        let link_fault = self.fault == Some(Fault::Link);
        if !link_up && !link_fault {
            let reason = "link down (no carrier)".to_string();
            self.takeover = None;
            self.holder = Holder::Unknown;
            if self.role == Role::Master {
                self.step_down(now, Role::Fault, Some(Fault::Link), None, reason, out);
            } else {
                self.enter(now, Role::Fault, Some(Fault::Link), reason, out);
            }
            return;
        }
        if link_up && link_fault {
            self.schedule_unranked(now, self.timing.startup_wait(), Cause::Startup);
            self.enter_backup(now, "link up again".into(), out);
            return;
        }
        match (self.role, present) {
            (Role::Master, false) if !self.verifying => {
                // Every add is preceded by a probe: someone may have taken it meanwhile.
                self.verifying = true;
                self.restoring = true;
                out.push(Action::ProbeAddress);
            }
            (Role::Backup | Role::Fault, true) => {
                out.push(Action::Note(
                    "found a copy of the address while not MASTER; removing it".into(),
                ));
                out.push(Action::RemoveAddress);
            }
            _ => {}
        }
    }

    fn on_failed(&mut self, now: Instant, error: String, out: &mut Vec<Action>) {
        let reason = format!("action failed: {error}");
        self.schedule(now, self.timing.conflict_retry(), Cause::Retry);
        if self.role == Role::Master {
            self.step_down(
                now,
                Role::Fault,
                Some(Fault::Failed(error)),
                None,
                reason,
                out,
            );
        } else if self.role == Role::Backup || self.fault != Some(Fault::Link) {
            self.enter(now, Role::Fault, Some(Fault::Failed(error)), reason, out);
        }
    }

    fn on_shutdown(&mut self, out: &mut Vec<Action>) {
        self.stopped = true;
        if self.role == Role::Master {
            out.push(Action::RemoveAddress);
            out.push(Action::Resign {
                successor: self.best_backup(self.last_event),
            });
        }
        out.push(Action::Exit);
    }

    fn on_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.peers
            .retain(|_, s| now.saturating_duration_since(s.at) < self.timing.timeout);
        if let Holder::Alive { peer, last } = self.holder {
            if self.role == Role::Backup && now >= last + self.timing.timeout {
                self.lose_holder(now, Some(peer), Loss::Silence, out);
            }
        }
        if let Some(t) = self.takeover {
            if !t.probing
                && now >= t.at
                && self.role != Role::Master
                && self.fault != Some(Fault::Link)
                && self.may_take_over()
            {
                if self.master_announced_since(t.scheduled) {
                    self.takeover = None;
                } else if !t.ranked {
                    let rank = self.rank(now, None);
                    self.takeover = Some(Takeover {
                        at: now + self.timing.rank_delay(rank),
                        ranked: true,
                        ..t
                    });
                    if rank > 0 {
                        out.push(Action::Note(format!(
                            "{rank} better backup(s) around; waiting for them first"
                        )));
                    } else {
                        return self.on_timers(now, out);
                    }
                } else {
                    self.takeover = Some(Takeover { probing: true, ..t });
                    out.push(Action::ProbeAddress);
                }
            }
        }
        if self.role == Role::Master && !self.verifying {
            if self.garp_followup.is_some_and(|t| now >= t) {
                self.garp_followup = None;
                out.push(Action::SendGarp);
            }
            if let (Some(t), Some(every)) = (self.next_refresh, self.timing.garp_refresh) {
                if now >= t {
                    self.next_refresh = Some(now + every);
                    out.push(Action::SendGarp);
                }
            }
        }
        if now >= self.next_announce && !self.verifying {
            self.next_announce = now + self.timing.interval;
            out.push(Action::Announce);
        }
    }

    fn master_announced_since(&self, t: Instant) -> bool {
        matches!(self.holder, Holder::Alive { last, .. } if last >= t)
            || self
                .peers
                .values()
                .any(|s| s.peer.role == Role::Master && s.at >= t)
    }
}
