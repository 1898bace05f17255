//! The invariants of a chaos run, as pure functions of what one fault's
//! watch recorded (holder samples, and the moments nodes stopped or started
//! being healthy), plus the daemons' resource readings. Definitions (also in
//! docs/chaos.md):
//!
//! - **dual holders**: the longest unbroken stretch of samples with two or
//!   more nodes carrying the address, counted only outside the fault: before
//!   it was injected and from the moment it ended. Bound: one interval.
//! - **no holder**: the longest unbroken stretch of samples in which no
//!   *healthy* node carries the address while at least one healthy node
//!   exists. A node is unhealthy from the instant a fault takes it out
//!   (signal sent, link set down) until it is back (restarted, continued,
//!   link up); a frozen or cut-off holder still has the address but serves
//!   nobody, so its loss costs the detection time, which the bound allows.
//!   Bound: the detection timeout plus 50 ms.
//! - **resources**: each daemon's open fds, threads and RSS just before
//!   the last fault, against the first reading in the same role (each taken
//!   when the group has been steady for 800 ms or more, longer than a
//!   heartbeat connection outlives a peer that went away): the holder serves one heartbeat connection (an fd and a
//!   thread) per backup, a backup keeps one to the holder.

use std::time::Duration;

use crate::HolderSample;

/// What happened during one fault, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The fault begins.
    Inject,
    /// The fault is over: from here on the group has what it needs to have
    /// exactly one holder.
    End,
    /// The node stops being healthy (stopped, frozen, cut off).
    Out(String),
    /// The node is healthy again.
    In(String),
}

impl Event {
    /// The mark label in the watch.
    pub fn label(&self) -> String {
        match self {
            Event::Inject => "inject".into(),
            Event::End => "end".into(),
            Event::Out(n) => format!("out {n}"),
            Event::In(n) => format!("in {n}"),
        }
    }
}

/// Bounds of the two timing invariants.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub dual: Duration,
    pub no_holder: Duration,
}

/// The worst stretches of one fault's watch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stretches {
    /// Longest dual-holder stretch outside the fault (see the module docs).
    pub dual: Duration,
    /// Longest stretch without a healthy holder while a healthy node existed.
    pub no_holder: Duration,
}

/// Measures one fault's watch: `samples` in time order, `events` with their
/// times, `healthy` the healthy nodes when the watch began, `end` its length.
pub fn measure(
    samples: &[HolderSample],
    events: &[(Duration, Event)],
    healthy: &[String],
    end: Duration,
) -> Stretches {
    let at = |e: &Event| events.iter().find(|(_, x)| x == e).map(|(t, _)| *t);
    let inject = at(&Event::Inject).unwrap_or(end);
    let ended = at(&Event::End).unwrap_or(end);
    let mut healthy: Vec<String> = healthy.to_vec();
    let mut next_event = 0;
    let (mut dual_from, mut none_from) = (None::<Duration>, None::<Duration>);
    let mut worst = Stretches::default();
    for (i, s) in samples.iter().enumerate() {
        while let Some((_, e)) = events.get(next_event).filter(|(t, _)| *t <= s.at) {
            match e {
                Event::Out(n) => healthy.retain(|h| h != n),
                Event::In(n) if !healthy.contains(n) => healthy.push(n.clone()),
                _ => {}
            }
            next_event += 1;
        }
        let until = samples.get(i + 1).map_or(end, |n| n.at).max(s.at);
        if s.holders.len() >= 2 {
            let from = *dual_from.get_or_insert(s.at);
            // Only the parts before the injection and after the end count.
            let before = until.min(inject).saturating_sub(from);
            let after = until.saturating_sub(from.max(ended));
            worst.dual = worst.dual.max(before).max(after);
        } else {
            dual_from = None;
        }
        let serving = s.holders.iter().any(|h| healthy.contains(h));
        if !serving && !healthy.is_empty() {
            let from = *none_from.get_or_insert(s.at);
            worst.no_holder = worst.no_holder.max(until - from);
        } else {
            none_from = None;
        }
    }
    worst
}

/// One daemon's resource use, read from `/proc`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    pub fds: usize,
    pub threads: usize,
    pub rss_kib: u64,
}

/// How much a daemon may grow from its first steady reading to its last:
/// a heartbeat connection being re-dialled and its reader thread, and a
/// little allocator slack.
pub const SLACK: Usage = Usage {
    fds: 2,
    threads: 1,
    rss_kib: 1024,
};

impl Usage {
    /// Reads `/proc/<pid>/fd` and `/proc/<pid>/status`.
    pub fn read(pid: u32) -> Result<Usage, String> {
        let fd_dir = format!("/proc/{pid}/fd");
        let fds = std::fs::read_dir(&fd_dir)
            .map_err(|e| format!("read {fd_dir}: {e}"))?
            .count();
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
        let field = |key: &str| -> Result<u64, String> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{path}: no {key} line"))
        };
        Ok(Usage {
            fds,
            threads: field("Threads:")? as usize,
            rss_kib: field("VmRSS:")?,
        })
    }

    /// What grew by more than [`SLACK`] from `first` to `self`, in words.
    pub fn grown_from(&self, first: &Usage) -> Vec<String> {
        let mut out = Vec::new();
        if self.fds > first.fds + SLACK.fds {
            out.push(format!("fds {} -> {}", first.fds, self.fds));
        }
        if self.threads > first.threads + SLACK.threads {
            out.push(format!("threads {} -> {}", first.threads, self.threads));
        }
        if self.rss_kib > first.rss_kib + SLACK.rss_kib {
            out.push(format!("RSS {} -> {} KiB", first.rss_kib, self.rss_kib));
        }
        out
    }
}

/// One daemon process in one role, from its first steady reading to its last.
#[derive(Clone, Debug)]
pub struct Life {
    pub node: String,
    pub pid: u32,
    /// Whether it held the address at these readings.
    pub holder: bool,
    pub first: Usage,
    pub last: Usage,
    pub readings: usize,
}

impl Life {
    pub fn role(&self) -> &'static str {
        if self.holder {
            "holder"
        } else {
            "backup"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floatip::ms;

    fn s(at: u64, holders: &[&str]) -> HolderSample {
        HolderSample {
            at: ms(at),
            holders: holders.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn nodes() -> Vec<String> {
        ["n1", "n2", "n3"].map(String::from).to_vec()
    }

    #[test]
    fn a_frozen_holder_costs_the_time_until_a_backup_takes_over() {
        let samples = [
            s(0, &["n1"]),
            s(100, &["n1"]),
            s(400, &["n1", "n2"]),
            s(1000, &["n1", "n2"]),
            s(1040, &["n2"]),
        ];
        let events = [
            (ms(50), Event::Inject),
            (ms(50), Event::Out("n1".into())),
            (ms(950), Event::In("n1".into())),
            (ms(950), Event::End),
        ];
        let got = measure(&samples, &events, &nodes(), ms(1100));
        // n1 stopped serving at 50 ms (seen at 100), n2 took over at 400.
        assert_eq!(got.no_holder, ms(300));
        // Two holders from 400 to 1040, but the fault ended at 950.
        assert_eq!(got.dual, ms(90));
    }

    #[test]
    fn two_holders_before_the_fault_count_in_full() {
        let samples = [s(0, &["n1", "n2"]), s(30, &["n1"]), s(60, &["n1"])];
        let events = [(ms(50), Event::Inject), (ms(55), Event::End)];
        let got = measure(&samples, &events, &nodes(), ms(100));
        assert_eq!(got.dual, ms(30));
        assert_eq!(got.no_holder, ms(0));
    }

    #[test]
    fn a_gap_after_the_end_counts_up_to_the_watch_end() {
        let samples = [s(0, &["n1"]), s(10, &[]), s(20, &[])];
        let events = [(ms(5), Event::Inject), (ms(6), Event::End)];
        let got = measure(&samples, &events, &nodes(), ms(500));
        assert_eq!(got.no_holder, ms(490));
    }

    #[test]
    fn no_healthy_node_means_no_gap_to_count() {
        let samples = [s(0, &["n1"]), s(10, &[]), s(20, &["n1"])];
        let events = [
            (ms(5), Event::Inject),
            (ms(5), Event::Out("n1".into())),
            (ms(15), Event::In("n1".into())),
            (ms(15), Event::End),
        ];
        let got = measure(&samples, &events, &["n1".to_string()], ms(30));
        assert_eq!(got.no_holder, ms(0));
    }

    #[test]
    fn growth_beyond_the_slack_is_named() {
        let first = Usage {
            fds: 10,
            threads: 5,
            rss_kib: 4000,
        };
        let same = Usage {
            fds: 12,
            threads: 6,
            rss_kib: 5000,
        };
        assert!(same.grown_from(&first).is_empty());
        let leak = Usage {
            fds: 13,
            threads: 7,
            rss_kib: 5100,
        };
        assert_eq!(
            leak.grown_from(&first),
            ["fds 10 -> 13", "threads 5 -> 7", "RSS 4000 -> 5100 KiB"]
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let u = Usage::read(std::process::id()).expect("read own /proc");
        assert!(u.fds >= 3 && u.threads >= 1 && u.rss_kib > 0, "{u:?}");
    }
}
