//! One measured run: a fault injected into a settled pair, watched from the client.

use std::time::{Duration, Instant};

use floatip_lab::etcd::Cluster;
use floatip_lab::floatip::{flips_after, hold_alone, ms, VIP, WATCH_PORT};
use floatip_lab::{printed, Lab, Proc};
use nix::sys::signal::Signal;

use super::daemons::{partition, signal_group, start, Tools, ETCD_NODE};
use super::model::{msf, Daemon, Run, Scenario, Setting};

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
    let fail = |what: String, procs: &[&Proc]| -> String {
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
    };
    // n1 first, alone: it becomes the holder whatever each daemon's start-up
    // rules are; then n2 joins as the backup.
    let (n1, cfg1) = start(&lab, tools, d, s, "n1");
    hold_alone(&lab, "n1", ms(0), Duration::from_secs(15)).map_err(|e| fail(e, &[&n1]))?;
    let (n2, _) = start(&lab, tools, d, s, "n2");
    // n2 must have finished its own start-up and be following n1.
    std::thread::sleep(s.interval() * 3 / 2 + ms(200));
    hold_alone(&lab, "n1", ms(200), Duration::from_secs(5)).map_err(|e| fail(e, &[&n1, &n2]))?;

    let watch = lab.watch(VIP, WATCH_PORT);
    if !watch.wait_answer_from("n1", Duration::from_secs(3)) {
        return Err(fail("the client never reached n1".into(), &[&n1, &n2]));
    }
    std::thread::sleep(ms(200));
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
    watch.mark("fault");
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
                    &cfg1.to_string_lossy(),
                ],
            );
            release_ms = Some(msf(t.elapsed()));
            if !out.status.success() {
                return Err(format!("floatip release failed: {}", printed(&out)));
            }
        }
        Scenario::Freeze => signal_group(&n1, Signal::SIGSTOP),
        Scenario::LinkCut => lab.link("n1", false),
        Scenario::Partition => partition(&lab, tools, d, true)?,
    }
    if sc.restores() {
        std::thread::sleep(hold);
        watch.mark("restore");
        match sc {
            Scenario::Freeze => signal_group(&n1, Signal::SIGCONT),
            Scenario::LinkCut => lab.link("n1", true),
            Scenario::Partition => partition(&lab, tools, d, false)?,
            _ => unreachable!(),
        }
        std::thread::sleep(after_restore);
    } else {
        // Until n2 answers (bounded), then a little more to see it stay.
        watch.wait_answer_from("n2", s.detection() + s.interval() + ms(500));
        std::thread::sleep(ms(300).max(s.interval() / 2));
    }
    let report = watch.stop();
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
    let run = Run {
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
        flips: flips_after(&report, "fault"),
        final_holders: report.final_holders.clone(),
        answered_by_at_end: report.answered_by_at_end.clone(),
        left_behind: crashed && report.final_holders.iter().any(|h| h == "n1"),
        watch_ms: msf(report.duration),
        release_ms,
        summary: report.summary().chars().take(1500).collect(),
    };
    // Orderly stop (SIGTERM; the lab SIGKILLs what remains on drop).
    n2.stop();
    n1.stop();
    Ok(run)
}
