//! The daemon as a service manager sees it: sd_notify messages on a real NOTIFY_SOCKET,
//! watchdog pings from the state loop, `floatip status`, and SIGHUP reloads.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::BIN;
use floatip_lab::floatip::VIP;

fn config(lab: &floatip_lab::Lab, node: &str, timeout_ms: u32) -> String {
    let text = format!(
        "floating_ip:\n  enabled: true\n  status_socket: {}/{node}.sock\n  echo:\n    interval_in_ms: 100\n    timeout_in_ms: {timeout_ms}\n",
        lab.dir().display()
    );
    lab.write_file(&format!("{node}.yml"), &text)
        .display()
        .to_string()
}

/// Everything sent to the socket until `until` has passed.
fn collect(sock: &UnixDatagram, until: Duration) -> Vec<(Instant, String)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    while start.elapsed() < until {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).to_string(),
            ));
        }
    }
    got
}

#[test]
fn notify_socket_gets_ready_status_and_watchdog() {
    let Some(lab) = floatip_lab::Lab::new("notify", &["n1"]) else {
        return;
    };
    let path = lab.dir().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    let cfg = config(&lab, "n1", 300);
    let started = Instant::now();
    let notify = path.display().to_string();
    let n1 = lab.spawn(
        "n1",
        &[BIN, "run", "-c", &cfg],
        &[
            ("NOTIFY_SOCKET", notify.as_str()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let msgs = collect(&sock, Duration::from_millis(2500));
    let text: Vec<&str> = msgs.iter().map(|(_, m)| m.as_str()).collect();
    let ready = msgs
        .iter()
        .position(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .expect("READY=1 sent");
    assert!(
        msgs[ready].0 - started < Duration::from_secs(2),
        "READY within 2 s"
    );
    assert!(
        text.iter()
            .any(|m| m.starts_with("STATUS=MASTER 192.0.2.234 holder 192.0.2.11")),
        "STATUS follows the take-over: {text:?}"
    );
    let pings: Vec<Instant> = msgs
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    // Half of WATCHDOG_USEC: every ~200 ms, so about 10-12 in 2.5 s.
    assert!(
        (8..=14).contains(&pings.len()),
        "{} watchdog pings: {text:?}",
        pings.len()
    );
    let widest = pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        widest < Duration::from_millis(400),
        "watchdog gap {widest:?} must stay under WATCHDOG_USEC"
    );

    assert!(n1.signal(Signal::SIGTERM));
    let tail = collect(&sock, Duration::from_millis(500));
    assert!(
        tail.iter().any(|(_, m)| m.contains("STOPPING=1")),
        "STOPPING=1 on shutdown: {tail:?}"
    );
    assert!(n1
        .wait_exit(Duration::from_secs(3))
        .is_some_and(|s| s.success()));
    assert!(lab.holders(VIP).is_empty(), "address released on stop");
}

#[test]
fn status_command_reports_state_peers_and_counters() {
    let Some(lab) = floatip_lab::Lab::new("status", &["n1", "n2"]) else {
        return;
    };
    let (c1, c2) = (config(&lab, "n1", 300), config(&lab, "n2", 300));
    let _n1 = lab.spawn("n1", &[BIN, "run", "-c", &c1], &[]);
    assert_eq!(
        lab.wait_single_holder(VIP, Duration::from_secs(5))
            .as_deref(),
        Some("n1")
    );
    let _n2 = lab.spawn("n2", &[BIN, "run", "-c", &c2], &[]);
    assert_eq!(
        lab.wait_single_holder(VIP, Duration::from_secs(5))
            .as_deref(),
        Some("n1")
    );
    // Until each node has heard the other (bounded).
    let (mut human, mut json) = (String::new(), String::new());
    let stdout = |node: &str, args: &[&str]| {
        String::from_utf8_lossy(&lab.run(node, args).stdout).into_owned()
    };
    let heard = lab.wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        human = stdout("n2", &[BIN, "status", "-c", &c2]);
        json = stdout("n1", &[BIN, "status", "--json", "-c", &c1]);
        human.contains("192.0.2.11 MASTER") && json.contains("192.0.2.12")
    });
    assert!(heard, "n2: {human}\nn1: {json}");
    assert!(human.contains("state:     BACKUP"), "{human}");
    assert!(human.contains("holder:    192.0.2.11"), "{human}");
    assert!(human.contains("192.0.2.11 MASTER priority 100"), "{human}");

    let v: serde_json::Value = serde_json::from_str(&json).expect("status --json is JSON");
    assert_eq!(v["state"], "MASTER");
    assert_eq!(v["holder"], "192.0.2.11");
    assert_eq!(v["counters"]["takeovers"], 1);
    assert_eq!(v["peers"][0]["node"], "192.0.2.12");
    assert_eq!(v["peers"][0]["role"], "BACKUP");

    let sock = lab.dir().join("n1.sock");
    let mode = std::fs::metadata(&sock)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "status socket is root-only");

    let missing = lab.run(
        "n1",
        &[BIN, "status", "--socket", "/nonexistent/floatip.sock"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr)
        .contains("no floatip daemon answers on /nonexistent/floatip.sock"));
}

#[test]
fn sighup_reload_keeps_the_address_and_rejects_bad_files() {
    let Some(lab) = floatip_lab::Lab::new("reload", &["n1"]) else {
        return;
    };
    let cfg = config(&lab, "n1", 300);
    let n1 = lab.spawn("n1", &[BIN, "run", "-c", &cfg], &[]);
    assert_eq!(
        lab.wait_single_holder(VIP, Duration::from_secs(5))
            .as_deref(),
        Some("n1")
    );
    let watch = lab.watch(VIP, 9999);
    assert!(watch.wait_answer_from("n1", Duration::from_secs(3)));

    // A timing change applies in place.
    config(&lab, "n1", 600);
    watch.mark("good reload");
    assert!(n1.signal(Signal::SIGHUP));
    assert!(
        n1.wait_log("applied echo.timeout_in_ms", Duration::from_secs(3)),
        "{}",
        n1.log()
    );

    // A broken file is rejected and the old config kept.
    lab.write_file(
        "n1.yml",
        "floating_ip:\n  enabled: true\n  echo:\n    port: 99999\n",
    );
    assert!(n1.signal(Signal::SIGHUP));
    assert!(
        n1.wait_log(
            "reload rejected, keeping the running config",
            Duration::from_secs(3)
        ),
        "{}",
        n1.log()
    );
    assert!(n1.log().contains("floating_ip.echo.port"), "{}", n1.log());

    // A change of address needs a restart: refused, address kept.
    lab.write_file(
        "n1.yml",
        "floating_ip:\n  enabled: true\n  ip: 192.0.2.200\n",
    );
    assert!(n1.signal(Signal::SIGHUP));
    assert!(
        n1.wait_log("restart floatip to apply ip", Duration::from_secs(3)),
        "{}",
        n1.log()
    );
    assert!(
        n1.log().contains("still running the old values"),
        "{}",
        n1.log()
    );

    std::thread::sleep(Duration::from_millis(300));
    let report = watch.stop();
    assert_eq!(lab.holders(VIP), vec!["n1".to_string()]);
    assert_eq!(report.flips, 0, "{}", report.summary());
    // The address stays (holders and flips above); this only catches a reload
    // that stalled the daemon. How short the gap is belongs to the bench.
    assert!(
        report.outage_after("good reload") < Duration::from_secs(1),
        "{}",
        report.summary()
    );
    assert!(n1.is_running());
}
