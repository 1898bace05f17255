//! `make demo-etcd`: the same partition twice, side by side. The holder loses its peer
//! (and, in the etcd group, etcd too) while the client still reaches both hosts: the LAN
//! protocol cannot tell "dead" from "cut off" and both hosts hold the address; with
//! `election: etcd` the cut-off holder gives the address up before its lease can expire
//! and the other host takes it only then.
//!
//! Needs root and etcd (Debian package `etcd-server`).

use std::process::ExitCode;
use std::time::Duration;

use floatip_lab::etcd::{etcd_binary, Cluster};
use floatip_lab::floatip::{ms, start, VIP, WATCH_PORT};
use floatip_lab::Lab;

use crate::demo::{floatip_binary, step};

/// How long each partition lasts.
const PARTITION: Duration = Duration::from_secs(4);

const LAN: &str = "\
floating_ip:
  enabled: true
  echo: {interval_in_ms: 200, timeout_in_ms: 600}
";

pub fn run() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        println!("make demo-etcd needs root (it creates network namespaces): sudo make demo-etcd");
        return ExitCode::FAILURE;
    }
    if etcd_binary().is_none() {
        println!("make demo-etcd needs etcd: apt-get install etcd-server");
        return ExitCode::FAILURE;
    }
    let result = floatip_binary().and_then(|bin| {
        let lan = partition(&bin, false)?;
        let etcd = partition(&bin, true)?;
        Ok((lan, etcd))
    });
    match result {
        Ok((lan, etcd)) => {
            println!("\n{:<28}{:>14}{:>16}", "", "two holders", "client outage");
            println!("{:<28}{:>11} ms{:>13} ms", "LAN protocol", lan.0, lan.1);
            println!("{:<28}{:>11} ms{:>13} ms", "election: etcd", etcd.0, etcd.1);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("demo-etcd failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One group of two hosts, partitioned for [`PARTITION`]: (two-holder ms, outage ms).
fn partition(bin: &str, with_etcd: bool) -> Result<(u128, u128), String> {
    let kind = if with_etcd {
        "election: etcd"
    } else {
        "LAN protocol"
    };
    step(&format!(
        "{kind}: hosts n1 and n2, a client{}",
        if with_etcd { ", etcd on e1" } else { "" }
    ));
    let nodes: &[&str] = if with_etcd {
        &["e1", "n1", "n2"]
    } else {
        &["n1", "n2"]
    };
    let lab = Lab::new(if with_etcd { "demo_etcd" } else { "demo_lan" }, nodes)
        .ok_or("cannot create network namespaces (is `ip` installed?)")?;
    let cluster = with_etcd.then(|| Cluster::start(&lab, &["e1"]));
    let mut config = LAN.to_string();
    if let Some(c) = &cluster {
        config += &format!(
            "  election: etcd\n  etcd: {{endpoints: {}, lease_ttl_in_ms: 2000}}\n",
            c.endpoints_yaml()
        );
    }
    println!("    gateway.yml:\n{}", indent(&config));
    let cfg = lab.write_file("gateway.yml", &config);
    let _procs = [start(&lab, bin, "n1", &cfg), start(&lab, bin, "n2", &cfg)];
    let holder = lab
        .wait_single_holder(VIP, Duration::from_secs(10))
        .ok_or("nobody took the floating IP within 10 s")?;
    let other = if holder == "n1" { "n2" } else { "n1" };
    let watch = lab.watch(VIP, WATCH_PORT);
    if !watch.wait_answer_from(&holder, Duration::from_secs(3)) {
        return Err(format!("the client gets no answer from {holder}"));
    }
    println!("    {holder} holds {VIP}; the client reaches it");
    let cut_from = if with_etcd {
        format!("{other} and etcd")
    } else {
        other.to_string()
    };
    println!(
        "    cutting {holder} off from {cut_from} for {} s (the client still reaches both hosts)",
        PARTITION.as_secs()
    );
    watch.mark("cut");
    lab.cut(&holder, other, true)?;
    if with_etcd {
        lab.cut(&holder, "e1", true)?;
    }
    std::thread::sleep(PARTITION);
    let holders = lab.holders(VIP);
    lab.cut(&holder, other, false)?;
    if with_etcd {
        lab.cut(&holder, "e1", false)?;
    }
    std::thread::sleep(ms(1000));
    let report = watch.stop();
    let dual = report.dual_holder_after("cut").as_millis();
    let outage = report.outage_after("cut").as_millis();
    println!("    holders at the end of the partition: {holders:?}");
    println!("    two holders for {dual} ms; the client waited {outage} ms");
    Ok((dual, outage))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
