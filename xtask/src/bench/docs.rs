//! docs/benchmarks.md and docs/benchmarks.svg from the results.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::daemons::Floating;
use super::ipv6;
use super::model::{msf, stat, Cell, Daemon, Idle, Ipv6Run, Results, Scenario, Setting, Stat};

/// The hand-written part of docs/benchmarks.md; `{{...}}` are filled in.
const TEMPLATE: &str = include_str!("../../templates/benchmarks.md");
/// Interpretation of the last full run, written by hand after reading it
/// (update it when the numbers change).
const FINDINGS: &str = include_str!("../../templates/findings.md");

fn cell(r: &Results, d: Daemon, s: Setting, sc: Scenario) -> Option<&Cell> {
    r.cells
        .iter()
        .find(|c| (c.daemon, c.setting, c.scenario) == (d, s, sc))
}

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn med_max(st: &Stat) -> String {
    format!("{} / {}", fmt_ms(st.median), fmt_ms(st.max))
}

/// The daemons with at least one measured cell at setting `s`.
fn measured(r: &Results, s: Setting) -> Vec<Daemon> {
    Daemon::ALL
        .into_iter()
        .filter(|d| r.cells.iter().any(|c| c.daemon == *d && c.setting == s))
        .collect()
}

/// `a / b` with two decimals, or "–" when either is missing or `b` is 0.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn outage_table(r: &Results, s: Setting) -> String {
    let mut t = String::new();
    let daemons = measured(r, s);
    // The 10 ms setting is compared with keepalived at its fastest.
    let peer = s.keepalived_peer();
    let peer_column = peer != s;
    let _ = write!(t, "| scenario |");
    for d in &daemons {
        let _ = write!(t, " {} outage ms (median / max) |", d.name());
    }
    if peer_column {
        let _ = write!(
            t,
            " keepalived at {} outage ms (median / max) |",
            peer.name()
        );
    }
    let _ = writeln!(t, " floatip / keepalived (median) |");
    let _ = write!(t, "| --- |");
    for _ in 0..daemons.len() + usize::from(peer_column) {
        let _ = write!(t, " ---: |");
    }
    let _ = writeln!(t, " ---: |");
    for sc in Scenario::ALL {
        if !daemons.iter().any(|d| cell(r, *d, s, sc).is_some()) {
            continue;
        }
        let _ = write!(t, "| {} |", sc.title());
        for &d in &daemons {
            let v = match cell(r, d, s, sc) {
                Some(c) => med_max(&c.outage_ms),
                None if d == Daemon::FloatipEtcd => "– (partition only)".into(),
                None if !sc.applies(d) => "n/a (no equivalent)".into(),
                None => "not run".into(),
            };
            let _ = write!(t, " {v} |");
        }
        let ka = cell(
            r,
            Daemon::Keepalived,
            peer,
            if sc == Scenario::SigkillRelease {
                Scenario::Sigkill
            } else {
                sc
            },
        );
        if peer_column {
            let _ = write!(
                t,
                " {} |",
                ka.map_or("not run".into(), |k| med_max(&k.outage_ms))
            );
        }
        let f = cell(r, Daemon::Floatip, s, sc);
        let mut v = ratio(
            f.map(|c| c.outage_ms.median),
            ka.map(|c| c.outage_ms.median),
        );
        if sc == Scenario::SigkillRelease && v != "–" {
            v += " (vs. plain SIGKILL)";
        }
        let _ = writeln!(t, " {v} |");
    }
    t
}

/// One figure of the IPv6 rows over the runs of a cell, if any run has it.
fn ipv6_stat(
    r: &Results,
    (f, d, s, sc): (Floating, Daemon, Setting, Scenario),
    get: fn(&Ipv6Run) -> Option<f64>,
) -> Option<Stat> {
    let v: Vec<f64> = r
        .ipv6
        .iter()
        .filter(|x| (x.floating, x.v6.daemon, x.v6.setting, x.v6.scenario) == (f, d, s, sc))
        .filter_map(get)
        .collect();
    (!v.is_empty()).then(|| stat(&v))
}

/// The cells of the IPv6 rows that ran: group, setting and the i-th fault,
/// with floatip's scenario and keepalived's counterpart.
fn ipv6_cells(r: &Results) -> Vec<(Floating, Setting, Scenario, Scenario)> {
    let mut v = Vec::new();
    for f in ipv6::GROUPS {
        for s in Setting::ALL {
            let pairs = ipv6::faults(Daemon::Floatip)
                .into_iter()
                .zip(ipv6::faults(Daemon::Keepalived));
            for (fsc, ksc) in pairs {
                if r.ipv6.iter().any(|x| {
                    (x.floating, x.v6.setting) == (f, s)
                        && (x.v6.scenario == fsc || x.v6.scenario == ksc)
                }) {
                    v.push((f, s, fsc, ksc));
                }
            }
        }
    }
    v
}

fn outage6(x: &Ipv6Run) -> Option<f64> {
    Some(x.v6.outage_ms)
}

/// floatip's IPv6 client outage against keepalived's, as the other ratios.
fn ipv6_ratio(r: &Results, f: Floating, s: Setting, fsc: Scenario, ksc: Scenario) -> String {
    let median = |d, sc| ipv6_stat(r, (f, d, s, sc), outage6).map(|x| x.median);
    let mut v = ratio(
        median(Daemon::Floatip, fsc),
        median(Daemon::Keepalived, ksc),
    );
    if fsc != ksc && v != "–" {
        v += " (vs. plain SIGKILL)";
    }
    v
}

/// The IPv6 rows: each fault's client outages (IPv6, and IPv4 in the same
/// runs), how soon the IPv6 client followed, and the ratio to keepalived.
fn ipv6_table(r: &Results) -> String {
    let mut t = String::new();
    let fmt = |st: Option<Stat>| st.map_or("not run".into(), |st| med_max(&st));
    for f in ipv6::GROUPS {
        let cells: Vec<_> = ipv6_cells(r).into_iter().filter(|c| c.0 == f).collect();
        if cells.is_empty() {
            continue;
        }
        let _ = writeln!(t, "### {}\n", f.title());
        let _ = writeln!(t, "| setting | fault | floatip: IPv6 client outage ms (median / max) | floatip: IPv4 client, same runs | floatip: IPv6 client followed within ms (median / max) | keepalived: IPv6 client outage ms (median / max) | keepalived: IPv4 client, same runs | ucarp | floatip / keepalived, IPv6 outage (median) |");
        let _ = writeln!(
            t,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
        );
        // A group without an IPv4 address has no IPv4 client.
        let v4 = |st: Option<Stat>| {
            if f.addresses().iter().any(IpAddr::is_ipv4) {
                fmt(st)
            } else {
                "n/a (no IPv4)".into()
            }
        };
        for (_, s, fsc, ksc) in cells {
            let fl = (f, Daemon::Floatip, s, fsc);
            let ka = (f, Daemon::Keepalived, s, ksc);
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | n/a (no IPv6) | {} |",
                s.name(),
                fsc.title(),
                fmt(ipv6_stat(r, fl, outage6)),
                v4(ipv6_stat(r, fl, |x| x.outage4_ms)),
                fmt(ipv6_stat(r, fl, |x| x.followed6_ms)),
                fmt(ipv6_stat(r, ka, outage6)),
                v4(ipv6_stat(r, ka, |x| x.outage4_ms)),
                ipv6_ratio(r, f, s, fsc, ksc)
            );
        }
        let _ = writeln!(t);
    }
    if t.is_empty() {
        return "Not run in this bench.\n".into();
    }
    for x in &r.ipv6_failures {
        let first = x.error.lines().next().unwrap_or("");
        let _ = writeln!(
            t,
            "- could not be measured: {} {} {} rep {}: {first}",
            x.daemon.name(),
            x.setting.name(),
            x.scenario.name(),
            x.rep
        );
    }
    t
}

/// Medians of one idle measure of `d` at `s`: (holder, backup).
fn idle_pair(
    r: &Results,
    d: Daemon,
    s: Setting,
    f: impl Fn(&Idle) -> Option<f64>,
) -> Option<(f64, f64)> {
    let get = |role: &str| {
        r.idle
            .iter()
            .find(|i| i.daemon == d && i.setting == s && i.role == role)
            .and_then(&f)
    };
    Some((get("holder")?, get("backup")?))
}

fn cpu(i: &Idle) -> Option<f64> {
    Some(i.cpu_percent_schedstat.unwrap_or(i.cpu_percent))
}

/// Picks one statistic out of a cell.
type CellStat = fn(&Cell) -> Option<&Stat>;

/// One row per measure, one column per daemon, and floatip / keepalived
/// (at the 10 ms setting: against keepalived at 0.1 s).
pub fn comparison_table(r: &Results) -> String {
    let mut t = String::new();
    let names: Vec<&str> = Daemon::ALL.iter().map(|d| d.name()).collect();
    let _ = writeln!(
        t,
        "| measure | {} | floatip / keepalived |",
        names.join(" | ")
    );
    let _ = writeln!(t, "| --- |{} ---: |", " ---: |".repeat(names.len()));
    let mut row = |what: String, v: [String; Daemon::ALL.len()], ratio: String| {
        let _ = writeln!(t, "| {what} | {} | {ratio} |", v.join(" | "));
    };
    let dash = || "–".to_string();
    for s in Setting::ALL {
        let peer = s.keepalived_peer();
        let against = if peer == s {
            s.name().to_string()
        } else {
            format!("{} (keepalived: {})", s.name(), peer.name())
        };
        // Idle rows: the daemon at `s`, keepalived at its peer setting.
        let at = |d: Daemon| if d == Daemon::Keepalived { peer } else { s };
        let frames =
            |d: Daemon| idle_pair(r, d, at(d), |i| i.port_packets_per_s).map(|(h, b)| h + b);
        if r.idle.iter().any(|i| i.setting == s) {
            let v = Daemon::ALL.map(|d| frames(d).map_or_else(dash, |x| format!("{x:.1}")));
            row(
                format!("idle frames/s, both nodes' switch ports, rx + tx — {against}"),
                v,
                ratio(frames(Daemon::Floatip), frames(Daemon::Keepalived)),
            );
            let cpu_of = |d: Daemon| idle_pair(r, d, at(d), cpu);
            let v = Daemon::ALL
                .map(|d| cpu_of(d).map_or_else(dash, |(h, b)| format!("{h:.3} / {b:.3}")));
            let (f, k) = (cpu_of(Daemon::Floatip), cpu_of(Daemon::Keepalived));
            row(
                format!("idle CPU % of one core, holder / backup (schedstat) — {against}"),
                v,
                match (f, k) {
                    (Some(f), Some(k)) => {
                        format!(
                            "{} / {}",
                            ratio(Some(f.0), Some(k.0)),
                            ratio(Some(f.1), Some(k.1))
                        )
                    }
                    _ => dash(),
                },
            );
            let rss_of = |d: Daemon| idle_pair(r, d, at(d), |i| Some(i.rss_kib as f64));
            let v = Daemon::ALL
                .map(|d| rss_of(d).map_or_else(dash, |(h, b)| format!("{h:.0} / {b:.0}")));
            row(
                format!("idle RSS KiB, holder / backup — {against}"),
                v,
                ratio(
                    rss_of(Daemon::Floatip).map(|(h, b)| h.max(b)),
                    rss_of(Daemon::Keepalived).map(|(h, b)| h.max(b)),
                ),
            );
        }
        let scenario_rows: [(Scenario, &str, CellStat); 3] = [
            (
                Scenario::Partition,
                "two holders during the partition, ms (median / max)",
                |c| c.dual_fault_ms.as_ref(),
            ),
            (
                Scenario::Partition,
                "two holders after the heal, ms (median / max)",
                |c| c.dual_restore_ms.as_ref(),
            ),
            (
                Scenario::LinkCut,
                "link cut: client outage, ms (median / max)",
                |c| Some(&c.outage_ms),
            ),
        ];
        for (sc, what, get) in scenario_rows {
            // The link cut has its own tables; here only the 10 ms setting's.
            if sc == Scenario::LinkCut && s != Setting::TenMs {
                continue;
            }
            let stat_of = |d: Daemon| cell(r, d, at(d), sc).and_then(get);
            if stat_of(Daemon::Floatip).is_none() && stat_of(Daemon::FloatipEtcd).is_none() {
                continue;
            }
            let v = Daemon::ALL.map(|d| stat_of(d).map_or_else(dash, med_max));
            row(
                format!("{what} — {against}"),
                v,
                ratio(
                    stat_of(Daemon::Floatip).map(|x| x.median),
                    stat_of(Daemon::Keepalived).map(|x| x.median),
                ),
            );
        }
    }
    for (f, s, fsc, ksc) in ipv6_cells(r) {
        let at = |d: Daemon| {
            let sc = if d == Daemon::Floatip { fsc } else { ksc };
            ipv6_stat(r, (f, d, s, sc), outage6)
        };
        row(
            format!(
                "IPv6 client outage, {}, ms (median / max) — {} {}",
                fsc.title(),
                f.name(),
                s.name()
            ),
            Daemon::ALL.map(|d| match d {
                Daemon::Ucarp => "n/a (no IPv6)".into(),
                d => at(d).map_or_else(dash, |x| med_max(&x)),
            }),
            ipv6_ratio(r, f, s, fsc, ksc),
        );
    }
    for k in &r.soak {
        row(
            format!(
                "false take-overs in a {:.0} s flap soak, {} % frame loss, {} CPU hogs — {} (`{}`)",
                k.seconds,
                k.loss_percent,
                k.hogs,
                k.setting.name(),
                k.command
            ),
            Daemon::ALL.map(|d| match d {
                Daemon::Floatip => k.false_takeovers().to_string(),
                Daemon::Keepalived => "not run".into(),
                _ => dash(),
            }),
            dash(),
        );
    }
    t
}

fn soak_table(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| run by | setting | length s | frame loss % | CPU hogs | false take-overs | holder changes away from n1 (5 ms samples) | take-overs logged | role changes logged | longest client gap ms | holders at the end |");
    let _ = writeln!(
        t,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for k in &r.soak {
        let _ = writeln!(
            t,
            "| `{}` | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.command,
            k.setting.name(),
            k.seconds,
            k.loss_percent,
            k.hogs,
            k.false_takeovers(),
            k.holder_changes,
            k.takeovers,
            k.transitions,
            fmt_ms(k.outage_max_ms),
            k.final_holders.join("+")
        );
    }
    if let Some(lines) = r.soak.iter().find(|k| !k.transition_lines.is_empty()) {
        let _ = writeln!(
            t,
            "\nRole changes logged during `{}`'s soak (first {}):\n\n```text\n{}\n```",
            lines.command,
            lines.transition_lines.len(),
            lines.transition_lines.join("\n")
        );
    }
    t
}

fn detail_table(r: &Results, s: Setting) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| scenario | daemon | outage while faulty ms | outage after restore ms | dual-holder ms, whole run | dual-holder ms while faulty | dual-holder ms after restore | flips (median / max) | holder at the end (runs) | client unanswered at the end (runs) | VIP left on the crashed node |");
    let _ = writeln!(
        t,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
    );
    for sc in Scenario::ALL {
        for d in Daemon::ALL {
            let Some(c) = cell(r, d, s, sc) else { continue };
            let restore = c.outage_restore_ms.as_ref().map_or("–".into(), med_max);
            let faulty: Vec<f64> = r
                .runs
                .iter()
                .filter(|x| (x.daemon, x.setting, x.scenario) == (d, s, sc))
                .filter_map(|x| x.outage_fault_ms)
                .collect();
            let faulty = if faulty.is_empty() {
                "–".into()
            } else {
                med_max(&stat(&faulty))
            };
            let dual_fault = c.dual_fault_ms.as_ref().map_or("–".into(), med_max);
            let dual_restore = c.dual_restore_ms.as_ref().map_or("–".into(), med_max);
            let holders: Vec<String> = c
                .final_holders
                .iter()
                .map(|(h, n)| format!("{h} ×{n}"))
                .collect();
            let left = if matches!(sc, Scenario::Sigkill | Scenario::SigkillRelease) {
                format!("{} of {}", c.left_behind, c.outage_ms.n)
            } else {
                "–".into()
            };
            let _ = writeln!(
                t,
                "| {} | {} | {faulty} | {restore} | {} | {dual_fault} | {dual_restore} | {} / {} | {} | {} | {left} |",
                sc.title(),
                d.name(),
                med_max(&c.dual_ms),
                c.flips_median,
                c.flips_max,
                holders.join(", "),
                c.unanswered_at_end
            );
        }
    }
    t
}

fn idle_table(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| setting | daemon | node (role) | processes | RSS KiB | CPU ticks | CPU % (ticks) | CPU % (schedstat) | frames/s at its switch port (rx + tx) |");
    let _ = writeln!(
        t,
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for i in &r.idle {
        let _ = writeln!(
            t,
            "| {} | {} | {} ({}) | {} | {} | {} | {:.3} | {} | {} |",
            i.setting.name(),
            i.daemon.name(),
            i.node,
            i.role,
            i.processes.join(", "),
            i.rss_kib,
            i.cpu_ticks,
            i.cpu_percent,
            i.cpu_percent_schedstat
                .map_or("–".into(), |v| format!("{v:.4}")),
            i.port_packets_per_s
                .map_or("–".into(), |v| format!("{v:.1}"))
        );
    }
    t
}

fn targets_table(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| target | measured (floatip, max over runs unless noted) | met |"
    );
    let _ = writeln!(t, "| --- | --- | --- |");
    let mut row = |what: String, measured: String, ok: Option<bool>| {
        let mark = match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(t, "| {what} | {measured} | {mark} |");
    };
    for s in Setting::ALL {
        let det = msf(s.detection());
        if let Some(f) = cell(r, Daemon::Floatip, s, Scenario::LinkCut) {
            let bound = det + 20.0;
            let fo = r
                .runs
                .iter()
                .filter(|x| {
                    x.daemon == Daemon::Floatip && x.setting == s && x.scenario == Scenario::LinkCut
                })
                .filter_map(|x| x.outage_fault_ms)
                .collect::<Vec<_>>();
            let st = stat(&fo);
            row(
                format!(
                    "link cut outage ≤ detection + 20 ms = {bound:.0} ms ({})",
                    s.name()
                ),
                format!(
                    "median {} / max {} ms (gap while the link is down)",
                    fmt_ms(st.median),
                    fmt_ms(st.max)
                ),
                Some(st.max <= bound),
            );
            if let Some(k) = cell(r, Daemon::Keepalived, s, Scenario::LinkCut) {
                row(
                    format!("link cut outage ≤ keepalived's ({})", s.name()),
                    format!(
                        "median {} vs {} ms",
                        fmt_ms(f.outage_ms.median),
                        fmt_ms(k.outage_ms.median)
                    ),
                    Some(f.outage_ms.median <= k.outage_ms.median),
                );
            }
        }
        if let Some(f) = cell(r, Daemon::Floatip, s, Scenario::SigkillRelease) {
            row(
                format!("SIGKILL + release outage ≤ 50 ms ({})", s.name()),
                format!("{} ms", med_max(&f.outage_ms)),
                Some(f.outage_ms.max <= 50.0),
            );
        }
        if let Some(f) = cell(r, Daemon::Floatip, s, Scenario::Sigterm) {
            row(
                format!("SIGTERM outage ≤ 20 ms ({})", s.name()),
                format!("{} ms", med_max(&f.outage_ms)),
                Some(f.outage_ms.max <= 20.0),
            );
        }
        // While a node is frozen or cut off by a partition it cannot give
        // the address up, so for those the bound applies once the fault is
        // undone; for the others to the whole run.
        let bound = msf(s.interval());
        let worst = r
            .cells
            .iter()
            .filter(|c| c.daemon == Daemon::Floatip && c.setting == s)
            .map(|c| {
                (
                    c.dual_restore_ms.as_ref().unwrap_or(&c.dual_ms).max,
                    c.scenario,
                )
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((v, sc)) = worst {
            row(
                format!("dual-holder ≤ one interval = {bound:.0} ms ({}; freeze, partition, link cut: after the fault is undone)", s.name()),
                format!("worst {} ms ({})", fmt_ms(v), sc.name()),
                Some(v <= bound),
            );
        }
    }
    for f in ipv6::GROUPS {
        for s in Setting::ALL {
            let at = |sc| (f, Daemon::Floatip, s, sc);
            if let Some(st) = ipv6_stat(r, at(Scenario::Sigterm), outage6) {
                row(
                    format!(
                        "{}: SIGTERM, IPv6 client outage ≤ 10 ms ({})",
                        f.name(),
                        s.name()
                    ),
                    format!("{} ms", med_max(&st)),
                    Some(st.max <= 10.0),
                );
            }
            let followed: Vec<f64> = ipv6::faults(Daemon::Floatip)
                .into_iter()
                .filter_map(|sc| ipv6_stat(r, at(sc), |x| x.followed6_ms))
                .map(|st| st.max)
                .collect();
            if !followed.is_empty() {
                let worst = followed.iter().copied().fold(0.0, f64::max);
                row(
                    format!(
                        "{}: the IPv6 client follows the new holder within 20 ms, no flush ({}, every fault)",
                        f.name(),
                        s.name()
                    ),
                    format!("worst {} ms", fmt_ms(worst)),
                    Some(worst <= 20.0),
                );
            }
        }
    }
    let idle: Vec<&Idle> = r
        .idle
        .iter()
        .filter(|i| i.daemon == Daemon::Floatip && i.setting == Setting::OneSec)
        .collect();
    if !idle.is_empty() {
        let rss = idle.iter().map(|i| i.rss_kib).max().unwrap_or(0);
        row(
            "idle RSS ≤ 4 MiB (1 s)".into(),
            format!("{rss} KiB (largest of holder and backup)"),
            Some(rss <= 4096),
        );
        let cpu = idle
            .iter()
            .map(|i| i.cpu_percent_schedstat.unwrap_or(i.cpu_percent))
            .fold(0.0, f64::max);
        row(
            "idle CPU ≤ 0.05 % (1 s)".into(),
            format!("{cpu:.4} % (schedstat, worse of holder and backup)"),
            Some(cpu <= 0.05),
        );
    }
    for s in [Setting::OneSec, Setting::Fast] {
        let f = |get: fn(&Idle) -> Option<f64>| idle_pair(r, Daemon::Floatip, s, get);
        let k = |get: fn(&Idle) -> Option<f64>| idle_pair(r, Daemon::Keepalived, s, get);
        let frames = |i: &Idle| i.port_packets_per_s;
        if let (Some(f), Some(k)) = (f(frames), k(frames)) {
            row(
                format!("idle frames/s on the wire ≤ keepalived's ({})", s.name()),
                format!("{:.1} vs {:.1} (both ports)", f.0 + f.1, k.0 + k.1),
                Some(f.0 + f.1 <= k.0 + k.1),
            );
        }
        if let (Some(f), Some(k)) = (f(cpu), k(cpu)) {
            row(
                format!("idle CPU ≤ keepalived's on both nodes ({})", s.name()),
                format!(
                    "holder {:.3} vs {:.3} %, backup {:.3} vs {:.3} %",
                    f.0, k.0, f.1, k.1
                ),
                Some(f.0 <= k.0 && f.1 <= k.1),
            );
        }
        if let Some(st) = cell(r, Daemon::Floatip, s, Scenario::Partition)
            .and_then(|c| c.dual_restore_ms.as_ref())
        {
            row(
                format!(
                    "two holders after a partition heals: median ≤ 30 ms, max ≤ 60 ms ({})",
                    s.name()
                ),
                format!("{} ms", med_max(st)),
                Some(st.median <= 30.0 && st.max <= 60.0),
            );
        }
        if let Some(st) = cell(r, Daemon::FloatipEtcd, s, Scenario::Partition)
            .and_then(|c| c.dual_fault_ms.as_ref())
        {
            row(
                format!(
                    "floatip-etcd: two holders during a partition = 0 ms ({})",
                    s.name()
                ),
                format!(
                    "max {} ms (whole run: {} ms)",
                    fmt_ms(st.max),
                    fmt_ms(
                        cell(r, Daemon::FloatipEtcd, s, Scenario::Partition)
                            .map_or(f64::NAN, |c| c.dual_ms.max)
                    )
                ),
                Some(st.max == 0.0),
            );
        }
    }
    let fast = Setting::TenMs;
    if let (Some(f), Some(k)) = (
        idle_pair(r, Daemon::Floatip, fast, cpu),
        idle_pair(r, Daemon::Keepalived, fast.keepalived_peer(), cpu),
    ) {
        row(
            "10 ms setting: idle CPU per node ≤ keepalived's at 0.1 s (its busier node)".into(),
            format!("{:.3} / {:.3} % vs {:.3} %", f.0, f.1, k.0.max(k.1)),
            Some(f.0.max(f.1) <= k.0.max(k.1)),
        );
    }
    if let Some(c) = cell(r, Daemon::Floatip, fast, Scenario::LinkCut) {
        row(
            "10 ms setting: link cut outage ≤ 60 ms".into(),
            format!("{} ms", med_max(&c.outage_ms)),
            Some(c.outage_ms.max <= 60.0),
        );
    }
    for k in &r.soak {
        row(
            format!(
                "10 ms setting: no false take-over in the {:.0} s flap soak",
                k.seconds
            ),
            format!("{} (`{}`)", k.false_takeovers(), k.command),
            Some(k.false_takeovers() == 0),
        );
    }
    t
}

fn configs_section(r: &Results) -> String {
    let mut t = String::new();
    for (name, text) in &r.configs {
        let lang = if name.ends_with(".yml") {
            "yaml"
        } else if name.ends_with(".sh") {
            "sh"
        } else {
            "text"
        };
        let _ = writeln!(t, "`{name}`:\n\n```{lang}\n{}\n```\n", text.trim_end());
    }
    t
}

pub fn write_docs(r: &Results) {
    let mut tables = String::new();
    for s in Setting::ALL {
        if !r.cells.iter().any(|c| c.setting == s) {
            continue;
        }
        let _ = writeln!(tables, "### Client-visible outage — {}\n", s.title());
        let _ = writeln!(tables, "{}", outage_table(r, s));
        let _ = writeln!(
            tables,
            "### Dual holders, flips, final holder — {}\n",
            s.title()
        );
        let _ = writeln!(tables, "{}", detail_table(r, s));
    }
    if !r.failures.is_empty() {
        let _ = writeln!(tables, "### Runs that could not be measured\n");
        for f in &r.failures {
            let first = f.error.lines().next().unwrap_or("");
            let _ = writeln!(
                tables,
                "- {} {} {} rep {}: {first}",
                f.daemon.name(),
                f.setting.name(),
                f.scenario.name(),
                f.rep
            );
        }
        let _ = writeln!(tables);
    }
    let m = &r.machine;
    let machine = format!(
        "- CPU: {} × {} (nproc {})\n- kernel: {}\n- {}\n- {}\n- floatip: {}\n",
        m.nproc, m.cpu_model, m.nproc, m.kernel, m.keepalived, m.ucarp, m.floatip
    );
    let run = format!(
        "`{}` — {} repetitions per cell, {} runs, finished in {:.1} min{}.",
        r.command,
        r.reps,
        r.runs.len(),
        r.duration_s / 60.0,
        if r.quick {
            " (a smoke run: one repetition; not for quoting)"
        } else {
            ""
        }
    );
    let text = TEMPLATE
        .replace("{{RUN}}", &run)
        .replace("{{MACHINE}}", &machine)
        .replace("{{TARGETS}}", &targets_table(r))
        .replace("{{FINDINGS}}", FINDINGS)
        .replace("{{TABLES}}", &tables)
        .replace("{{COMPARISON}}", &comparison_table(r))
        .replace("{{LOSS}}", &super::soak::LOSS_PERCENT.to_string())
        .replace(
            "{{SOAK}}",
            &if r.soak.is_empty() {
                "Not run in this bench.\n".to_string()
            } else {
                soak_table(r)
            },
        )
        .replace("{{IDLE}}", &idle_table(r))
        .replace("{{IPV6}}", &ipv6_table(r))
        .replace(
            "{{IDLE_WINDOW}}",
            &format!("{:.0}", r.idle.first().map_or(0.0, |i| i.window_s)),
        )
        .replace("{{CONFIGS}}", &configs_section(r));
    let docs = crate::workspace_root().join("docs");
    std::fs::create_dir_all(&docs).expect("create docs/");
    std::fs::write(docs.join("benchmarks.md"), text).expect("write docs/benchmarks.md");
    std::fs::write(docs.join("benchmarks.svg"), svg(r)).expect("write docs/benchmarks.svg");
    eprintln!("bench: wrote docs/benchmarks.md and docs/benchmarks.svg");
}

/// Bars of the median outage per scenario and daemon, one panel per setting.
fn svg(r: &Results) -> String {
    let settings: Vec<Setting> = Setting::ALL
        .into_iter()
        .filter(|s| r.cells.iter().any(|c| c.setting == *s))
        .collect();
    let (w, panel_h, top, left) = (900.0, 300.0, 40.0, 60.0);
    let h = top + panel_h * settings.len() as f64 + 30.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">Client-visible outage after the fault, median of {} runs (ms; whisker = max)</text>"#,
        r.reps
    );
    for (i, d) in Daemon::ALL.iter().enumerate() {
        let x = w - 420.0 + i as f64 * 100.0;
        let _ = writeln!(
            o,
            r#"<rect x="{x}" y="28" width="10" height="10" fill="{}"/><text x="{}" y="37">{}</text>"#,
            d.color(),
            x + 14.0,
            d.name()
        );
    }
    for (pi, &s) in settings.iter().enumerate() {
        let y0 = top + pi as f64 * panel_h;
        let base = y0 + panel_h - 50.0;
        let plot_h = panel_h - 90.0;
        let max = r
            .cells
            .iter()
            .filter(|c| c.setting == s)
            .map(|c| c.outage_ms.max)
            .fold(1.0, f64::max);
        let _ = writeln!(
            o,
            r#"<text x="{left}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
            y0 + 22.0,
            s.title()
        );
        let _ = writeln!(
            o,
            r#"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="black"/>"#,
            w - 20.0
        );
        for frac in [0.0, 0.5, 1.0] {
            let y = base - plot_h * frac;
            let _ = writeln!(
                o,
                r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{:.0}</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
                left - 4.0,
                y + 4.0,
                max * frac,
                w - 20.0
            );
        }
        let group_w = (w - left - 20.0) / Scenario::ALL.len() as f64;
        for (si, sc) in Scenario::ALL.iter().enumerate() {
            let gx = left + si as f64 * group_w;
            let bar_w = (group_w - 20.0) / Daemon::ALL.len() as f64;
            for (di, d) in Daemon::ALL.iter().enumerate() {
                let Some(c) = cell(r, *d, s, *sc) else {
                    continue;
                };
                let x = gx + 10.0 + di as f64 * bar_w;
                let bh = plot_h * c.outage_ms.median / max;
                let mh = plot_h * c.outage_ms.max / max;
                let _ = writeln!(
                    o,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"/>"#,
                    base - bh,
                    bar_w - 3.0,
                    d.color()
                );
                let cx = x + (bar_w - 3.0) / 2.0;
                let _ = writeln!(
                    o,
                    r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="black"/>"#,
                    base - bh,
                    base - mh
                );
                let _ = writeln!(
                    o,
                    r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                    base - mh - 3.0,
                    fmt_ms(c.outage_ms.median)
                );
            }
            let label = sc.name().replace('_', " ");
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                gx + group_w / 2.0,
                base + 16.0
            );
        }
    }
    let _ = writeln!(o, "</svg>");
    o
}
