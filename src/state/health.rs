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

use super::{Action, Cause, Fault, Holder, Machine, RoleState, Takeover, Watch};
use crate::vocabulary::{Health, Priority, Reason, Verdict};

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
        let detail = self.health.detail.clone();
        match (self.health.verdict, &mut self.state) {
            (Verdict::Failing, RoleState::Backup { watch, .. }) => {
                let watch = Watch {
                    takeover: None,
                    ..*watch
                };
                let fault = RoleState::fault(Fault::Unhealthy(detail.clone()), watch);
                self.go(now, fault, Reason::ChecksFailing(detail), out);
            }
            (
                Verdict::Failing,
                RoleState::Fault {
                    fault: Fault::Unhealthy(d),
                    ..
                },
            ) => *d = detail,
            (
                Verdict::Healthy,
                RoleState::Fault {
                    fault: Fault::Unhealthy(_),
                    watch,
                },
            ) => {
                let watch = *watch;
                self.go(now, RoleState::backup(watch), Reason::ChecksPass, out);
                match watch.holder {
                    Holder::Alive { peer, .. } => self.update_preempt(now, peer),
                    // Nobody held the address while we were down (or we lost track): look.
                    _ => {
                        let wait = self.timing.startup_wait();
                        if let Some(w) = self.state.watch_mut() {
                            w.takeover = Some(Takeover::unranked(now, wait, Cause::Recovered));
                        }
                    }
                }
            }
            (Verdict::Healthy, RoleState::Master(_)) if was == Verdict::Failing => {
                let reason = Reason::ChecksPass;
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
            // The new priority is announced at once by the timers (ranks, preemption and
            // two-master decisions use it).
            if let Holder::Alive { peer, .. } = self.holder() {
                self.update_preempt(now, peer);
            }
        }
    }

    /// A MASTER whose checks fail, or whose lowered priority is outranked, hands the address
    /// over to the best live backup; true if it did.
    pub(super) fn yield_for_health(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        if !self.state.settled_master() {
            return false;
        }
        let detail = self.health.detail.clone();
        match self.health.verdict {
            // Under a lease the address goes at once; the daemon then resigns the key.
            Verdict::Failing if self.lease_gated => {
                let fault = RoleState::fault(Fault::Unhealthy(detail.clone()), Watch::default());
                self.go(now, fault, Reason::ChecksFailing(detail), out);
                true
            }
            _ if self.lease_gated => false,
            Verdict::Failing => match self.best_backup(now) {
                Some(to) => {
                    let fault =
                        RoleState::fault(Fault::Unhealthy(detail.clone()), Watch::default());
                    self.go(now, fault, Reason::UnhealthyHandover { detail, to }, out);
                    true
                }
                None => {
                    let reason = Reason::UnhealthyKeeping(detail);
                    if self.reason != reason {
                        out.push(Action::Note(reason.to_string()));
                        self.reason = reason;
                    }
                    false
                }
            },
            _ if self.health.penalty > 0 => {
                let ours = self.priority();
                let Some(best) = self.best_backup_peer(now).filter(|p| p.priority > ours) else {
                    return false;
                };
                let reason = Reason::PenaltyHandover {
                    ours,
                    detail,
                    to: best.node,
                    theirs: best.priority,
                };
                self.step_down_to_backup(now, reason, out);
                true
            }
            _ => false,
        }
    }
}
