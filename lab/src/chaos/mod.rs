//! A randomised run against a floatip group: `make chaos` (`xtask chaos`)
//! and a short run in the integration tests share it.
//!
//! Three nodes in a keyed group at interval 100 ms / timeout 300 ms, and the
//! lab's client probing the address. Faults come one at a time from a seeded
//! generator ([`faults`]); each is watched from a quiet pause before it until
//! one holder has been steady for three intervals after it, then measured
//! against the invariants ([`invariants`], defined exactly there and in
//! docs/chaos.md) and printed as one line; the run ends with a summary
//! ([`report`]). A broken invariant does not stop the run: every one is
//! listed, with the seed that replays the fault sequence.

mod burst;
mod faults;
mod group;
mod invariants;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use crate::floatip::{hold_steady, ms, Timing, VIP, WATCH_PORT};
use crate::{cannot_run, find_program, Lab};
pub use burst::forge;
use faults::{Fault, Role, Scene, Timeline};
use group::Group;
pub use invariants::Bounds;
use invariants::{measure, Event};
use report::Record;

/// The group's timing.
pub const TIMING: Timing = Timing::FAST;
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The lab node that runs no floatip and has no key.
const STRANGER: &str = "evil";
/// How long one holder must stay the only one to count as steady.
const STEADY: Duration = ms(300);
/// The longest a group may take to become steady after a fault (or at start).
const STEADY_LIMIT: Duration = Duration::from_secs(10);
/// How many broken invariants the end of the output lists (the outcome has all).
const SHOWN: usize = 40;
/// Upper bound on faults in one run, whatever its length.
const MAX_FAULTS: usize = 100_000;

/// What to run.
pub struct Settings {
    /// The floatip binary.
    pub bin: PathBuf,
    pub duration: Duration,
    pub seed: u64,
    /// Added to both timing bounds: measurement slack on a loaded machine.
    pub margin: Duration,
}

impl Settings {
    /// The bounds of the invariants: one interval of two holders; the
    /// detection timeout plus 50 ms without a healthy holder; each plus
    /// the margin.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            dual: TIMING.interval + self.margin,
            no_holder: TIMING.timeout + ms(50) + self.margin,
        }
    }
}

/// The result of a run.
pub struct Outcome {
    pub seed: u64,
    pub faults: usize,
    /// Every broken invariant, one line each.
    pub broken: Vec<String>,
    pub summary: String,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.broken.is_empty()
    }
}

/// A seed for a run that was not given one.
pub fn random_seed() -> u64 {
    rand::random()
}

/// Runs chaos for `s.duration`, printing one line per fault and the summary.
/// `None`, after [`cannot_run`] (which panics in CI), when the lab cannot be
/// built (not root, no `ip`) or `nft` is missing (partitions need it).
pub fn run(test_name: &str, s: &Settings) -> Option<Outcome> {
    if find_program("nft").is_none() {
        cannot_run(
            test_name,
            "needs nft (Debian package nftables) for partitions",
        );
        return None;
    }
    let lab = Lab::new(test_name, &[NODES[0], NODES[1], NODES[2], STRANGER])?;
    let bin = s.bin.to_str().expect("the floatip path is UTF-8");
    let bounds = s.bounds();
    println!(
        "chaos: seed {}, {:.1} min, nodes {} in a keyed group (interval {} ms, timeout {} ms); bounds: two holders <= {} ms after a fault, no healthy holder <= {} ms",
        s.seed,
        s.duration.as_secs_f64() / 60.0,
        NODES.join(" "),
        TIMING.interval.as_millis(),
        TIMING.timeout.as_millis(),
        bounds.dual.as_millis(),
        bounds.no_holder.as_millis(),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(s.seed);
    let mut group = Group::start(&lab, bin, TIMING, &NODES);
    let mut broken = Vec::new();
    let mut exits = Vec::new();
    if let Err(e) = steady(&lab, &mut group, &mut exits) {
        broken.push(format!("at start: {e}"));
    }
    let started = Instant::now();
    let mut records: Vec<Record> = Vec::new();
    while started.elapsed() < s.duration && records.len() < MAX_FAULTS {
        let fault = Fault::draw(&mut rng, TIMING);
        let r = cycle(
            &lab,
            &mut group,
            &fault,
            records.len() + 1,
            started,
            bounds,
            &mut exits,
        );
        println!("{}", r.line());
        broken.extend(
            r.broken
                .iter()
                .map(|b| format!("fault #{} {} {}: {b}", r.number, r.kind.name(), r.target)),
        );
        records.push(r);
    }
    for l in group.lives() {
        let grown = l.last.grown_from(&l.first);
        if !grown.is_empty() {
            broken.push(format!(
                "{} (pid {}, {}) grew over {} readings: {}",
                l.node,
                l.pid,
                l.role(),
                l.readings,
                grown.join(", ")
            ));
        }
    }
    broken.extend(exits.iter().cloned());
    let summary = report::summary(
        &records,
        group.lives(),
        &exits,
        bounds,
        s.seed,
        started.elapsed(),
    );
    println!("\n{summary}");
    if broken.is_empty() {
        println!("chaos: every invariant held (seed {})", s.seed);
    } else {
        println!(
            "chaos: {} broken invariant(s), seed {}:",
            broken.len(),
            s.seed
        );
        for b in broken.iter().take(SHOWN) {
            println!("  {b}");
        }
        if broken.len() > SHOWN {
            println!("  ... and {} more", broken.len() - SHOWN);
        }
    }
    Some(Outcome {
        seed: s.seed,
        faults: records.len(),
        broken,
        summary,
    })
}

/// One fault: watch, pause, inject, hold, repair, wait until steady, measure.
fn cycle(
    lab: &Lab,
    group: &mut Group,
    fault: &Fault,
    number: usize,
    started: Instant,
    bounds: Bounds,
    exits: &mut Vec<String>,
) -> Record {
    let at = started.elapsed();
    let healthy = group.names();
    let holders = lab.holders(VIP);
    let holder = holders.first().unwrap_or(&healthy[0]).clone();
    let backups: Vec<String> = healthy.iter().filter(|n| **n != holder).cloned().collect();
    let nodes: Vec<String> = fault
        .targets
        .iter()
        .map(|r| match r {
            Role::Holder => holder.clone(),
            Role::Backup(k) => backups[*k].clone(),
        })
        .collect();
    let target = fault
        .targets
        .iter()
        .zip(&nodes)
        .map(|(r, n)| match r {
            Role::Holder => format!("{n} (holder)"),
            Role::Backup(_) => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(" | ");
    let target = if target.is_empty() {
        format!("{STRANGER} -> all")
    } else {
        target
    };
    let mut broken = Vec::new();
    let watch = lab.watch(VIP, WATCH_PORT);
    let mut tl = Timeline::new(&watch);
    std::thread::sleep(fault.pause);
    // Steady for STEADY + the pause: longer than a heartbeat connection
    // outlives a peer that went away, so only lasting resources are seen.
    if let Err(e) = group.read_usage(&holder) {
        broken.push(format!("resources: {e}"));
    }
    let scene = Scene {
        lab,
        group: &mut *group,
        nodes,
        stranger: STRANGER,
    };
    let note = faults::apply(fault, scene, &mut tl).unwrap_or_else(|e| {
        broken.push(format!("could not apply the fault: {e}"));
        None
    });
    let repaired = Instant::now();
    let settled = match steady(lab, group, exits) {
        Ok(()) => Some(repaired.elapsed().saturating_sub(STEADY)),
        Err(e) => {
            broken.push(e);
            None
        }
    };
    let events = tl.events;
    let report = watch.stop();
    let timed: Vec<(Duration, Event)> = report.marks.iter().map(|(_, t)| *t).zip(events).collect();
    let stretches = measure(&report.holder_log, &timed, &healthy, report.duration);
    let checks = [
        ("two holders", stretches.dual, bounds.dual),
        ("no healthy holder", stretches.no_holder, bounds.no_holder),
    ];
    for (what, took, bound) in checks.into_iter().filter(|(_, t, b)| t > b) {
        broken.push(format!(
            "{what} for {} ms (bound {} ms); holders {}",
            took.as_millis(),
            bound.as_millis(),
            history(&report)
        ));
    }
    Record {
        number,
        at,
        kind: fault.kind,
        target,
        hold: fault.hold,
        stretches,
        outage: report.outage_after("inject"),
        settled,
        note,
        broken,
    }
}

/// The holder sets a watch saw, with their times and the fault's marks.
fn history(r: &crate::Report) -> String {
    let sets: Vec<String> = r
        .holder_history
        .iter()
        .map(|(t, h)| format!("{}ms {h:?}", t.as_millis()))
        .collect();
    let marks: Vec<String> = r
        .marks
        .iter()
        .map(|(l, t)| format!("{}ms {l}", t.as_millis()))
        .collect();
    format!("{}; marks {}", sets.join(" -> "), marks.join(", "))
}

/// Waits until every daemon runs and exactly one node has held the address
/// for [`STEADY`]; unexpected exits are recorded in `exits` (and restarted).
fn steady(lab: &Lab, group: &mut Group, exits: &mut Vec<String>) -> Result<(), String> {
    hold_steady(lab, STEADY, STEADY_LIMIT, |holders| {
        exits.extend(group.unexpected_exits());
        holders.len() == 1 && group.all_running()
    })
    .map_err(|last| format!("not steady within {STEADY_LIMIT:?}: holders {last:?}"))
}
