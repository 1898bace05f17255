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
//!
//! What the machine knows in each role lives inside that role (`role.rs`), and every
//! change of role goes through one function that does the leaving and entering work.
//! The golden transcripts in `transcripts/` replay whole scenarios against it.

mod health;
mod role;
#[cfg(test)]
mod tests;
mod timing;
#[cfg(test)]
mod transcripts;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::vocabulary::{
    Action, BootId, Event, Health, Heard, Lease, Loss, Peer, Priority, ProbeOutcome, Reason, Role,
    Verdict,
};
use role::{Cause, Master, RoleState, Suspect, Takeover, Verification, Watch};
pub use role::{Fault, Holder};
pub use timing::Timing;

/// This node's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Me {
    pub node: IpAddr,
    pub boot: BootId,
    pub priority: Priority,
}

/// A resignation heard from a holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resignation {
    from: Peer,
    successor: Option<IpAddr>,
    at: Instant,
}

/// A peer and when it was last heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub peer: Peer,
    pub at: Instant,
}

/// What an announce says about us: role, priority and whether we ask to preempt.
type Said = (Role, Priority, bool);

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
    state: RoleState,
    since: Instant,
    reason: Reason,
    peers: BTreeMap<IpAddr, Seen>,
    last_event: Instant,
    next_announce: Instant,
    /// What our last announce said: a change is announced at once.
    said: Said,
    stopped: bool,
    counters: Counters,
    /// The last resignation heard: resignations are sent twice.
    last_resign: Option<Resignation>,
    /// When the holder we followed last said it released the address (after a crash).
    holder_released: Option<Instant>,
    /// The last sighting of the holder we asked about (its announces were late).
    asked_after: Option<Instant>,
    health: Health,
    /// No preemption before this: the operator just handed the address away.
    hold_off_until: Option<Instant>,
    /// When the fault that led to the last take-over was seen (the holder lost).
    fault_seen: Option<Instant>,
    /// Take-overs are gated by an external election's lease instead of the LAN's
    /// detection and rank timers; the LAN still tells who is around.
    lease_gated: bool,
    /// The lease the external election granted us, while it does.
    lease: Option<Lease>,
}

/// The node a message from the group came from.
fn sender(event: &Event) -> Option<IpAddr> {
    match event {
        Event::Echo(p) | Event::Announce(p) | Event::MasterConfirmed(p) => Some(p.node),
        Event::Resign { from, .. } => Some(from.node),
        Event::Released(node) => Some(*node),
        _ => None,
    }
}

/// Why `floatip handover` cannot hand the address over now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoverRefused {
    #[error("this node is {0}, not MASTER: it has no address to hand over")]
    NotMaster(Role),
    #[error("no live BACKUP to hand the address to; keeping it")]
    NoBackup,
    #[error("{0} is not a live BACKUP of this group (live backups: {1})")]
    NotABackup(IpAddr, String),
}

impl Machine {
    /// A node starts as BACKUP and listens for one start-up wait before it may take over.
    pub fn new(me: Me, timing: Timing, now: Instant) -> (Machine, Vec<Action>) {
        let watch = Watch {
            holder: Holder::Unknown,
            takeover: Some(Takeover::unranked(
                now,
                timing.startup_wait(),
                Cause::Startup,
            )),
        };
        let m = Machine {
            me,
            timing,
            state: RoleState::backup(watch),
            since: now,
            reason: Reason::Starting,
            peers: BTreeMap::new(),
            last_event: now,
            next_announce: now + timing.announce_period(Role::Backup),
            said: (Role::Backup, me.priority, false),
            stopped: false,
            counters: Counters::default(),
            last_resign: None,
            holder_released: None,
            asked_after: None,
            health: Health::healthy(),
            hold_off_until: None,
            fault_seen: None,
            lease_gated: false,
            lease: None,
        };
        (m, vec![Action::SetProbing(true), Action::Announce])
    }

    /// From now on only [`Event::Elected`] opens the way to the address: a node takes over
    /// (after the address probe) while it holds the lease, and gives the address up at once
    /// on [`Event::ElectionLost`]. LAN evidence no longer makes it take over or yield.
    pub fn gate_on_lease(&mut self) {
        self.lease_gated = true;
    }

    /// How many live backups should campaign before us in an external election: the
    /// LAN's rank, except that a successor just named by the resigning holder goes first.
    pub fn election_rank(&self, now: Instant) -> u32 {
        match self.just_resigned(now) {
            Some(r) if r.successor == Some(self.me.node) => 0,
            Some(r) => self.rank(now, Some(r.from.node)) + u32::from(r.successor.is_some()),
            None => self.rank(now, None),
        }
    }

    /// The resignation heard within the last interval.
    fn just_resigned(&self, now: Instant) -> Option<Resignation> {
        self.last_resign
            .filter(|r| now < r.at + self.timing.interval)
    }

    /// The lease held, when an external election decides.
    pub fn lease(&self) -> Option<Lease> {
        self.lease
    }

    /// Whether this node should stand in the external election: healthy, link up, running.
    pub fn wants_election(&self) -> bool {
        self.lease_gated
            && !self.stopped
            && self.may_take_over()
            && self.fault() != Some(&Fault::Link)
    }

    pub fn role(&self) -> Role {
        self.state.role()
    }
    pub fn me(&self) -> Me {
        self.me
    }
    pub fn since(&self) -> Instant {
        self.since
    }
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
    pub fn fault(&self) -> Option<&Fault> {
        match &self.state {
            RoleState::Fault { fault, .. } => Some(fault),
            _ => None,
        }
    }
    /// What this node knows about the holder (nothing while it holds the address itself).
    pub fn holder(&self) -> Holder {
        self.state.watch().map_or(Holder::Unknown, |w| w.holder)
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

    /// Priority and timings may change on reload; the address and identity may not. The
    /// new priority goes out with the next message and decides preemption from then on.
    pub fn reconfigure(&mut self, priority: Priority, timing: Timing) {
        self.me.priority = priority;
        self.timing = timing;
    }

    /// When the holder loss that led to the current hold was seen, for the take-over time.
    pub fn fault_seen(&self) -> Option<Instant> {
        self.fault_seen
    }

    /// Whom `floatip handover` would hand the address to: `to`, or the best live backup.
    pub fn handover_target(
        &self,
        now: Instant,
        to: Option<IpAddr>,
    ) -> Result<IpAddr, HandoverRefused> {
        if !self.state.settled_master() {
            return Err(HandoverRefused::NotMaster(self.role()));
        }
        let live = self.live_backups(now);
        match to {
            None => self.best_backup(now).ok_or(HandoverRefused::NoBackup),
            Some(node) if live.contains(&node) => Ok(node),
            Some(_) if live.is_empty() => Err(HandoverRefused::NoBackup),
            Some(node) => Err(HandoverRefused::NotABackup(
                node,
                live.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// True while this backup asks the master to hand over (preemption).
    pub fn preempt_requesting(&self, now: Instant) -> bool {
        matches!(self.state, RoleState::Backup { preempt_since: Some(t), .. } if now >= t + self.timing.preempt_delay)
    }

    /// The earliest time the machine wants a [`Event::Tick`], one interval on at the latest.
    /// Never a time already handled: a deadline passed but not acted on (no announce while
    /// verifying, a holder that fell silent while we are FAULT, a preemption request
    /// already under way) would make the loop spin.
    pub fn next_deadline(&self) -> Instant {
        let handled = self.last_event;
        let mut d = handled + self.timing.interval;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t.filter(|&t| t > handled) {
                d = d.min(t);
            }
        };
        consider(Some(self.next_announce));
        match &self.state {
            RoleState::Master(m) => {
                consider(m.garp_followup);
                consider(m.next_refresh);
                consider(m.suspect.map(|s| s.next.min(s.until)));
            }
            RoleState::Backup { watch, .. } | RoleState::Fault { watch, .. } => {
                consider(
                    watch
                        .takeover
                        .filter(|t| !t.probing && self.may_take_over())
                        .map(|t| t.at),
                );
                if let Holder::Alive { last, .. } = watch.holder {
                    consider(Some(last + self.timing.timeout));
                    if self.asked_after != Some(last) {
                        consider(Some(last + self.timing.ask_after()));
                    }
                }
            }
        }
        if let RoleState::Backup {
            preempt_since: Some(t),
            ..
        } = self.state
        {
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
        if let Some(node) = sender(&event) {
            self.heard_from(node);
        }
        match event {
            Event::Tick => {}
            Event::Echo(peer) => self.on_holder_heard(now, peer, Heard::Echo, &mut out),
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
            Event::HandOver { to } => self.on_handover(now, to, &mut out),
            Event::Elected(lease) => self.on_elected(now, lease, &mut out),
            Event::ElectionLost { reason } => self.on_election_lost(now, reason, &mut out),
            Event::Shutdown => {
                self.on_shutdown(&mut out);
                return out;
            }
        }
        self.on_timers(now, &mut out);
        out
    }

    // ---- the one transition ----------------------------------------------------------

    /// Moves to `to` for `reason`, doing the work of leaving and entering a role: a master
    /// that leaves removes the address and resigns (naming the successor the reason
    /// names); a new master adds it and announces it by gratuitous ARP.
    fn go(&mut self, now: Instant, to: RoleState, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state.role();
        if from == Role::Master && to.role() != Role::Master {
            out.push(Action::RemoveAddress);
            out.push(Action::Resign {
                successor: reason.successor(),
            });
        }
        if let RoleState::Master(_) = to {
            self.counters.takeovers += 1;
            out.push(Action::AddAddress);
            out.push(Action::SendGarp);
        }
        let probing = !matches!(
            to,
            RoleState::Master(_)
                | RoleState::Fault {
                    fault: Fault::Link,
                    ..
                }
        );
        self.state = to;
        self.since = now;
        self.reason = reason.clone();
        out.push(Action::SetProbing(probing));
        out.push(Action::Transition {
            from,
            to: self.state.role(),
            reason,
        });
        out.push(Action::Announce);
        self.announced(now);
    }

    /// What we say now.
    fn saying(&self, now: Instant) -> Said {
        (self.role(), self.priority(), self.preempt_requesting(now))
    }

    /// An announce went out now.
    fn announced(&mut self, now: Instant) {
        self.said = self.saying(now);
        self.next_announce = now + self.timing.announce_period(self.role());
    }

    fn take_over(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        let holder = self.holder();
        self.fault_seen = match holder {
            Holder::Lost { at, .. } => Some(at),
            _ => None,
        };
        let mut master = Master::fresh(now, &self.timing);
        // A holder that only fell silent may be cut off from us, not gone.
        if let Holder::Lost {
            peer: Some(p),
            loss: Loss::Silence,
            ..
        } = holder
        {
            // Under a lease nobody else may hold: there is nothing to suspect.
            if self.timing.probes_suspects() && !self.lease_gated {
                master.suspect = Some(Suspect {
                    node: p.node,
                    next: now,
                    until: now + Timing::SUSPECT_FOR,
                });
            }
        }
        self.go(now, RoleState::Master(master), reason, out);
    }

    /// Anything from a suspected second master means the path to it works again: from
    /// here the two-master rules (and the periodic announces) settle who keeps the address.
    fn heard_from(&mut self, node: IpAddr) {
        if let RoleState::Master(m) = &mut self.state {
            if m.suspect.is_some_and(|s| s.node == node) {
                m.suspect = None;
            }
        }
    }

    /// Leaving a fault: BACKUP, or FAULT for the service checks if they still fail.
    fn enter_backup(&mut self, now: Instant, watch: Watch, reason: Reason, out: &mut Vec<Action>) {
        if self.health.verdict == Verdict::Failing {
            let detail = self.health.detail.clone();
            let reason = Reason::StillUnhealthy {
                after: Box::new(reason),
                detail: detail.clone(),
            };
            let watch = Watch {
                takeover: None,
                ..watch
            };
            self.go(
                now,
                RoleState::fault(Fault::Unhealthy(detail), watch),
                reason,
                out,
            );
        } else {
            self.go(now, RoleState::backup(watch), reason, out);
        }
    }

    /// What a node not holding the address knows and plans; nothing for a master.
    fn watch(&self) -> Watch {
        self.state.watch().copied().unwrap_or_default()
    }

    /// Schedules a take-over (if not MASTER) whose delay already accounts for our rank.
    fn schedule(&mut self, now: Instant, delay: Duration, cause: Cause) {
        if let Some(w) = self.state.watch_mut() {
            w.takeover = Some(Takeover::ranked(now, delay, cause));
        }
    }

    // ---- event handlers ----------------------------------------------------------

    fn on_stall(&mut self, now: Instant, gap: Duration, out: &mut Vec<Action>) {
        let ms = gap.as_millis();
        let interval = self.timing.interval;
        match &mut self.state {
            // The daemon compares the lease's deadline before any event: it decides.
            RoleState::Master(_) if self.lease_gated => out.push(Action::Note(format!(
                "loop stalled {ms} ms (frozen?): the lease's deadline decides"
            ))),
            RoleState::Master(m) => {
                out.push(Action::Note(format!(
                    "loop stalled {ms} ms (frozen?): verifying nobody else holds the address before going on"
                )));
                m.verification.get_or_insert(Verification::AfterStall);
                out.push(Action::ProbeAddress);
            }
            RoleState::Backup { watch, .. } | RoleState::Fault { watch, .. } => {
                out.push(Action::Note(format!(
                    "loop stalled {ms} ms: discarding timers, waiting for fresh evidence"
                )));
                if let Holder::Alive { peer, .. } = watch.holder {
                    watch.holder = Holder::Alive { peer, last: now };
                }
                if let Some(t) = &mut watch.takeover {
                    t.at = t.at.max(now + interval);
                    t.probing = false;
                }
            }
        }
        // A master seen before the stall may be gone; members that speak rarely stay.
        self.peers.retain(|_, s| {
            s.peer.role != Role::Master || now.saturating_duration_since(s.at) < interval
        });
    }

    fn on_holder_heard(&mut self, now: Instant, peer: Peer, heard: Heard, out: &mut Vec<Action>) {
        if peer.boot == self.me.boot || peer.role != Role::Master {
            return;
        }
        let alive = Holder::Alive { peer, last: now };
        // Without a key an announce may be forged: only the holder's echo (or its own
        // announces) says who holds; a claim from another node does not replace it.
        let unconfirmed_claim = self.timing.confirm_claims
            && heard == Heard::Announce
            && self.follows_another(now, peer);
        match &mut self.state {
            RoleState::Master(_) => self.two_masters(now, peer, out),
            RoleState::Backup { .. } if unconfirmed_claim => {}
            RoleState::Backup { watch, .. } => {
                *watch = Watch {
                    holder: alive,
                    takeover: None,
                };
                self.update_preempt(now, peer);
            }
            RoleState::Fault { fault, watch } => {
                watch.holder = alive;
                let conflict = match fault {
                    Fault::Conflict(_) => true,
                    Fault::Failed(_) => false,
                    Fault::Link | Fault::Unhealthy(_) => return,
                };
                let reason = Reason::HolderAnswers {
                    holder: peer.node,
                    heard,
                    conflict,
                };
                let watch = Watch {
                    holder: alive,
                    takeover: None,
                };
                self.enter_backup(now, watch, reason, out);
            }
        }
    }

    /// A BACKUP starts (or stops) asking a lower-priority `holder` to hand over.
    fn update_preempt(&mut self, now: Instant, holder: Peer) {
        let held_off = self.hold_off_until.is_some_and(|t| now < t);
        let wanted = self.timing.preempt
            && !held_off
            && !self.lease_gated
            && self.may_take_over()
            && self.priority() > holder.priority;
        if let RoleState::Backup { preempt_since, .. } = &mut self.state {
            match (wanted, *preempt_since) {
                (true, None) => *preempt_since = Some(now),
                (false, Some(_)) => *preempt_since = None,
                _ => {}
            }
        }
    }

    fn on_holder_lost(&mut self, now: Instant, loss: Loss, out: &mut Vec<Action>) {
        if let RoleState::Backup {
            watch:
                Watch {
                    holder: Holder::Alive { peer, .. },
                    ..
                },
            ..
        } = self.state
        {
            self.lose_holder(now, Some(peer), loss, out);
        }
    }

    /// A BACKUP lost the holder it followed: take-over in rank order.
    fn lose_holder(&mut self, now: Instant, peer: Option<Peer>, loss: Loss, out: &mut Vec<Action>) {
        let rank = self.rank(now, peer.map(|p| p.node));
        let takeover = Takeover::ranked(now, self.timing.rank_delay(rank), Cause::Lost(loss));
        self.state = RoleState::backup(Watch {
            holder: Holder::Lost {
                peer,
                loss,
                at: now,
            },
            takeover: Some(takeover),
        });
        self.counters.holder_losses += 1;
        let what = match loss {
            Loss::Silence => format!("silent for {} ms", self.timing.timeout.as_millis()),
            Loss::Closed => "connection closed".to_string(),
        };
        let who = peer.map_or("holder".to_string(), |p| format!("holder {}", p.node));
        out.push(Action::Note(format!(
            "{who} {what}; take-over in rank {rank}"
        )));
    }

    /// How many live backups would win a take-over against us.
    fn rank(&self, now: Instant, excluding: Option<IpAddr>) -> u32 {
        let mine = (self.priority(), self.me.node);
        self.peers
            .values()
            .filter(|s| now.saturating_duration_since(s.at) < self.timing.member_ttl())
            // A FAULT peer may be waiting out the same conflict we are: it still competes.
            .filter(|s| s.peer.role != Role::Master && Some(s.peer.node) != excluding)
            .filter(|s| s.peer.rank_key() > mine)
            .count() as u32
    }

    fn best_backup(&self, now: Instant) -> Option<IpAddr> {
        self.best_backup_peer(now).map(|p| p.node)
    }

    /// The live BACKUP that ranks highest (FAULT nodes, unhealthy ones included, never count).
    fn best_backup_peer(&self, now: Instant) -> Option<Peer> {
        self.backups(now).max_by_key(|p| p.rank_key())
    }

    fn backups(&self, now: Instant) -> impl Iterator<Item = Peer> + '_ {
        self.peers
            .values()
            .filter(move |s| {
                now.saturating_duration_since(s.at) < self.timing.member_ttl()
                    && s.peer.role == Role::Backup
            })
            .map(|s| s.peer)
    }

    fn live_backups(&self, now: Instant) -> Vec<IpAddr> {
        self.backups(now).map(|p| p.node).collect()
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
        let newcomer = self
            .peers
            .get(&peer.node)
            .map_or(true, |s| s.peer.boot != peer.boot);
        self.peers.insert(peer.node, Seen { peer, at: now });
        // It has not heard us (we speak rarely): tell it who we are. The master's own
        // announce is never more than an interval away.
        if newcomer && self.role() != Role::Master {
            out.push(Action::Announce);
            self.announced(now);
        }
        match peer.role {
            Role::Master => self.on_holder_heard(now, peer, Heard::Announce, out),
            Role::Backup if self.state.settled_master() && !self.lease_gated => {
                if self.yield_for_health(now, out) {
                    return;
                }
                if peer.preempt_request && peer.priority > self.priority() {
                    let reason = Reason::Preempted {
                        by: peer.node,
                        theirs: peer.priority,
                        ours: self.priority(),
                    };
                    self.step_down_to_backup(now, reason, out);
                }
            }
            _ => {}
        }
    }

    /// A master hands over to the successor `reason` names and waits to take the
    /// address back should nobody else hold it after one detection time.
    fn step_down_to_backup(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        let watch = Watch {
            holder: Holder::Unknown,
            takeover: Some(Takeover::ranked(now, self.timing.timeout, Cause::Resigned)),
        };
        self.go(now, RoleState::backup(watch), reason, out);
    }

    /// True while a live holder other than `peer` is followed.
    fn follows_another(&self, now: Instant, peer: Peer) -> bool {
        matches!(self.holder(), Holder::Alive { peer: h, last } if h.node != peer.node && now < last + self.timing.timeout)
    }

    fn two_masters(&mut self, now: Instant, peer: Peer, out: &mut Vec<Action>) {
        let (ours, confirm_claims, interval) = (
            self.priority(),
            self.timing.confirm_claims,
            self.timing.interval,
        );
        if self.lease_gated {
            out.push(Action::Note(format!(
                "{} announces itself master; the lease is ours, so it is stale",
                peer.node
            )));
            return;
        }
        let RoleState::Master(m) = &mut self.state else {
            return;
        };
        if m.verification.is_some() {
            return;
        }
        if peer.rank_key() > (ours, self.me.node) {
            if confirm_claims {
                if !m.confirming.is_some_and(|at| now < at + interval) {
                    m.confirming = Some(now);
                    out.push(Action::Note(format!(
                        "{} announces itself master with priority {}; asking it before stepping down",
                        peer.node, peer.priority
                    )));
                    out.push(Action::ConfirmMaster(peer.node));
                }
                return;
            }
            self.yield_to(now, peer, false, out);
        } else {
            out.push(Action::Note(format!(
                "two masters: we ({} priority {ours}) outrank {} (priority {}); re-announcing",
                self.me.node, peer.node, peer.priority
            )));
            out.push(Action::Announce);
            out.push(Action::SendGarp);
        }
    }

    /// Steps down for a better master `peer`.
    fn yield_to(&mut self, now: Instant, peer: Peer, confirmed: bool, out: &mut Vec<Action>) {
        let reason = Reason::Outranked {
            by: peer.node,
            theirs: peer.priority,
            confirmed,
            us: self.me.node,
            ours: self.priority(),
        };
        let watch = Watch {
            holder: Holder::Alive { peer, last: now },
            takeover: None,
        };
        self.go(now, RoleState::backup(watch), reason, out);
    }

    fn on_master_confirmed(&mut self, now: Instant, peer: Peer, out: &mut Vec<Action>) {
        let better = peer.role == Role::Master && peer.rank_key() > (self.priority(), self.me.node);
        if let RoleState::Master(m) = &mut self.state {
            m.confirming = None;
            if m.verification.is_none() && better && !self.lease_gated {
                self.yield_to(now, peer, true, out);
            }
        }
    }

    fn on_resign(
        &mut self,
        now: Instant,
        from: Peer,
        successor: Option<IpAddr>,
        out: &mut Vec<Action>,
    ) {
        let repeated = self
            .last_resign
            .is_some_and(|r| r.from.boot == from.boot && now < r.at + self.timing.interval);
        if from.boot == self.me.boot || repeated {
            return;
        }
        // Only the holder we follow, still alive, can resign it: anything else (a replay of
        // an older resignation, a node we never followed) moves nothing.
        let followed = matches!(self.holder(), Holder::Alive { peer, .. } if peer.node == from.node && peer.boot == from.boot);
        if self.role() != Role::Master && !followed {
            out.push(Action::Note(format!(
                "ignored a resignation from {}: not the holder we follow",
                from.node
            )));
            return;
        }
        self.last_resign = Some(Resignation {
            from,
            successor,
            at: now,
        });
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
        let lost = Holder::Lost {
            peer: Some(from),
            loss: Loss::Closed,
            at: now,
        };
        let handed_to_us =
            successor == Some(self.me.node) && self.may_take_over() && !self.lease_gated;
        match &mut self.state {
            RoleState::Master(m) => {
                if m.verification.is_none() {
                    out.push(Action::Note(format!(
                        "{} resigned; re-announcing our hold",
                        from.node
                    )));
                    out.push(Action::SendGarp);
                }
            }
            RoleState::Fault {
                fault: Fault::Link, ..
            } => {}
            // Not ours to take; on recovery we look for a holder again.
            RoleState::Fault {
                fault: Fault::Unhealthy(_),
                watch,
            } => watch.holder = lost,
            RoleState::Backup { watch, .. } | RoleState::Fault { watch, .. } if handed_to_us => {
                // The holder says it removed the address: a brief probe proves it.
                *watch = Watch {
                    holder: lost,
                    takeover: Some(Takeover {
                        probing: true,
                        ..Takeover::ranked(now, Duration::ZERO, Cause::HandedOver(from.node))
                    }),
                };
                out.push(Action::ProbeHandedOver);
            }
            RoleState::Backup { watch, .. } | RoleState::Fault { watch, .. } => {
                watch.holder = lost;
                let rank = self.rank(now, Some(from.node)) + u32::from(successor.is_some());
                self.schedule(now, self.timing.rank_delay(rank), Cause::Resigned);
            }
        }
    }

    fn on_released(&mut self, now: Instant, from: IpAddr, out: &mut Vec<Action>) {
        if let Holder::Alive { peer, .. }
        | Holder::Lost {
            peer: Some(peer), ..
        } = self.holder()
        {
            if peer.node == from {
                self.holder_released = Some(now);
            }
        }
        // The node we followed (by its announces) just removed a copy: it is not holding.
        if let RoleState::Backup {
            watch:
                Watch {
                    holder: Holder::Alive { peer, .. },
                    ..
                },
            ..
        } = self.state
        {
            if peer.node == from {
                self.lose_holder(now, Some(peer), Loss::Closed, out);
                return;
            }
        }
        if let Some(t) = self.watch().takeover {
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
        if let RoleState::Master(m) = &mut self.state {
            if let Some(verification) = m.verification.take() {
                self.on_verified(now, verification, outcome, out);
            }
            return;
        }
        let watch = self.watch();
        let Some(t) = watch.takeover.filter(|t| t.probing) else {
            return;
        };
        if self.lease_gated && self.lease.is_none() {
            // The lease went while the probe was out.
            return;
        }
        let lost = match watch.holder {
            Holder::Lost { peer, .. } => peer.map(|p| p.node),
            _ => None,
        };
        match outcome {
            ProbeOutcome::Free => {
                let reason = match t.cause {
                    Cause::Startup => Reason::NoHolderAtStartup,
                    Cause::Lost(loss) => Reason::HolderLost { holder: lost, loss },
                    Cause::Resigned => Reason::HolderResigned,
                    Cause::HandedOver(from) => Reason::HandedOver(from),
                    Cause::Retry => Reason::AddressFreeAgain,
                    Cause::Recovered => Reason::RecoveredAlone,
                    Cause::Elected => match self.lease {
                        Some(lease) => Reason::Elected(lease),
                        None => return,
                    },
                };
                self.take_over(now, reason, out);
            }
            ProbeOutcome::InUse(mac) => {
                let lost_silent = matches!(
                    watch.holder,
                    Holder::Lost {
                        peer: Some(p),
                        loss: Loss::Silence,
                        ..
                    } if p.mac == mac
                );
                if t.cause == Cause::Lost(Loss::Silence) && lost_silent {
                    let reason = Reason::HolderFrozen { holder: lost, mac };
                    self.take_over(now, reason, out);
                    return;
                }
                let known = self.fault() == Some(&Fault::Conflict(mac));
                self.counters.conflicts += u64::from(!known);
                let rank = self.rank(now, None);
                let retry = self.timing.conflict_retry() + self.timing.rank_delay(rank);
                self.schedule(now, retry, Cause::Retry);
                if !known {
                    let fault = RoleState::fault(Fault::Conflict(mac), self.watch());
                    self.go(now, fault, Reason::Conflict(mac), out);
                }
            }
        }
    }

    /// A master's probe of its own address, after a stall or when the address vanished.
    fn on_verified(
        &mut self,
        now: Instant,
        verification: Verification,
        outcome: ProbeOutcome,
        out: &mut Vec<Action>,
    ) {
        let vanished = verification == Verification::Restoring;
        match outcome {
            ProbeOutcome::Free if vanished => {
                out.push(Action::Note(
                    "the address vanished from the interface and nobody else has it; restoring it"
                        .into(),
                ));
                out.push(Action::AddAddress);
                out.push(Action::SendGarp);
            }
            ProbeOutcome::Free => {
                out.push(Action::Note("still the only holder after the stall".into()))
            }
            ProbeOutcome::InUse(mac) => {
                let watch = Watch {
                    holder: Holder::Unknown,
                    takeover: Some(Takeover::unranked(
                        now,
                        self.timing.startup_wait(),
                        Cause::Startup,
                    )),
                };
                let reason = Reason::AddressTaken { vanished, mac };
                self.go(now, RoleState::backup(watch), reason, out);
            }
        }
    }

    fn on_observed(&mut self, now: Instant, link_up: bool, present: bool, out: &mut Vec<Action>) {
        let link_fault = self.fault() == Some(&Fault::Link);
        if !link_up && !link_fault {
            let fault = RoleState::fault(Fault::Link, Watch::default());
            self.go(now, fault, Reason::LinkDown, out);
            return;
        }
        if link_up && link_fault {
            let watch = Watch {
                takeover: Some(Takeover::unranked(
                    now,
                    self.timing.startup_wait(),
                    Cause::Startup,
                )),
                ..self.watch()
            };
            self.enter_backup(now, watch, Reason::LinkUp, out);
            return;
        }
        match &mut self.state {
            RoleState::Master(m) if !present && m.verification.is_none() => {
                // Every add is preceded by a probe: someone may have taken it meanwhile.
                m.verification = Some(Verification::Restoring);
                out.push(Action::ProbeAddress);
            }
            RoleState::Backup { .. } | RoleState::Fault { .. } if present => {
                out.push(Action::Note(
                    "found a copy of the address while not MASTER; removing it".into(),
                ));
                out.push(Action::RemoveAddress);
            }
            _ => {}
        }
    }

    fn on_failed(&mut self, now: Instant, error: String, out: &mut Vec<Action>) {
        let retry = Takeover::ranked(now, self.timing.conflict_retry(), Cause::Retry);
        let watch = Watch {
            takeover: Some(retry),
            ..self.watch()
        };
        match &mut self.state {
            // The link fault stays the reason while the link is down.
            RoleState::Fault {
                fault: Fault::Link,
                watch: w,
            } => *w = watch,
            _ => {
                let fault = RoleState::fault(Fault::Failed(error.clone()), watch);
                self.go(now, fault, Reason::ActionFailed(error), out);
            }
        }
    }

    /// The operator's hand-over: the planned stop's resignation without the stop. Refused
    /// (a log line, nothing else) unless [`Machine::handover_target`] finds a successor.
    fn on_handover(&mut self, now: Instant, to: Option<IpAddr>, out: &mut Vec<Action>) {
        match self.handover_target(now, to) {
            Ok(to) => {
                self.hold_off_until = Some(now + Timing::HANDOVER_HOLD_OFF);
                self.step_down_to_backup(now, Reason::HandOverRequested { to }, out);
            }
            Err(refused) => out.push(Action::Note(format!("handover refused: {refused}"))),
        }
    }

    fn on_shutdown(&mut self, out: &mut Vec<Action>) {
        self.stopped = true;
        if self.role() == Role::Master {
            out.push(Action::RemoveAddress);
            out.push(Action::Resign {
                successor: self.best_backup(self.last_event),
            });
        }
        out.push(Action::Exit);
    }

    fn on_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        let timing = self.timing;
        self.peers
            .retain(|_, s| now.saturating_duration_since(s.at) < timing.memory(s.peer.role));
        if let RoleState::Backup {
            watch:
                Watch {
                    holder: Holder::Alive { peer, last },
                    ..
                },
            ..
        } = self.state
        {
            if now >= last + self.timing.timeout {
                self.lose_holder(now, Some(peer), Loss::Silence, out);
            } else if now >= last + self.timing.ask_after() && self.asked_after != Some(last) {
                // A late announce is not yet a dead holder: ask it on another path, its
                // open connection (answered by another thread of the holder's daemon).
                self.asked_after = Some(last);
                out.push(Action::AskHolder);
            }
        }
        self.on_takeover_timer(now, out);
        let settled = self.state.settled_master();
        if let RoleState::Master(m) = &mut self.state {
            if settled {
                if m.garp_followup.is_some_and(|t| now >= t) {
                    m.garp_followup = None;
                    out.push(Action::SendGarp);
                }
                if let (Some(t), Some(every)) = (m.next_refresh, self.timing.garp_refresh) {
                    if now >= t {
                        m.next_refresh = Some(now + every);
                        out.push(Action::SendGarp);
                    }
                }
                match m.suspect {
                    Some(s) if now >= s.until => {
                        m.suspect = None;
                        out.push(Action::Note(format!(
                            "{} silent for {} s since we took over; no longer telling it we hold",
                            s.node,
                            Timing::SUSPECT_FOR.as_secs()
                        )));
                    }
                    Some(s) if now >= s.next => {
                        m.suspect = Some(Suspect {
                            next: now + Timing::SUSPECT_PROBE,
                            ..s
                        });
                        out.push(Action::AnnounceTo(s.node));
                    }
                    _ => {}
                }
            }
        }
        let verifying = matches!(&self.state, RoleState::Master(m) if m.verification.is_some());
        let due = now >= self.next_announce || self.saying(now) != self.said;
        if due && !verifying {
            self.announced(now);
            out.push(Action::Announce);
        }
    }

    /// A due take-over: wait out better backups first, then probe the address.
    fn on_takeover_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.fault() == Some(&Fault::Link)
            || !self.may_take_over()
            || (self.lease_gated && self.lease.is_none())
        {
            return;
        }
        let Some(t) = self.watch().takeover else {
            return;
        };
        if t.probing || now < t.at {
            return;
        }
        // Under a lease, another node's announce is stale: it lost the key before we got it.
        let next = if !self.lease_gated && self.master_announced_since(t.scheduled) {
            None
        } else if !t.ranked {
            let rank = self.rank(now, None);
            if rank > 0 {
                out.push(Action::Note(format!(
                    "{rank} better backup(s) around; waiting for them first"
                )));
            }
            Some(Takeover {
                at: now + self.timing.rank_delay(rank),
                ranked: true,
                ..t
            })
        } else {
            out.push(Action::ProbeAddress);
            Some(Takeover { probing: true, ..t })
        };
        if let Some(w) = self.state.watch_mut() {
            w.takeover = next;
        }
        if next.is_some_and(|n| n.ranked && !n.probing && n.at <= now) {
            self.on_takeover_timer(now, out);
        }
    }

    fn on_elected(&mut self, now: Instant, lease: Lease, out: &mut Vec<Action>) {
        if !self.lease_gated {
            out.push(Action::Note(
                "elected, but the LAN decides here; ignored".into(),
            ));
            return;
        }
        self.lease = Some(lease);
        if self.role() == Role::Master {
            self.reason = Reason::Elected(lease);
            return;
        }
        // The old holder just said it removed the address: a brief look will do.
        let resigned = self.just_resigned(now).is_some()
            || self
                .holder_released
                .is_some_and(|at| now < at + self.timing.interval);
        if resigned && self.may_take_over() && self.fault() != Some(&Fault::Link) {
            if let Some(w) = self.state.watch_mut() {
                w.takeover = Some(Takeover {
                    probing: true,
                    ..Takeover::ranked(now, Duration::ZERO, Cause::Elected)
                });
                out.push(Action::ProbeHandedOver);
            }
            return;
        }
        // At once: the lease proves nobody else may hold; the probe still looks first.
        self.schedule(now, Duration::ZERO, Cause::Elected);
    }

    fn on_election_lost(&mut self, now: Instant, why: String, out: &mut Vec<Action>) {
        self.lease = None;
        if self.role() == Role::Master {
            let watch = Watch::default();
            self.go(
                now,
                RoleState::backup(watch),
                Reason::ElectionLost(why),
                out,
            );
            return;
        }
        if let Some(w) = self.state.watch_mut() {
            w.takeover = None;
        }
        out.push(Action::Note(format!("election lost: {why}")));
    }

    fn master_announced_since(&self, t: Instant) -> bool {
        matches!(self.holder(), Holder::Alive { last, .. } if last >= t)
            || self
                .peers
                .values()
                .any(|s| s.peer.role == Role::Master && s.at >= t)
    }
}
