//! An IPv6-only group: the nodes and the client have no IPv4 address at all (2001:db8::/64
//! and link-local only), the floating address is 2001:db8::234/64, and the heartbeat runs
//! over IPv6 (TCP to the floating address, announces to the link-local group). One holder
//! is elected; a planned stop, a crash cleaned up by `floatip release` and a link cut move
//! the address, and an IPv6 client follows. IPv6 is enabled only inside the lab's
//! namespaces.
//!
//! Run: `cargo nextest run --test integration -E 'test(ipv6_only::)' --no-capture`

use std::time::{Duration, Instant};

use crate::BIN;
use floatip_lab::floatip::*;
use floatip_lab::{Lab, Proc};

/// Moves per scenario: each is measured, the median goes in the report.
const ROUNDS: usize = 3;

/// An IPv6-only pair n1, n2 with fast timing (each with its own config, for its status
/// socket), its daemons, and the holder.
struct Pair {
    lab: Lab,
    procs: Vec<(String, Proc)>,
    holder: String,
}

/// `node`'s config: `<lab dir>/<node>.yml`.
fn cfg(lab: &Lab, node: &str) -> std::path::PathBuf {
    lab.dir().join(format!("{node}.yml"))
}

fn ipv6_pair(test: &str) -> Option<Pair> {
    let lab = ipv6_only_lab(test, &["n1", "n2"])?;
    let t = Timing::FAST;
    let procs: Vec<(String, Proc)> = ["n1", "n2"]
        .map(|n| {
            let cfg = group_config(&lab, n, None, &[IPV6_ONLY_IP]);
            (n.to_string(), start(&lab, BIN, n, &cfg))
        })
        .into();
    let Some(holder) = lab.wait_single_holder(VIP6, t.startup_bound() * 2 + ms(2000)) else {
        let logs: Vec<(&str, &Proc)> = procs.iter().map(|(n, p)| (n.as_str(), p)).collect();
        panic!(
            "no single holder of {VIP6}; holders {:?}\n{}",
            lab.holders(VIP6),
            transition_logs(&logs)
        );
    };
    Some(Pair { lab, procs, holder })
}

/// Whether `node` alone held [`VIP6`] for `stable` on end, within `timeout`.
fn held_alone(lab: &Lab, node: &str, stable: Duration, timeout: Duration) -> bool {
    let mut since: Option<Instant> = None;
    lab.wait_until(timeout, ms(5), || {
        if lab.holders(VIP6) == [node] {
            since.get_or_insert_with(Instant::now).elapsed() >= stable
        } else {
            since = None;
            false
        }
    })
}

/// The group elects one holder and keeps it: the backup follows it over a TCP connection
/// to the floating address, the holder hears the backup's announces on the IPv6 group,
/// and each node names itself by its own IPv6 address; no node has an IPv4 address to
/// fall back on.
#[test]
fn one_holder_is_elected_over_ipv6() {
    let Some(pair) = ipv6_pair("v6only_elect") else {
        return;
    };
    let (lab, holder) = (&pair.lab, pair.holder.as_str());
    let backup = other(holder);
    let steady = held_alone(lab, holder, ms(2000), ms(5000));
    let ipv4: Vec<String> = ["n1", "n2", floatip_lab::CLIENT]
        .iter()
        .map(|n| lab.sh_ok(n, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]))
        .collect();
    let proc_of = |node: &str| &pair.procs.iter().find(|(n, _)| n == node).unwrap().1;
    let following = lab.sh_ok(
        backup,
        &[
            "ss",
            "-t",
            "-n",
            "-H",
            "state",
            "established",
            "dst",
            &format!("[{VIP6}]:{ECHO_PORT}"),
        ],
    );
    let (held, backed) = (
        crate::status_json(lab, holder),
        crate::status_json(lab, backup),
    );
    let peers = |s: &serde_json::Value| -> Vec<String> {
        s["peers"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|p| p["node"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let checked = lab.run(backup, &[BIN, "check", "-c", path_str(&cfg(lab, backup))]);
    let check = floatip_lab::printed(&checked);
    let mut table = Table::new("IPv6-only election");
    table.check(
        "no IPv4 address on the LAN",
        ipv4.iter().all(|out| out.trim().is_empty()),
        format!("{ipv4:?}"),
    );
    table.check(
        &format!("{holder} alone held {VIP6} for 2 s"),
        steady,
        format!("holders {:?}", lab.holders(VIP6)),
    );
    table.equal("the backup's role", last_role(proc_of(backup)), "BACKUP");
    table.check(
        &format!("{backup} follows {VIP6} over TCP"),
        !following.trim().is_empty(),
        following.clone(),
    );
    table.equal(
        &format!("{backup} names the holder"),
        backed["holder"].clone(),
        serde_json::json!(lab.ip6(holder).to_string()),
    );
    table.equal(
        &format!("{holder} heard {backup}'s announces"),
        peers(&held),
        vec![lab.ip6(backup).to_string()],
    );
    table.equal(
        &format!("{holder}'s status"),
        (
            held["node"].clone(),
            held["vip"].clone(),
            held["state"].clone(),
        ),
        (
            serde_json::json!(lab.ip6(holder).to_string()),
            serde_json::json!(VIP6.to_string()),
            serde_json::json!("MASTER"),
        ),
    );
    table.check(
        &format!("check on {backup} names its IPv6 address"),
        checked.status.success()
            && check.contains(&format!("node address:           {}\n", lab.ip6(backup))),
        check.clone(),
    );
    for node in ["n1", "n2"] {
        table.check(
            &format!("{node} runs as {}", lab.ip6(node)),
            proc_of(node)
                .log()
                .contains(&format!("on eth0 ({})", lab.ip6(node))),
            format!("{:?}", log_lines(proc_of(node), "starting as BACKUP")),
        );
    }
    let logs: Vec<(&str, &Proc)> = pair.procs.iter().map(|(n, p)| (n.as_str(), p)).collect();
    table.finish(&transition_logs(&logs));
}

/// Moves the address off the holder `ROUNDS` times by `fault` (restarting or reconnecting
/// the node after each round) with an IPv6 client watching: each round the address ends
/// on the other node alone, the client is answered by it, and its outage stays within
/// the bound.
fn rounds(test: &str, fault: Fault, name: &str) {
    let Some(Pair {
        lab,
        mut procs,
        mut holder,
    }) = ipv6_pair(test)
    else {
        return;
    };
    let t = Timing::FAST;
    let bound = fault.bound(t);
    std::thread::sleep(t.interval * 3);
    let mut table = Table::new(name);
    let (mut outages, mut summaries) = (vec![], vec![]);
    for round in 1..=ROUNDS {
        let next = other(&holder);
        let watch = lab.watch(VIP6, WATCH_PORT6);
        assert!(
            watch.wait_answer_from(&holder, Duration::from_secs(3)),
            "the IPv6 client never reached {holder}"
        );
        std::thread::sleep(ms(50));
        watch.mark("fault");
        let i = procs.iter().position(|(n, _)| *n == holder).unwrap();
        let cfg = cfg(&lab, &holder);
        fault.inflict(&lab, BIN, &holder, &procs[i].1, &cfg);
        let moved = lab.wait_until(bound + ms(2000), ms(2), || lab.holders(VIP6) == [next]);
        let answered = watch.wait_answer_from(next, Duration::from_secs(2));
        std::thread::sleep(ms(100));
        let report = watch.stop();
        let outage = report.outage_after("fault");
        scenario_line(
            &format!("{name}_{round}"),
            outage,
            report.dual_holder_after("fault"),
            report.flips,
            "",
        );
        table.check(
            &format!("round {round}: the address moved to {next}"),
            moved,
            format!("holders {:?}", lab.holders(VIP6)),
        );
        table.check(
            &format!("round {round}: the client is answered by {next}"),
            answered,
            format!("{:?}", report.answer_order),
        );
        table.below(&format!("round {round}: IPv6 outage"), outage, bound);
        table.equal(
            &format!("round {round}: dual-holder time"),
            report.dual_holder_after("fault"),
            Duration::ZERO,
        );
        outages.push(outage);
        summaries.push(report.summary());
        // The old holder comes back as a backup: the next round moves the address back.
        fault.undo(&lab, BIN, &holder, &mut procs[i].1, &cfg);
        table.check(
            &format!("round {round}: {holder} came back as a backup"),
            held_alone(&lab, next, t.timeout, ms(5000)),
            format!("holders {:?}", lab.holders(VIP6)),
        );
        std::thread::sleep(t.interval * 3);
        holder = next.to_string();
    }
    outages.sort();
    println!(
        "SCENARIO {name}_median outage={}ms",
        outages[outages.len() / 2].as_millis()
    );
    table.finish_rounds(&summaries, &procs);
}

/// A planned stop hands the address over at once: the resignation goes to the IPv6 group.
#[test]
fn sigterm_moves_the_address() {
    rounds("v6only_term", Fault::Sigterm, "ipv6_only_sigterm");
}

/// A crashed holder's address is freed by `floatip release`, which tells the group over
/// IPv6: the backup takes it at once.
#[test]
fn sigkill_and_release_move_the_address() {
    rounds(
        "v6only_kill",
        Fault::KillAndRelease,
        "ipv6_only_sigkill_release",
    );
}

/// A holder that loses its link drops the address; the backup takes it after the
/// detection time (300 ms).
#[test]
fn link_cut_moves_the_address() {
    rounds("v6only_cut", Fault::LinkCut, "ipv6_only_link_cut");
}
