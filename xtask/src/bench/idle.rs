//! Idle cost: RSS, CPU and frames on the wire of every daemon, all settled,
//! over one window.

use std::time::{Duration, Instant};

use floatip_lab::floatip::{hold_alone, ms, VIP};
use floatip_lab::{Lab, Proc};

use super::daemons::{start, Tools};
use super::model::{Daemon, Idle, Setting};

/// One process's counters.
#[derive(Clone, Debug)]
struct ProcSample {
    name: String,
    ticks: u64,
    sched_ns: Option<u64>,
    rss_kib: u64,
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let path = t.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|w| w.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// The daemon and all its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let kids = children_of(all[i]);
        all.extend(kids);
        i += 1;
    }
    all
}

fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let num = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64
    };
    let ticks = num(11) + num(12) + num(13) + num(14);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Per-thread scheduler run time in ns (exact, unlike ticks).
    let mut sched_ns = None;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                if let Some(v) = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    *sched_ns.get_or_insert(0) += v;
                }
            }
        }
    }
    Some(ProcSample {
        name,
        ticks,
        sched_ns,
        rss_kib,
    })
}

fn tree_sample(pid: u32) -> Vec<(u32, ProcSample)> {
    tree(pid)
        .into_iter()
        .filter_map(|p| proc_sample(p).map(|s| (p, s)))
        .collect()
}

/// Frames received plus sent by `node`'s port on the lab's switch, from the
/// switch namespace's `/proc/net/dev` (the worker thread lives in that
/// namespace, so `thread-self` shows its devices).
fn port_packets(lab: &Lab, node: &str) -> Option<u64> {
    let port = format!("p-{node}");
    lab.in_ns("sw", move || {
        let text = std::fs::read_to_string("/proc/thread-self/net/dev").ok()?;
        packets_of(&text, &port)
    })
}

/// Received plus sent packets of device `dev` in a `/proc/net/dev` text.
fn packets_of(net_dev: &str, dev: &str) -> Option<u64> {
    net_dev.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != dev {
            return None;
        }
        // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets ...
        let f: Vec<u64> = counters
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        Some(f.get(1)? + f.get(9)?)
    })
}

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

struct IdleLab {
    lab: Lab,
    daemon: Daemon,
    setting: Setting,
    procs: Vec<(String, Proc)>,
}

/// Starts every daemon at every setting in labs of their own (each lab is
/// its own set of namespaces, so they do not see each other), lets them
/// settle, then measures all of them over the same window.
pub fn measure_idle(
    tools: &Tools,
    daemons: &[Daemon],
    settings: &[Setting],
    window: Duration,
) -> (Vec<Idle>, Vec<String>) {
    let mut labs = Vec::new();
    let mut problems = Vec::new();
    for &s in settings {
        for &d in daemons {
            // floatip-etcd idles like floatip plus an etcd client: it has no row.
            if !s.supports(d) || !tools.has(d) || d == Daemon::FloatipEtcd {
                continue;
            }
            let Some(lab) = Lab::new(
                &format!("bench-idle-{}-{}", d.name(), s.name()),
                &["n1", "n2"],
            ) else {
                continue;
            };
            let (n1, _) = start(&lab, tools, d, s, "n1");
            if let Err(e) = hold_alone(&lab, "n1", ms(0), Duration::from_secs(15)) {
                problems.push(format!("idle {} {}: {e}", d.name(), s.name()));
                continue;
            }
            let (n2, _) = start(&lab, tools, d, s, "n2");
            labs.push(IdleLab {
                lab,
                daemon: d,
                setting: s,
                procs: vec![("n1".into(), n1), ("n2".into(), n2)],
            });
        }
    }
    std::thread::sleep(ms(3000));
    let tck = clk_tck();
    let before: Vec<Vec<Vec<(u32, ProcSample)>>> = labs
        .iter()
        .map(|l| l.procs.iter().map(|(_, p)| tree_sample(p.pid())).collect())
        .collect();
    let packets_before: Vec<Vec<Option<u64>>> = labs
        .iter()
        .map(|l| {
            l.procs
                .iter()
                .map(|(n, _)| port_packets(&l.lab, n))
                .collect()
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let secs = t0.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for (li, l) in labs.iter().enumerate() {
        let holders = l.lab.holders(VIP);
        if holders != ["n1"] {
            problems.push(format!(
                "idle {} {}: holders at the end {holders:?}",
                l.daemon.name(),
                l.setting.name()
            ));
        }
        for (pi, (node, p)) in l.procs.iter().enumerate() {
            let after = tree_sample(p.pid());
            let packets = packets_before[li][pi]
                .zip(port_packets(&l.lab, node))
                .map(|(b, a)| a.saturating_sub(b) as f64 / secs);
            let mut ticks = 0u64;
            let mut ns = 0u64;
            let mut ns_ok = true;
            for (pid, a) in &after {
                let b = before[li][pi]
                    .iter()
                    .find(|(q, _)| q == pid)
                    .map(|(_, s)| s.clone());
                ticks += a.ticks - b.as_ref().map_or(0, |b| b.ticks.min(a.ticks));
                match (a.sched_ns, b.as_ref().map(|b| b.sched_ns)) {
                    (Some(x), Some(Some(y))) => ns += x.saturating_sub(y),
                    (Some(x), None) => ns += x,
                    _ => ns_ok = false,
                }
            }
            out.push(Idle {
                daemon: l.daemon,
                setting: l.setting,
                node: node.clone(),
                role: if holders.contains(node) {
                    "holder".into()
                } else {
                    "backup".into()
                },
                window_s: (secs * 10.0).round() / 10.0,
                processes: after.iter().map(|(_, s)| s.name.clone()).collect(),
                rss_kib: after.iter().map(|(_, s)| s.rss_kib).sum(),
                cpu_ticks: ticks,
                clk_tck: tck,
                cpu_percent: ticks as f64 / tck as f64 / secs * 100.0,
                cpu_percent_schedstat: ns_ok.then(|| ns as f64 / 1e9 / secs * 100.0),
                port_packets_per_s: packets,
            });
        }
    }
    for l in &labs {
        for (_, p) in &l.procs {
            p.stop();
        }
    }
    drop(labs);
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::packets_of;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  p-n1:    8100      90    0    0    0     0          0         0     3500      35    0    0    0     0       0          0
 p-n10:       1       2    0    0    0     0          0         0        3       4    0    0    0     0       0          0
";

    #[test]
    fn packets_are_received_plus_sent_of_that_device_only() {
        assert_eq!(packets_of(NET_DEV, "p-n1"), Some(125));
        assert_eq!(packets_of(NET_DEV, "p-n10"), Some(6));
        assert_eq!(packets_of(NET_DEV, "p-n2"), None);
        assert_eq!(packets_of("  p-n1: 1 2 3\n", "p-n1"), None);
    }
}
