//! Service checks (`floating_ip.track`): is the service behind the address alive?
//!
//! One thread per check runs it every interval ([`probe`]) and sends each [`Sample`] to
//! the daemon loop; it owns nothing else. The loop feeds samples to the [`Tracker`]
//! (pure: each check's rise/fall [`Counter`], and the aggregate [`Health`] the state
//! machine acts on) and hands a changed verdict to the machine as `Event::Health`.

mod counter;
mod probe;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Instant;

pub use counter::{CheckState, Counter};
pub use probe::Sample;

use crate::config::Check;
use crate::vocabulary::{Health, Verdict};

/// One run of check `index` (`floating_ip.track[index]`) of the checks started as
/// `generation` (a reload starts a new generation; runs of an older one are stale).
#[derive(Debug)]
pub struct Run {
    pub index: usize,
    pub generation: u64,
    pub sample: Sample,
}

/// The running check threads; dropping it stops them after their current run.
pub struct Checks {
    stop: Arc<AtomicBool>,
}

impl Drop for Checks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts one thread per check; each ends when the receiver is gone or [`Checks`] dropped.
pub fn start<T: From<Run> + Send + 'static>(
    checks: &[Check],
    generation: u64,
    events: SyncSender<T>,
) -> std::io::Result<Checks> {
    let stop = Arc::new(AtomicBool::new(false));
    for (index, check) in checks.iter().enumerate() {
        let check = check.clone();
        let events = events.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("fip-check-{index}"))
            .spawn(move || loop {
                let started = Instant::now();
                let sample = probe::run(&check.target, check.timeout);
                let run = Run {
                    index,
                    generation,
                    sample,
                };
                if stop.load(Ordering::Relaxed) || events.send(run.into()).is_err() {
                    return;
                }
                // From start to start; a run that overran is followed at once.
                std::thread::sleep(
                    (started + check.interval).saturating_duration_since(Instant::now()),
                );
            })?;
    }
    Ok(Checks { stop })
}

/// A check's state changing, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub from: CheckState,
    pub to: CheckState,
    /// The last result and how many in a row led to the change.
    pub why: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "check {:?}: {} -> {}: {}",
            self.name, self.from, self.to, self.why
        )
    }
}

/// One check and what its runs said so far.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub check: Check,
    pub counter: Counter,
    /// The last result and when it came.
    pub last: Option<(Sample, Instant)>,
    /// When the state last changed.
    pub since: Option<Instant>,
    pub runs: u64,
    pub failures: u64,
}

/// Every check's state; pure apart from the samples and times handed in.
#[derive(Debug, Clone)]
pub struct Tracker {
    checks: Vec<Tracked>,
}

impl Tracker {
    pub fn new(checks: &[Check]) -> Tracker {
        Tracker {
            checks: checks
                .iter()
                .map(|c| Tracked {
                    check: c.clone(),
                    counter: Counter::new(c.rise, c.fall),
                    last: None,
                    since: None,
                    runs: 0,
                    failures: 0,
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    pub fn name(&self, index: usize) -> &str {
        self.checks
            .get(index)
            .map_or("?", |t| t.check.name.as_str())
    }

    /// Records one result of check `index` at `now`; returns the check's state change, if any.
    pub fn record(&mut self, index: usize, sample: Sample, now: Instant) -> Option<Change> {
        let t = self.checks.get_mut(index)?;
        t.runs += 1;
        t.failures += u64::from(!sample.ok);
        let from = t.counter.state();
        let in_a_row = t.counter.streak() + 1;
        let changed = t.counter.record(sample.ok);
        let why = match (changed, from) {
            (_, CheckState::Pending) => format!("first result: {}", sample.detail),
            (Some(CheckState::Down), _) => {
                format!("failed {in_a_row} times in a row, last: {}", sample.detail)
            }
            _ => format!("passed {in_a_row} times in a row, last: {}", sample.detail),
        };
        t.last = Some((sample, now));
        let to = changed?;
        t.since = Some(now);
        Some(Change {
            name: t.check.name.clone(),
            from,
            to,
            why,
        })
    }

    /// The verdict over all checks: failing if a check without a weight is down, pending
    /// while any check has no result, the weights of the down weighted checks as penalty.
    pub fn health(&self) -> Health {
        if self.checks.is_empty() {
            return Health::healthy();
        }
        let mut failing = Vec::new();
        let mut degraded = Vec::new();
        let mut penalty: u32 = 0;
        let mut pending = false;
        for t in &self.checks {
            let last = t
                .last
                .as_ref()
                .map_or(String::new(), |(s, _)| s.detail.clone());
            match (t.counter.state(), t.check.weight) {
                (CheckState::Pending, _) => pending = true,
                (CheckState::Up, _) => {}
                (CheckState::Down, None) => failing.push(format!("{} down ({last})", t.check.name)),
                (CheckState::Down, Some(w)) => {
                    penalty += u32::from(w);
                    degraded.push(format!("{} down ({last}, -{w})", t.check.name));
                }
            }
        }
        let verdict = if !failing.is_empty() {
            Verdict::Failing
        } else if pending {
            Verdict::Pending
        } else {
            Verdict::Healthy
        };
        let mut detail: Vec<String> = failing;
        detail.extend(degraded);
        if verdict == Verdict::Pending && detail.is_empty() {
            detail.push("waiting for the first check results".into());
        }
        Health {
            verdict,
            penalty: penalty.min(253) as u8,
            detail: detail.join("; "),
        }
    }

    pub fn checks(&self) -> &[Tracked] {
        &self.checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(ok: bool) -> Sample {
        Sample {
            ok,
            detail: if ok {
                "connected".into()
            } else {
                "connection refused".into()
            },
            took: Duration::from_millis(1),
        }
    }

    #[test]
    fn no_checks_is_healthy() {
        assert_eq!(Tracker::new(&[]).health(), Health::healthy());
    }

    #[test]
    fn pending_until_every_check_has_a_result() {
        let now = Instant::now();
        let mut t = Tracker::new(&[Check::example("a", None), Check::example("b", Some(20))]);
        assert_eq!(t.health().verdict, Verdict::Pending);
        t.record(0, sample(true), now);
        assert_eq!(t.health().verdict, Verdict::Pending);
        let change = t.record(1, sample(true), now).unwrap();
        assert_eq!(
            change.to_string(),
            "check \"b\": pending -> up: first result: connected"
        );
        assert_eq!(t.health(), Health::healthy());
    }

    #[test]
    fn a_down_check_without_weight_fails_the_node() {
        let now = Instant::now();
        let mut t = Tracker::new(&[Check::example("web", None)]);
        t.record(0, sample(true), now);
        assert_eq!(t.record(0, sample(false), now), None);
        assert_eq!(t.record(0, sample(false), now), None);
        let change = t.record(0, sample(false), now).unwrap();
        assert_eq!(
            change.why,
            "failed 3 times in a row, last: connection refused"
        );
        let h = t.health();
        assert_eq!(h.verdict, Verdict::Failing);
        assert_eq!(h.penalty, 0);
        assert_eq!(h.detail, "web down (connection refused)");
    }

    #[test]
    fn weighted_checks_add_penalties_not_faults() {
        let now = Instant::now();
        let mut t = Tracker::new(&[
            Check::example("a", Some(30)),
            Check::example("b", Some(250)),
            Check::example("c", None),
        ]);
        t.record(2, sample(true), now);
        t.record(0, sample(false), now);
        t.record(1, sample(true), now);
        let h = t.health();
        assert_eq!((h.verdict, h.penalty), (Verdict::Healthy, 30));
        assert_eq!(h.detail, "a down (connection refused, -30)");
        for _ in 0..3 {
            t.record(1, sample(false), now);
        }
        assert_eq!(t.health().penalty, 253, "capped");
    }

    #[test]
    fn unknown_index_is_ignored() {
        let mut t = Tracker::new(&[Check::example("web", None)]);
        assert_eq!(t.record(5, sample(true), Instant::now()), None);
    }
}
