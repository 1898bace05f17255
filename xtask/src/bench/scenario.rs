//! One measured run: a fault injected into a settled pair, watched from the client.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use floatip_lab::etcd::Cluster;
use floatip_lab::floatip::{flips_after, ms, VIP, WATCH_PORT};
use floatip_lab::{printed, Lab, Proc, Report, Watch};
use nix::sys::signal::Signal;

use super::daemons::{partition, signal_group, start_holding, Floating, Tools, ETCD_NODE};
use super::model::{msf, Daemon, Run, Scenario, Setting};

/// What a fault phase needs of the client's watches (one address, or one per family).
pub trait Client {
    fn mark(&self, label: &str);
    fn wait_answer_from(&self, node: &str, timeout: Duration) -> bool;
}

impl Client for Watch {
    fn mark(&self, label: &str) {
        Watch::mark(self, label);
    }
    fn wait_answer_from(&self, node: &str, timeout: Duration) -> bool {
        Watch::wait_answer_from(self, node, timeout)
    }
}

/// A settled pair: n1 holds every floating address alone, n2 follows it.
pub struct Pair {
    pub n1: Proc,
    pub n2: Proc,
    /// n1's config (floatip: what `floatip release` reads).
    pub cfg1: PathBuf,
}

impl Pair {
    /// Orderly stop (SIGTERM; the lab SIGKILLs what remains on drop).
    pub fn stop(self) {
        self.n2.stop();
        self.n1.stop();
    }
}

/// `what` with the last lines of each daemon's log.
pub fn failure(what: String, procs: &[&Proc]) -> String {
    let logs: Vec<String> = procs
        .iter()
        .map(|p| {
            let log = p.log();
            let lines: Vec<&str> = log.lines().collect();
            format!(
                "--- {}\n{}",
                p.log_path().display(),
                lines[lines.len().saturating_sub(15)..].join("\n")
            )
        })
        .collect();
    format!("{what}\n{}", logs.join("\n"))
}

/// Starts `d` holding `f` on n1 first, alone, so that it becomes the holder
/// whatever each daemon's start-up rules are; then n2 joins as the backup.
pub fn start_pair(
    lab: &Lab,
    tools: &Tools,
    d: Daemon,
    s: Setting,
    f: Floating,
) -> Result<Pair, String> {
    let (n1, cfg1) = start_holding(lab, tools, d, s, f, "n1");
    n1_holds(lab, f, ms(0), Duration::from_secs(15)).map_err(|e| failure(e, &[&n1]))?;
    let (n2, _) = start_holding(lab, tools, d, s, f, "n2");
    // n2 must have finished its own start-up and be following n1.
    std::thread::sleep(s.interval() * 3 / 2 + ms(200));
    n1_holds(lab, f, ms(200), Duration::from_secs(5)).map_err(|e| failure(e, &[&n1, &n2]))?;
    Ok(Pair { n1, n2, cfg1 })
}

/// Waits until n1 alone holds every address of `f` and has for `stable`,
/// polling every 5 ms; the error names the holders last seen.
fn n1_holds(lab: &Lab, f: Floating, stable: Duration, timeout: Duration) -> Result<(), String> {
    let mut since: Option<Instant> = None;
    let mut last = Vec::new();
    let held = lab.wait_until(timeout, ms(5), || {
        last = f
            .addresses()
            .into_iter()
            .map(|a| (a, lab.holders(a)))
            .collect();
        if last.iter().all(|(_, h)| h == &["n1"]) {
            since.get_or_insert_with(Instant::now).elapsed() >= stable
        } else {
            since = None;
            false
        }
    });
    held.then_some(()).ok_or_else(|| {
        format!(
            "n1 did not hold {} alone for {stable:?} within {timeout:?}; holders now {last:?}",
            f.name()
        )
    })
}

/// When the fault of a run was injected, and `floatip release`'s wall time.
pub struct Injected {
    pub fault_unix_ms: u64,
    pub release_ms: Option<f64>,
}

/// Once `client` gets answers from n1, marks "fault" on it, injects `sc`
/// into n1 of `pair`, and watches until the end of the run: a fault that is
/// undone is undone after a while (marked "restore"), otherwise the watch
/// goes on until n2 answers and a little more.
pub fn fault_phase(
    lab: &Lab,
    tools: &Tools,
    d: Daemon,
    s: Setting,
    sc: Scenario,
    pair: &Pair,
    client: &impl Client,
) -> Result<Injected, String> {
    // Long enough for every daemon to detect the fault (keepalived: 3 ×
    // advert + skew (256 − 100)/256 × advert = 3.61 × advert) and act; a
    // partition as long for every daemon at a setting, so that the time both
    // sides hold the address compares.
    let hold = match sc {
        Scenario::Partition => s.partition_length(),
        _ => s.detection() + s.interval().max(ms(300)) + ms(200),
    };
    let after_restore = (s.interval() * 3 / 2).max(ms(800));
    let mut release_ms = None;
    let n1 = &pair.n1;
    if !client.wait_answer_from("n1", Duration::from_secs(3)) {
        return Err(failure("a client never reached n1".into(), &[n1, &pair.n2]));
    }
    std::thread::sleep(ms(200));
    client.mark("fault");
    let fault_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    match sc {
        Scenario::Sigterm => {
            n1.stop();
        }
        Scenario::Sigkill => {
            n1.kill9();
        }
        Scenario::SigkillRelease => {
            n1.kill9();
            let t = Instant::now();
            let out = lab.run(
                "n1",
                &[
                    &tools.floatip.to_string_lossy(),
                    "release",
                    "-c",
                    &pair.cfg1.to_string_lossy(),
                ],
            );
            release_ms = Some(msf(t.elapsed()));
            if !out.status.success() {
                return Err(format!("floatip release failed: {}", printed(&out)));
            }
        }
        Scenario::Freeze => signal_group(n1, Signal::SIGSTOP),
        Scenario::LinkCut => lab.link("n1", false),
        Scenario::Partition => partition(lab, tools, d, true)?,
    }
    if sc.restores() {
        std::thread::sleep(hold);
        client.mark("restore");
        match sc {
            Scenario::Freeze => signal_group(n1, Signal::SIGCONT),
            Scenario::LinkCut => lab.link("n1", true),
            Scenario::Partition => partition(lab, tools, d, false)?,
            _ => unreachable!(),
        }
        std::thread::sleep(after_restore);
    } else {
        // Until n2 answers (bounded), then a little more to see it stay.
        client.wait_answer_from("n2", s.detection() + s.interval() + ms(500));
        std::thread::sleep(ms(300).max(s.interval() / 2));
    }
    Ok(Injected {
        fault_unix_ms,
        release_ms,
    })
}

pub fn run_once(
    tools: &Tools,
    d: Daemon,
    s: Setting,
    sc: Scenario,
    rep: usize,
) -> Result<Run, String> {
    let lab = Lab::new(
        &format!("bench-{}-{}-{}", d.name(), s.name(), sc.name()),
        d.nodes(),
    )
    .ok_or("the lab needs root and iproute2")?;
    // Cluster::start panics when etcd does not come up: that run is retried.
    let _etcd = (d == Daemon::FloatipEtcd)
        .then(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Cluster::start(&lab, &[ETCD_NODE])
            }))
            .map_err(|_| "etcd did not start in the lab".to_string())
        })
        .transpose()?;
    let pair = start_pair(&lab, tools, d, s, Floating::V4)?;
    let watch = lab.watch(VIP, WATCH_PORT);
    let injected = fault_phase(&lab, tools, d, s, sc, &pair, &watch)?;
    let run = measured(&watch.stop(), d, s, sc, rep, injected);
    pair.stop();
    Ok(run)
}

/// What a client's `report` of a run of `sc` shows.
pub fn measured(
    report: &Report,
    d: Daemon,
    s: Setting,
    sc: Scenario,
    rep: usize,
    Injected {
        fault_unix_ms,
        release_ms,
    }: Injected,
) -> Run {
    let outage = report.outage_after("fault");
    let (outage_fault, outage_restore) = if sc.restores() {
        (
            Some(msf(report.outage_between("fault", "restore"))),
            Some(msf(report.outage_after("restore"))),
        )
    } else {
        (None, None)
    };
    let crashed = matches!(sc, Scenario::Sigkill | Scenario::SigkillRelease);
    Run {
        daemon: d,
        setting: s,
        scenario: sc,
        rep,
        fault_unix_ms,
        attempts: 1,
        outage_ms: msf(outage),
        outage_fault_ms: outage_fault,
        outage_restore_ms: outage_restore,
        dual_ms: msf(report.dual_holder_after("fault")),
        dual_fault_ms: sc.restores().then(|| {
            msf(report
                .dual_holder_after("fault")
                .saturating_sub(report.dual_holder_after("restore")))
        }),
        dual_restore_ms: sc
            .restores()
            .then(|| msf(report.dual_holder_after("restore"))),
        no_holder_ms: msf(report.no_holder_after("fault")),
        flips: flips_after(report, "fault"),
        final_holders: report.final_holders.clone(),
        answered_by_at_end: report.answered_by_at_end.clone(),
        left_behind: crashed && report.final_holders.iter().any(|h| h == "n1"),
        watch_ms: msf(report.duration),
        release_ms,
        summary: report.summary().chars().take(1500).collect(),
    }
}
