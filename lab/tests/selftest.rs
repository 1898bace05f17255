//! Tests of the namespace lab itself, without floatip: the address is moved
//! by hand, and the lab must see exactly what happened.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use floatip_lab::Lab;
use nix::sys::signal::Signal;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 234);

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn all_namespaces(lab: &Lab) -> Vec<String> {
    let mut v: Vec<String> = lab.nodes().iter().map(|n| lab.ns(n)).collect();
    v.push(lab.ns("client"));
    v.push(lab.ns("sw"));
    v
}

fn assert_gone(names: &[String]) {
    let list = netns_list();
    for ns in names {
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns)),
            "{ns} left behind:\n{list}"
        );
        assert!(
            !std::path::Path::new("/run/netns").join(ns).exists(),
            "/run/netns/{ns} left behind"
        );
    }
}

#[test]
fn layout_addresses_and_macs() {
    let Some(lab) = Lab::new("layout_addresses_and_macs", &["n1", "n2", "n3"]) else {
        return;
    };
    assert_eq!(lab.nodes(), ["n1", "n2", "n3"]);
    assert_eq!(lab.ip("n1"), Ipv4Addr::new(192, 0, 2, 11));
    assert_eq!(lab.ip("n3"), Ipv4Addr::new(192, 0, 2, 13));
    assert_eq!(lab.ip("client"), Ipv4Addr::new(192, 0, 2, 100));
    assert!(lab.ns("client").len() <= 15, "{}", lab.ns("client"));
    let mac = lab.mac("n2");
    assert_eq!(mac.len(), 17);
    assert_eq!(mac, mac.to_lowercase());
    // The LAN works: the client reaches every node, and learns its MAC.
    for n in lab.nodes() {
        let ip = lab.ip(n).to_string();
        lab.sh_ok("client", &["ping", "-c", "1", "-W", "2", &ip]);
        assert_eq!(lab.client_neigh_mac(lab.ip(n)), Some(lab.mac(n)));
    }
    assert_eq!(lab.client_neigh_mac(VIP), None);
    assert!(lab.holders(lab.ip("n2")) == ["n2"]);
    assert!(lab.holders(VIP).is_empty());
    // Nothing but lo and eth0 in a node; IPv6 off.
    let links = lab.sh_ok("n1", &["ip", "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 2, "{links}");
    let v6 = lab.sh_ok("n1", &["ip", "-6", "addr", "show"]);
    assert!(v6.trim().is_empty(), "IPv6 addresses present: {v6}");
}

#[test]
fn watch_sees_a_manual_move() {
    let Some(lab) = Lab::new("watch_sees_a_manual_move", &["n1", "n2"]) else {
        return;
    };
    let watch = lab.watch(VIP, 9999);
    lab.sh_ok(
        "n1",
        &["ip", "addr", "add", "192.0.2.234/24", "dev", "eth0"],
    );
    assert!(
        watch.wait_answer_from("n1", Duration::from_secs(5)),
        "no answer from n1"
    );
    assert_eq!(lab.client_neigh_mac(VIP), Some(lab.mac("n1")));
    std::thread::sleep(Duration::from_millis(100));

    watch.mark("move");
    lab.sh_ok(
        "n1",
        &["ip", "addr", "del", "192.0.2.234/24", "dev", "eth0"],
    );
    lab.sh_ok(
        "n2",
        &["ip", "addr", "add", "192.0.2.234/24", "dev", "eth0"],
    );
    lab.client_neigh_flush(VIP);
    assert!(
        watch.wait_answer_from("n2", Duration::from_secs(5)),
        "no answer from n2"
    );
    std::thread::sleep(Duration::from_millis(100));
    let report = watch.stop();
    eprintln!("{}", report.summary());

    assert_eq!(report.answer_order, ["n1", "n2"], "{}", report.summary());
    assert_eq!(report.flips, 1);
    let sets: Vec<Vec<String>> = report
        .holder_history
        .iter()
        .map(|(_, h)| h.clone())
        .collect();
    let sets: Vec<Vec<String>> = sets.into_iter().filter(|h| !h.is_empty()).collect();
    assert_eq!(
        sets,
        [vec!["n1".to_string()], vec!["n2".to_string()]],
        "{}",
        report.summary()
    );
    assert_eq!(report.dual_holder, Duration::ZERO);
    assert_eq!(report.final_holders, ["n2"]);
    assert_eq!(report.answered_by_at_end.as_deref(), Some("n2"));
    assert!(
        report.samples > 20 && report.answers > 50,
        "{}",
        report.summary()
    );
    let outage = report.outage_after("move");
    assert!(
        outage > Duration::ZERO && outage < Duration::from_secs(2),
        "{}",
        report.summary()
    );
    assert_eq!(lab.client_neigh_mac(VIP), Some(lab.mac("n2")));
}

#[test]
fn holders_is_fast() {
    let Some(lab) = Lab::new("holders_is_fast", &["n1", "n2", "n3"]) else {
        return;
    };
    lab.sh_ok(
        "n3",
        &["ip", "addr", "add", "192.0.2.234/24", "dev", "eth0"],
    );
    let t = std::time::Instant::now();
    for _ in 0..200 {
        assert_eq!(lab.holders(VIP), ["n3"]);
    }
    let per = t.elapsed() / 200;
    eprintln!("holders(): {per:?} per call for 3 nodes");
    assert!(per < Duration::from_millis(5), "holders() takes {per:?}");
    assert_eq!(
        lab.wait_single_holder(VIP, Duration::from_secs(1))
            .as_deref(),
        Some("n3")
    );
}

#[test]
fn drop_removes_everything() {
    let (names, dir) = {
        let Some(lab) = Lab::new("drop_removes_everything", &["n1", "n2"]) else {
            return;
        };
        let names = all_namespaces(&lab);
        let list = netns_list();
        for ns in &names {
            assert!(
                list.contains(ns.as_str()),
                "{ns} missing while the lab lives:\n{list}"
            );
        }
        (names, lab.dir().to_path_buf())
    };
    assert_gone(&names);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn panic_still_cleans_up() {
    let names = std::sync::Mutex::new(Vec::new());
    let pid = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let Some(lab) = Lab::new("panic_still_cleans_up", &["n1"]) else {
            return;
        };
        *names.lock().unwrap() = all_namespaces(&lab);
        let p = lab.spawn("n1", &["sleep", "600"], &[]);
        *pid.lock().unwrap() = Some(p.pid());
        std::mem::forget(p); // only the lab knows about it now
        panic!("deliberate panic with a lab alive");
    });
    let names = names.into_inner().unwrap();
    if names.is_empty() {
        floatip_lab::cannot_run("panic_still_cleans_up", "no lab was built");
        return;
    }
    assert!(result.is_err());
    assert_gone(&names);
    let pid = pid.into_inner().unwrap().expect("pid recorded");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "sleep {pid} survived"
    );
}

#[test]
fn link_down_removes_carrier() {
    let Some(lab) = Lab::new("link_down_removes_carrier", &["n1", "n2"]) else {
        return;
    };
    let show = || lab.sh_ok("n1", &["ip", "link", "show", "eth0"]);
    assert!(show().contains("state UP"), "{}", show());
    lab.link("n1", false);
    let down = |s: &str| {
        s.contains("NO-CARRIER") || s.contains("state DOWN") || s.contains("LOWERLAYERDOWN")
    };
    assert!(
        lab.wait_until(Duration::from_secs(2), Duration::from_millis(10), || down(
            &show()
        )),
        "{}",
        show()
    );
    let ip = lab.ip("n1").to_string();
    assert!(!lab
        .run("client", &["ping", "-c", "1", "-W", "1", &ip])
        .status
        .success());
    lab.link("n1", true);
    assert!(
        lab.wait_until(Duration::from_secs(2), Duration::from_millis(10), || show()
            .contains("state UP")),
        "{}",
        show()
    );
    lab.sh_ok("client", &["ping", "-c", "1", "-W", "2", &ip]);
}

#[test]
fn spawn_signal_stop_and_logs() {
    let Some(lab) = Lab::new("spawn_signal_stop_and_logs", &["n1"]) else {
        return;
    };
    let script =
        "trap 'echo got TERM; exit 3' TERM; echo ready $FIP_X; ip -o -4 addr show dev eth0; \
                  while true; do sleep 0.05; done";
    let p = lab.spawn("n1", &["sh", "-c", script], &[("FIP_X", "hello")]);
    assert!(
        p.wait_log("ready hello", Duration::from_secs(5)),
        "log: {}",
        p.log()
    );
    assert!(
        p.wait_log("192.0.2.11/24", Duration::from_secs(5)),
        "not in n1: {}",
        p.log()
    );
    // `ip netns exec` execs the program: the PID we hold is `sh` itself.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", p.pid())).expect("read comm");
    assert_eq!(comm.trim(), "sh");
    // Freeze and thaw.
    assert!(p.signal(Signal::SIGSTOP));
    assert!(p.is_running());
    assert!(p.signal(Signal::SIGCONT));
    let st = p.stop();
    assert_eq!(st.code(), Some(3), "log: {}", p.log());
    assert!(p.log().contains("got TERM"));
    assert!(!p.signal(Signal::SIGTERM), "signalled a reaped process");

    // A program that ignores SIGTERM is killed after the grace period.
    let stubborn = lab.spawn(
        "n1",
        &[
            "sh",
            "-c",
            "trap '' TERM; echo up; while true; do sleep 0.05; done",
        ],
        &[],
    );
    assert!(stubborn.wait_log("up", Duration::from_secs(5)));
    let st = stubborn.kill9();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(9));
    let quick = lab.spawn("n1", &["true"], &[]);
    assert!(quick
        .wait_exit(Duration::from_secs(5))
        .expect("true exits")
        .success());
}

#[test]
fn partition_blocks_nodes_but_not_the_client() {
    let Some(lab) = Lab::new("partition_blocks_nodes_but_not_the_client", &["n1", "n2"]) else {
        return;
    };
    // A UDP echo in n2 on port 7000; probe from n1 and from the client.
    let echo = |from: &str| -> bool {
        let target = lab.ip("n2");
        let bound = std::sync::mpsc::channel();
        let n2 = lab.ns("n2");
        let server = std::thread::spawn(move || {
            floatip_lab::in_netns(&n2, move || {
                let s = std::net::UdpSocket::bind("0.0.0.0:7000").expect("bind 7000 in n2");
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                bound.0.send(()).unwrap();
                let mut b = [0u8; 16];
                if let Ok((n, peer)) = s.recv_from(&mut b) {
                    let _ = s.send_to(&b[..n], peer);
                }
            })
        });
        bound.1.recv().unwrap();
        let got = lab.in_ns(from, move || {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind client socket");
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            if s.send_to(b"hi", (target, 7000)).is_err() {
                return false;
            }
            let mut b = [0u8; 16];
            s.recv_from(&mut b).is_ok()
        });
        server.join().unwrap();
        got
    };
    assert!(echo("n1"));
    match lab.partition(7000, true) {
        Ok(()) => {}
        Err(e) => {
            assert!(e.contains("nftables"), "{e}");
            floatip_lab::cannot_run("partition_blocks_nodes_but_not_the_client", &e);
            return;
        }
    }
    assert!(!echo("n1"), "partition did not block n1 -> n2");
    assert!(echo("client"), "partition blocked the client");
    // TCP too, and like a real partition: the connect times out (no EPERM).
    // A socket made in a namespace stays there, so the listener can live here.
    let listener = lab.in_ns("n2", || {
        std::net::TcpListener::bind("0.0.0.0:7000").expect("listen in n2")
    });
    let dial = |from: &str| {
        let to = std::net::SocketAddr::from((lab.ip("n2"), 7000));
        lab.in_ns(from, move || {
            std::net::TcpStream::connect_timeout(&to, Duration::from_millis(300)).map(|_| ())
        })
    };
    let err = dial("n1").expect_err("TCP n1 -> n2 crossed the partition");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    dial("client").expect("client -> n2 over TCP");
    drop(listener);
    lab.partition(7000, true).expect("partition is idempotent");
    lab.partition(7000, false).expect("heal");
    assert!(echo("n1"), "heal did not restore n1 -> n2");
    lab.partition(7000, false).expect("healing twice is fine");
}

#[test]
fn cut_separates_two_nodes_arp_included() {
    let Some(lab) = Lab::new("cut_separates_two_nodes_arp_included", &["n1", "n2", "n3"]) else {
        return;
    };
    let ping = |from: &str, to: &str| {
        let ip = lab.ip(to).to_string();
        lab.run(from, &["ping", "-c", "1", "-W", "1", &ip])
            .status
            .success()
    };
    assert!(ping("n1", "n2"));
    if let Err(e) = lab.cut("n1", "n2", true) {
        assert!(e.contains("nftables"), "{e}");
        eprintln!("SKIP: cut part: {e}");
        return;
    }
    // A fresh ARP request must not cross either: forget what n1 learnt.
    lab.sh_ok("n1", &["ip", "neigh", "flush", "dev", "eth0"]);
    assert!(!ping("n1", "n2"), "the cut let n1 reach n2");
    assert!(!ping("n2", "n1"), "the cut let n2 reach n1");
    let neigh = lab.sh_ok("n1", &["ip", "neigh", "show", &lab.ip("n2").to_string()]);
    assert!(!neigh.contains("lladdr"), "ARP crossed the cut: {neigh}");
    assert!(ping("n1", "n3") && ping("n2", "n3") && ping("client", "n1"));
    lab.cut("n1", "n2", true).expect("cutting twice is fine");
    lab.cut("n1", "n2", false).expect("restore");
    // The failed neighbour entry is retried by the next packets.
    assert!(
        (0..5).any(|_| ping("n1", "n2")),
        "restoring did not reconnect n1 and n2"
    );
    lab.cut("n1", "n2", false).expect("restoring twice is fine");
}

/// IPv6 is on in the nodes and the client once asked for, and nowhere else: the switch
/// keeps it off. A watch follows an IPv6 address the way it follows an IPv4 one.
#[test]
fn ipv6_only_inside_the_nodes_and_the_client() {
    let Some(lab) = Lab::new("ipv6_only_inside", &["n1", "n2"]) else {
        return;
    };
    let v6 = |node: &str| lab.sh_ok(node, &["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
    assert_eq!(v6("n1").trim(), "", "IPv6 is off until asked for");
    lab.enable_ipv6();
    assert_eq!(lab.ip6("n2").to_string(), "2001:db8::12");
    assert_eq!(lab.ip6("client").to_string(), "2001:db8::100");
    for node in ["n1", "n2", "client"] {
        let own = format!("{}/64", lab.ip6(node));
        assert!(v6(node).contains(&own), "{node}: {}", v6(node));
    }
    let sw = lab.run("sw", &["cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"]);
    let off = String::from_utf8_lossy(&sw.stdout);
    assert!(off.trim() == "1" || !sw.status.success(), "switch: {off}");

    let vip6 = "2001:db8::234";
    let watch = lab.watch(vip6.parse::<std::net::IpAddr>().unwrap(), 9998);
    lab.sh_ok(
        "n1",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8::234/64",
            "dev",
            "eth0",
            "nodad",
        ],
    );
    assert!(
        watch.wait_answer_from("n1", Duration::from_secs(5)),
        "no IPv6 answer from n1"
    );
    let report = watch.stop();
    assert_eq!(report.final_holders, ["n1"], "{}", report.summary());
    let ip: std::net::IpAddr = vip6.parse().unwrap();
    assert_eq!(lab.client_neigh_mac(ip), Some(lab.mac("n1")));
}
