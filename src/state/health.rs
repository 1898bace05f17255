//! How the service checks' verdict moves the machine (see the rules in the module above).
//!
//! - Pending (no result yet from some check): the node stays BACKUP but does not take over.
//! - Failing (a check without a weight failed `fall` times): a BACKUP goes to FAULT; a
//!   MASTER hands the address to the best healthy backup that announces (a planned
//!   hand-over naming it as successor) and goes to FAULT. With no healthy backup around it
//!   keeps the address: a service that may be dead beats an address that surely is. It
//!   hands over as soon as a healthy backup announces. A node in FAULT never takes over.
//! - A penalty (the weights of failing weighted checks) lowers the priority the node
//!   announces and compares with; a MASTER whose lowered priority falls below a live
//!   backup's hands over to it, with or without `preempt`.
//! - Healthy again: FAULT returns to BACKUP; it takes the address back only through
//!   preemption, if configured.

use std::time::Instant;

use super::{Action, Cause, Fault, Holder, Machine, Role};
use crate::vocabulary::{Health, Priority, Verdict};

impl Machine {
    /// The priority this node announces and compares with: configured minus the penalty.
    pub fn priority(&self) -> Priority {
        Priority(
            self.me
                .priority
                .0
                .saturating_sub(self.health.penalty)
                .max(1),
        )
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Only a node whose checks all pass may add the address.
    pub(super) fn may_take_over(&self) -> bool {
        self.health.verdict == Verdict::Healthy
    }

    pub(super) fn on_health(&mut self, now: Instant, health: Health, out: &mut Vec<Action>) {
        let before = self.priority();
        let was = self.health.verdict;
        self.health = health;
        let start = out.len();
        match (self.health.verdict, self.role) {
            (Verdict::Failing, Role::Backup) => {
                self.takeover = None;
                let reason = format!("service checks failing: {}", self.health.detail);
                self.enter(
                    now,
                    Role::Fault,
                    Some(Fault::Unhealthy(self.health.detail.clone())),
                    reason,
                    out,
                );
            }
            (Verdict::Failing, Role::Fault) => {
                if let Some(Fault::Unhealthy(d)) = &mut self.fault {
                    d.clone_from(&self.health.detail);
                }
            }
            (Verdict::Healthy, Role::Fault) if matches!(self.fault, Some(Fault::Unhealthy(_))) => {
                self.enter(
                    now,
                    Role::Backup,
                    None,
                    "service checks pass again".into(),
                    out,
                );
                match self.holder {
                    Holder::Alive { peer, .. } => self.update_preempt(now, peer),
                    // Nobody held the address while we were down (or we lost track): look.
                    _ => self.schedule_unranked(now, self.timing.startup_wait(), Cause::Recovered),
                }
            }
            (Verdict::Healthy, Role::Master) if was == Verdict::Failing => {
                let reason = "service checks pass again".to_string();
                out.push(Action::Note(format!("{reason}; keeping the address")));
                self.reason = reason;
            }
            _ => {}
        }
        self.yield_for_health(now, out);
        let after = self.priority();
        if after != before {
            out.push(Action::Note(format!(
                "priority {after} (configured {}{})",
                self.me.priority,
                if self.health.penalty > 0 {
                    format!(", -{} for failing checks", self.health.penalty)
                } else {
                    String::new()
                }
            )));
            if !out[start..]
                .iter()
                .any(|a| matches!(a, Action::Transition { .. }))
            {
                // Tell the group at once (a transition announces by itself): ranks,
                // preemption and two-master decisions use it.
                out.push(Action::Announce);
            }
            if let (Role::Backup, Holder::Alive { peer, .. }) = (self.role, self.holder) {
                self.update_preempt(now, peer);
            }
        }
    }

    /// A MASTER whose checks fail, or whose lowered priority is outranked, hands the address
    /// over to the best live backup; true if it did.
    pub(super) fn yield_for_health(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        if self.role != Role::Master || self.verifying {
            return false;
        }
        match self.health.verdict {
            Verdict::Failing => match self.best_backup(now) {
                Some(best) => {
                    let detail = self.health.detail.clone();
                    let reason = format!("service checks failing: {detail}; handing the address over to healthy backup {best}");
                    self.step_down(
                        now,
                        Role::Fault,
                        Some(Fault::Unhealthy(detail)),
                        Some(best),
                        reason,
                        out,
                    );
                    true
                }
                None => {
                    let reason = format!(
                        "service checks failing: {}; keeping the address: no healthy backup announces",
                        self.health.detail
                    );
                    if self.reason != reason {
                        out.push(Action::Note(reason.clone()));
                        self.reason = reason;
                    }
                    false
                }
            },
            _ if self.health.penalty > 0 => {
                let mine = self.priority();
                let Some(best) = self.best_backup_peer(now).filter(|p| p.priority > mine) else {
                    return false;
                };
                let reason = format!(
                    "priority lowered to {mine} by failing checks ({}); handing the address over to {} (priority {})",
                    self.health.detail, best.node, best.priority
                );
                self.step_down(now, Role::Backup, None, Some(best.node), reason, out);
                // If the successor does not take over, take the address back.
                self.schedule(now, self.timing.timeout, Cause::Resigned);
                true
            }
            _ => false,
        }
    }
}
