//! One check's rise/fall hysteresis: a pure counter fed with pass/fail results.
//!
//! The first result sets the state at once (a node must not wait `rise` runs to learn its
//! service is up at start-up, nor serve `fall` runs from a service that never came up).
//! After that an UP check goes DOWN only after `fall` failures in a row and a DOWN check
//! comes back only after `rise` successes in a row: one lost probe or one lucky one does
//! not move the address.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// No result yet.
    Pending,
    Up,
    Down,
}

impl fmt::Display for CheckState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckState::Pending => "pending",
            CheckState::Up => "up",
            CheckState::Down => "down",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    rise: u32,
    fall: u32,
    state: CheckState,
    /// Results in a row that disagree with `state` (progress towards a change).
    streak: u32,
}

impl Counter {
    pub fn new(rise: u32, fall: u32) -> Counter {
        Counter {
            rise: rise.max(1),
            fall: fall.max(1),
            state: CheckState::Pending,
            streak: 0,
        }
    }

    pub fn state(&self) -> CheckState {
        self.state
    }

    /// Results in a row against the current state.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Feeds one result; returns the new state when it changed.
    pub fn record(&mut self, ok: bool) -> Option<CheckState> {
        let (next, needed) = match (self.state, ok) {
            (CheckState::Pending, true) => (CheckState::Up, 1),
            (CheckState::Pending, false) => (CheckState::Down, 1),
            (CheckState::Up, true) | (CheckState::Down, false) => {
                self.streak = 0;
                return None;
            }
            (CheckState::Up, false) => (CheckState::Down, self.fall),
            (CheckState::Down, true) => (CheckState::Up, self.rise),
        };
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        self.state = next;
        self.streak = 0;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckState::*;

    /// Feeds `results` ('+' pass, '-' fail) and returns the state after each.
    fn run(rise: u32, fall: u32, results: &str) -> String {
        let mut c = Counter::new(rise, fall);
        results
            .chars()
            .map(|r| {
                c.record(r == '+');
                match c.state() {
                    Pending => '?',
                    Up => 'U',
                    Down => 'D',
                }
            })
            .collect()
    }

    #[test]
    fn first_result_decides() {
        assert_eq!(run(2, 3, "+"), "U");
        assert_eq!(run(2, 3, "-"), "D");
        assert_eq!(Counter::new(2, 3).state(), Pending);
    }

    #[test]
    fn falls_after_fall_failures_in_a_row() {
        assert_eq!(run(2, 3, "+---"), "UUUD");
        assert_eq!(run(2, 1, "+-"), "UD");
    }

    #[test]
    fn a_success_resets_the_fall_count() {
        assert_eq!(run(2, 3, "+--+--+--"), "UUUUUUUUU");
    }

    #[test]
    fn rises_after_rise_successes_in_a_row() {
        assert_eq!(run(2, 3, "-++"), "DDU");
        assert_eq!(run(3, 3, "-+-++-+++"), "DDDDDDDDU");
    }

    #[test]
    fn flapping_service_stays_down() {
        assert_eq!(run(2, 3, "+---+-+-+-+-"), "UUUDDDDDDDDD");
    }

    #[test]
    fn record_reports_only_changes_and_streak_counts_progress() {
        let mut c = Counter::new(2, 2);
        assert_eq!(c.record(true), Some(Up));
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.streak(), 1);
        assert_eq!(c.record(false), Some(Down));
        assert_eq!(c.streak(), 0);
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), Some(Up));
    }

    #[test]
    fn zero_counts_act_as_one() {
        assert_eq!(run(0, 0, "+-+"), "UDU");
    }
}
