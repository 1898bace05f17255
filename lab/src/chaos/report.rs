//! The words of a chaos run: one line per fault and the summary (faults by
//! kind, the worst figure of each invariant against its bound, each daemon's
//! resources from first to last reading).

use std::fmt::Write;
use std::time::Duration;

use super::faults::Kind;
use super::invariants::{Bounds, Life, Stretches, SLACK};

/// What one fault did.
pub struct Record {
    pub number: usize,
    /// Since the start of the run.
    pub at: Duration,
    pub kind: Kind,
    /// The node(s) hit, with their role, e.g. "n2 (holder)".
    pub target: String,
    pub hold: Duration,
    pub stretches: Stretches,
    /// Longest time the client got no answer, from the injection on.
    pub outage: Duration,
    /// From the end of the fault until one holder was steady.
    pub settled: Option<Duration>,
    /// What the fault itself reports (the stranger's datagram counts).
    pub note: Option<String>,
    /// Broken invariants (and faults that could not be applied).
    pub broken: Vec<String>,
}

impl Record {
    /// The fault's line, e.g.
    /// `  12.3s #7   freeze     n2 (holder)   900 ms  dual    0 ms  none  310 ms  outage    0 ms  steady  410 ms`.
    pub fn line(&self) -> String {
        let settled = self
            .settled
            .map_or("never".to_string(), |d| format!("{:>4} ms", d.as_millis()));
        let mut s = format!(
            "{:>7.1}s #{:<4} {:<9} {:<15} {:>5} ms  dual {:>4} ms  none {:>4} ms  outage {:>4} ms  steady {settled}",
            self.at.as_secs_f64(),
            self.number,
            self.kind.name(),
            self.target,
            self.hold.as_millis(),
            self.stretches.dual.as_millis(),
            self.stretches.no_holder.as_millis(),
            self.outage.as_millis(),
        );
        if let Some(n) = &self.note {
            s += &format!("  {n}");
        }
        for b in &self.broken {
            s += &format!("\n         BROKEN: {b}");
        }
        s
    }
}

/// The summary of a run.
pub fn summary(
    records: &[Record],
    lives: &[Life],
    exits: &[String],
    bounds: Bounds,
    seed: u64,
    ran: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "chaos summary: {} faults in {:.1} min, seed {seed}",
        records.len(),
        ran.as_secs_f64() / 60.0
    );
    let _ = writeln!(
        s,
        "| fault | count | worst dual holders after it | worst no holder | worst client outage | broken |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: |");
    for kind in Kind::ALL {
        let of: Vec<&Record> = records.iter().filter(|r| r.kind == kind).collect();
        let worst = |f: fn(&Record) -> Duration| {
            of.iter()
                .map(|r| f(r))
                .max()
                .unwrap_or_default()
                .as_millis()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} ms | {} ms | {} ms | {} |",
            kind.name(),
            of.len(),
            worst(|r| r.stretches.dual),
            worst(|r| r.stretches.no_holder),
            worst(|r| r.outage),
            of.iter().filter(|r| !r.broken.is_empty()).count()
        );
    }
    let worst = |f: fn(&Record) -> Duration| records.iter().map(f).max().unwrap_or_default();
    let verdict = |ok: bool| if ok { "ok" } else { "BROKEN" };
    let (dual, none) = (
        worst(|r| r.stretches.dual),
        worst(|r| r.stretches.no_holder),
    );
    let _ = writeln!(s, "\n| invariant | worst | bound | |");
    let _ = writeln!(s, "| --- | ---: | ---: | --- |");
    let _ = writeln!(
        s,
        "| two holders after a fault ended | {} ms | {} ms | {} |",
        dual.as_millis(),
        bounds.dual.as_millis(),
        verdict(dual <= bounds.dual)
    );
    let _ = writeln!(
        s,
        "| no healthy holder while a healthy node exists | {} ms | {} ms | {} |",
        none.as_millis(),
        bounds.no_holder.as_millis(),
        verdict(none <= bounds.no_holder)
    );
    let _ = writeln!(
        s,
        "| daemons exited unexpectedly | {} | 0 | {} |",
        exits.len(),
        verdict(exits.is_empty())
    );
    let grown = lives
        .iter()
        .filter(|l| !l.last.grown_from(&l.first).is_empty())
        .count();
    let _ = writeln!(
        s,
        "| daemons whose fds/threads/RSS grew (slack +{} fds, +{} threads, +{} KiB) | {grown} of {} | 0 | {} |",
        SLACK.fds,
        SLACK.threads,
        SLACK.rss_kib,
        lives.len(),
        verdict(grown == 0)
    );
    let _ = writeln!(
        s,
        "\n| daemon | pid | role | readings | fds | threads | RSS KiB |"
    );
    let _ = writeln!(s, "| --- | ---: | --- | ---: | --- | --- | --- |");
    // Each node's longest-lived daemon in each role, and any that grew.
    let mut shown: Vec<&Life> = Vec::new();
    for l in lives {
        let longest = lives
            .iter()
            .filter(|o| o.node == l.node && o.holder == l.holder)
            .max_by_key(|o| o.readings)
            .is_some_and(|o| o.pid == l.pid);
        if longest || !l.last.grown_from(&l.first).is_empty() {
            shown.push(l);
        }
    }
    shown.sort_by(|a, b| (&a.node, a.holder).cmp(&(&b.node, b.holder)));
    for l in shown {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} -> {} | {} -> {} | {} -> {} |",
            l.node,
            l.pid,
            l.role(),
            l.readings,
            l.first.fds,
            l.last.fds,
            l.first.threads,
            l.last.threads,
            l.first.rss_kib,
            l.last.rss_kib
        );
    }
    s
}
