//! The flap soak: a settled floatip pair at the 10 ms setting while the switch
//! drops frames at random and busy-loop processes compete for the CPUs. Every
//! change of holder is a false take-over: nothing is wrong but the noise.

use std::time::{Duration, Instant};

use floatip_lab::floatip::{hold_alone, ms, transitions, VIP, WATCH_PORT};
use floatip_lab::{Lab, Proc};

use super::daemons::{frame_loss, start, Tools};
use super::model::{msf, Daemon, Setting, Soak};

/// Percent of all forwarded frames the switch drops during the soak.
pub const LOSS_PERCENT: u32 = 5;
/// A shell loop that never sleeps: one CPU hog.
const HOG: &str = "while :; do :; done";
/// How many transition lines a soak keeps for the report.
const KEPT_LINES: usize = 10;

pub fn run_soak(
    tools: &Tools,
    s: Setting,
    length: Duration,
    hogs: usize,
    command: &str,
) -> Result<Soak, String> {
    let lab = Lab::new(&format!("bench-soak-{}", s.name()), &["n1", "n2"])
        .ok_or("the lab needs root and iproute2")?;
    let (n1, _) = start(&lab, tools, Daemon::Floatip, s, "n1");
    hold_alone(&lab, "n1", ms(0), Duration::from_secs(15))?;
    let (n2, _) = start(&lab, tools, Daemon::Floatip, s, "n2");
    std::thread::sleep(s.interval() * 3 / 2 + ms(200));
    hold_alone(&lab, "n1", ms(200), Duration::from_secs(5))?;
    let logged_before = [transitions(&n1).len(), transitions(&n2).len()];

    let watch = lab.watch(VIP, WATCH_PORT);
    if !watch.wait_answer_from("n1", Duration::from_secs(3)) {
        return Err("the client never reached n1".into());
    }
    frame_loss(&lab, tools, LOSS_PERCENT, true)?;
    // In the client's namespace: they only burn CPU. Killed by PID below
    // (and by the lab on drop, whatever happens).
    let hog_procs: Vec<Proc> = (0..hogs)
        .map(|_| lab.spawn("client", &["sh", "-c", HOG], &[]))
        .collect();
    watch.mark("soak");
    let t0 = Instant::now();
    std::thread::sleep(length);
    let seconds = t0.elapsed().as_secs_f64();
    for h in &hog_procs {
        h.kill9();
    }
    frame_loss(&lab, tools, LOSS_PERCENT, false)?;
    let report = watch.stop();

    // Role changes logged during the soak (each node's start-up excluded),
    // in time order (the lines start with their timestamp).
    let mut lines: Vec<(String, &str)> = [("n1", &n1), ("n2", &n2)]
        .into_iter()
        .zip(logged_before)
        .flat_map(|((node, p), before)| {
            transitions(p)
                .into_iter()
                .skip(before)
                .map(move |l| (l, node))
        })
        .collect();
    lines.sort();
    let takeovers = lines
        .iter()
        .filter(|(l, _)| l.contains("BACKUP -> MASTER"))
        .count();
    let holder_changes = changes_away(&report.holder_history, report.mark("soak"), "n1");
    n2.stop();
    n1.stop();
    Ok(Soak {
        command: command.to_string(),
        setting: s,
        seconds: (seconds * 10.0).round() / 10.0,
        loss_percent: LOSS_PERCENT,
        hogs,
        holder_changes,
        takeovers,
        transitions: lines.len(),
        outage_max_ms: msf(report.outage_after("soak")),
        final_holders: report.final_holders.clone(),
        transition_lines: lines
            .into_iter()
            .take(KEPT_LINES)
            .map(|(l, node)| format!("{node}: {l}"))
            .collect(),
    })
}

/// How often the holders changed from `holder` alone to anything else at or
/// after `from`, in a holder history (consecutive repeats collapsed); `holder`
/// held alone when `from` came.
fn changes_away(history: &[(Duration, Vec<String>)], from: Duration, holder: &str) -> usize {
    let alone = [holder.to_string()];
    let mut previous: &[String] = &alone;
    let mut changes = 0;
    for (_, h) in history.iter().filter(|(at, _)| *at >= from) {
        if previous == alone && *h != alone {
            changes += 1;
        }
        previous = h;
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(entries: &[(u64, &[&str])]) -> Vec<(Duration, Vec<String>)> {
        entries
            .iter()
            .map(|(t, h)| (ms(*t), h.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn every_departure_from_the_holder_alone_counts_once() {
        let h = history(&[
            (0, &["n1"]),
            (100, &["n1", "n2"]),
            (105, &["n2"]),
            (110, &["n1"]),
            (200, &[]),
            (205, &["n1"]),
        ]);
        assert_eq!(changes_away(&h, ms(0), "n1"), 2);
        // Before the mark nothing counts; a change right at the mark does.
        assert_eq!(changes_away(&h, ms(150), "n1"), 1);
        assert_eq!(changes_away(&h, ms(200), "n1"), 1);
        assert_eq!(changes_away(&h, ms(206), "n1"), 0);
    }
}
