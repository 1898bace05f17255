//! Live operations: `floatip handover` moves the address without stopping the daemon,
//! and the Prometheus endpoint, scraped from each node and parsed, shows one holder in
//! the group before and after.
//!
//! Run: `cargo nextest run --test integration -E 'test(live_ops::)' --no-capture`

use std::io::{Read, Write};
use std::time::Duration;

use crate::BIN;
use floatip_lab::floatip::*;
use floatip_lab::Lab;

const METRICS: &str = "metrics: {listen: 127.0.0.1:9797}";

/// `floatip_holding` of `node`, from its /metrics parsed by a Prometheus text parser.
fn holding(lab: &Lab, node: &str) -> f64 {
    let body = lab.in_ns(node, || {
        let mut s = std::net::TcpStream::connect("127.0.0.1:9797").expect("connect to /metrics");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("deadline");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("response");
        out
    });
    let (head, text) = body.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text");
    let sample = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "floatip_holding"
                && s.labels.get("address") == Some(VIP.to_string().as_str())
        })
        .unwrap_or_else(|| panic!("no floatip_holding for {VIP} in\n{text}"));
    match sample.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("floatip_holding is {other:?}"),
    }
}

#[test]
fn handover_moves_the_address_and_metrics_show_one_holder() {
    let Some(lab) = Lab::new("live_ops_handover", &["n1", "n2"]) else {
        return;
    };
    let t = Timing::FAST;
    let cfg1 = group_config(
        &lab,
        "n1",
        None,
        &["priority: 150", "preempt: true", METRICS],
    );
    let cfg2 = group_config(&lab, "n2", None, &[METRICS]);
    let _n1 = start(&lab, BIN, "n1", &cfg1);
    if let Err(e) = hold_alone(&lab, "n1", t.interval * 3, t.startup_bound() + ms(3000)) {
        panic!("{e}");
    }
    let _n2 = start(&lab, BIN, "n2", &cfg2);
    std::thread::sleep(t.interval * 4);
    let before = (holding(&lab, "n1"), holding(&lab, "n2"));
    let watch = lab.watch(VIP, WATCH_PORT);
    assert!(watch.wait_answer_from("n1", Duration::from_secs(3)));
    watch.mark("handover");
    let sock = format!("{}/n1.sock", lab.dir().display());
    let out = lab.run("n1", &[BIN, "handover", "--socket", &sock]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moved = hold_alone(&lab, "n2", t.interval * 5, ms(3000));
    let answered = watch.wait_answer_from("n2", Duration::from_secs(2));
    let report = watch.stop();
    let after = (holding(&lab, "n1"), holding(&lab, "n2"));
    let mut table = Table::new("floatip handover");
    table.check(
        "n2 holds alone after the handover (no take-back)",
        moved.is_ok(),
        format!("{moved:?}"),
    );
    table.check("client reaches n2", answered, report.summary());
    table.at_most(
        "client outage",
        report.outage_after("handover"),
        t.handover_bound(),
    );
    table.equal("holding n1/n2 before", before, (1.0, 0.0));
    table.equal("holding n1/n2 after", after, (0.0, 1.0));
    table.finish(&report.summary());
}

/// Lowering the holder's priority below a preempting backup's and sending SIGHUP moves
/// the address, by the same hand-over as a planned stop, without restarting anything.
#[test]
fn priority_reload_hands_the_address_to_a_better_backup() {
    let Some(lab) = Lab::new("live_ops_priority", &["n1", "n2"]) else {
        return;
    };
    let t = Timing::FAST;
    let cfg1 = group_config(&lab, "n1", None, &["priority: 150", "preempt: true"]);
    let cfg2 = group_config(&lab, "n2", None, &["priority: 100", "preempt: true"]);
    let n1 = start(&lab, BIN, "n1", &cfg1);
    if let Err(e) = hold_alone(&lab, "n1", t.interval * 3, t.startup_bound() + ms(3000)) {
        panic!("{e}");
    }
    let _n2 = start(&lab, BIN, "n2", &cfg2);
    // n2 must stay a backup while n1 outranks it.
    let kept = hold_alone(&lab, "n1", t.interval * 5, ms(3000));
    let watch = lab.watch(VIP, WATCH_PORT);
    assert!(watch.wait_answer_from("n1", Duration::from_secs(3)));
    group_config(&lab, "n1", None, &["priority: 50", "preempt: true"]);
    watch.mark("reload");
    assert!(n1.signal(nix::sys::signal::Signal::SIGHUP));
    let moved = hold_alone(&lab, "n2", t.interval * 5, ms(5000));
    let answered = watch.wait_answer_from("n2", Duration::from_secs(2));
    let report = watch.stop();
    let mut table = Table::new("priority lowered by SIGHUP");
    table.check(
        "n1 kept the address while it outranked n2",
        kept.is_ok(),
        format!("{kept:?}"),
    );
    table.check(
        "n2 holds alone after the reload",
        moved.is_ok(),
        format!("{moved:?}"),
    );
    table.check("client reaches n2", answered, report.summary());
    table.check(
        "n1 is still running (a reload, not a restart)",
        n1.is_running(),
        n1.log(),
    );
    table.at_most(
        "client outage",
        report.outage_after("reload"),
        t.handover_bound(),
    );
    table.finish(&report.summary());
}
