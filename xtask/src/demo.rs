//! `make demo`: floatip on a throw-away LAN of network namespaces.
//!
//! Two hosts (n1, n2) and a client on one bridge; floatip with zero config
//! on both (plus a fast heartbeat so the demo takes seconds). The client
//! sends a UDP probe to the floating IP every 2 ms and we report how long it
//! went unanswered when the holder stops, and when its cable is pulled. Then
//! the same hand-over once more with a dual-stack group (192.0.2.234 and
//! 2001:db8::234/64), watched by an IPv4 and an IPv6 client at once.
//!
//! Needs root (it creates network namespaces). Finds floatip in
//! `$FLOATIP_BIN`, else `target/release/floatip` (built by `make demo`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use floatip_lab::floatip::{
    dual_holders, dual_stack_lab, hold_alone, ms, start, DualWatch, DUAL_STACK_IP, VIP, VIP6,
    WATCH_PORT, WATCH_PORT6,
};
use floatip_lab::Lab;

/// Fast heartbeat for the demo: interval 200 ms, timeout 600 ms (the
/// defaults are 1000 ms and 10000 ms).
const CONFIG: &str = "\
# gateway.yml: floatip reads only its own section
elasticsearch:
  hosts: [\"http://localhost:9200\"]
floating_ip:
  enabled: true
  echo: {interval_in_ms: 200, timeout_in_ms: 600}
";

pub fn run() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        println!("make demo needs root (it creates network namespaces): sudo make demo");
        return ExitCode::FAILURE;
    }
    let bin = match floatip_binary() {
        Ok(b) => b,
        Err(e) => {
            println!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match demo(&bin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn floatip_binary() -> Result<String, String> {
    let path = crate::floatip_bin();
    if path.is_file() {
        return Ok(path.to_string_lossy().into_owned());
    }
    Err(format!(
        "{} not found: run `cargo build --release` first (or set FLOATIP_BIN)",
        path.display()
    ))
}

pub fn step(text: &str) {
    println!("\n==> {text}");
}

fn demo(bin: &str) -> Result<(), String> {
    let started = Instant::now();
    step("Building a LAN in network namespaces: hosts n1 (192.0.2.11) and n2 (192.0.2.12), a client (192.0.2.100), one switch");
    let lab = Lab::new("demo", &["n1", "n2"])
        .ok_or("cannot create network namespaces (is `ip` installed?)")?;
    let cfg = lab.write_file("gateway.yml", CONFIG);
    println!(
        "    gateway.yml on both hosts: `floating_ip: {{enabled: true}}` (zero config: the address"
    );
    println!("    is x.y.z.234 of the subnet, the interface is found automatically), plus a fast heartbeat");
    println!("    for this demo: every 200 ms, a host is declared dead after 600 ms of silence");

    step("Starting floatip on both hosts at the same moment");
    let t0 = Instant::now();
    let mut n1 = Some(start(&lab, bin, "n1", &cfg));
    let mut n2 = Some(start(&lab, bin, "n2", &cfg));
    let holder = lab
        .wait_single_holder(VIP, Duration::from_secs(10))
        .ok_or("nobody took the floating IP within 10 s")?;
    println!(
        "    {holder} holds {VIP} (after {} ms); the other host is its backup",
        t0.elapsed().as_millis()
    );

    step("The client starts sending a UDP probe to 192.0.2.234 every 2 ms");
    let watch = lab.watch(VIP, WATCH_PORT);
    if !watch.wait_answer_from(&holder, Duration::from_secs(3)) {
        return Err(format!("the client gets no answer from {holder}"));
    }
    println!("    answered by {holder}");
    std::thread::sleep(Duration::from_millis(500));

    step(&format!(
        "Planned stop: `systemctl stop floatip` on {holder} (SIGTERM)"
    ));
    let other = if holder == "n1" { "n2" } else { "n1" };
    watch.mark("stop");
    let stopped = if holder == "n1" { n1.take() } else { n2.take() };
    if let Some(p) = stopped {
        p.stop();
    }
    let new = wait_holder(&lab, other)?;
    if !watch.wait_answer_from(other, Duration::from_secs(3)) {
        return Err(format!("the client gets no answer from {other}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let first = watch.stop();
    println!(
        "    {holder} removed the address and handed it to {new}: the client waited {} ms",
        first.outage_after("stop").as_millis()
    );

    step(&format!(
        "Starting floatip on {holder} again: it joins as backup (no preemption by default)"
    ));
    let restarted = start(&lab, bin, &holder, &cfg);
    if holder == "n1" {
        n1 = Some(restarted);
    } else {
        n2 = Some(restarted);
    }
    std::thread::sleep(Duration::from_millis(1500));
    println!("    holders now: {:?}", lab.holders(VIP));

    step(&format!(
        "Unplanned failure: pulling {new}'s cable (its switch port goes down)"
    ));
    let watch = lab.watch(VIP, WATCH_PORT);
    if !watch.wait_answer_from(&new, Duration::from_secs(3)) {
        return Err(format!("the client gets no answer from {new}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    watch.mark("cut");
    lab.link(&new, false);
    let after = wait_holder(&lab, &holder)?;
    if !watch.wait_answer_from(&holder, Duration::from_secs(3)) {
        return Err(format!("the client gets no answer from {holder}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let second = watch.stop();
    println!(
        "    {new} lost its link and dropped the address; {after} took over 600 ms after the last heartbeat it heard:"
    );
    println!(
        "    the client waited {} ms",
        second.outage_after("cut").as_millis()
    );

    step("Tearing down (stopping floatip, deleting the namespaces)");
    drop((n1, n2));
    drop(lab);
    let (v6, v4) = dual_stack(bin)?;
    println!(
        "\ndone in {:.1} s: client-visible outage: planned stop {} ms, pulled cable {} ms; \
         dual-stack planned stop {} ms (IPv6), {} ms (IPv4)",
        started.elapsed().as_secs_f64(),
        first.outage_after("stop").as_millis(),
        second.outage_after("cut").as_millis(),
        v6.as_millis(),
        v4.as_millis()
    );
    Ok(())
}

/// A planned stop in a dual-stack group: both addresses move together. Returns the
/// IPv6 and the IPv4 client's outage.
fn dual_stack(bin: &str) -> Result<(Duration, Duration), String> {
    step("A dual-stack group: the same two hosts, now with 192.0.2.234 and 2001:db8::234/64");
    let lab = dual_stack_lab("demo6", &["n1", "n2"])
        .ok_or("cannot create IPv6 network namespaces (is IPv6 turned off in the kernel?)")?;
    let cfg = lab.write_file("gateway.yml", &format!("{CONFIG}  {DUAL_STACK_IP}\n"));
    println!("    gateway.yml adds `{DUAL_STACK_IP}`: one holder holds both, they move together");
    let n1 = start(&lab, bin, "n1", &cfg);
    let n2 = start(&lab, bin, "n2", &cfg);
    let mut seen = (vec![], vec![]);
    let one = lab.wait_until(Duration::from_secs(10), ms(5), || {
        seen = dual_holders(&lab);
        seen.0.len() == 1 && seen.0 == seen.1
    });
    if !one {
        return Err(format!(
            "no single holder of {VIP} and {VIP6} within 10 s: {seen:?}"
        ));
    }
    let holder = seen.0[0].clone();
    let other = if holder == "n1" { "n2" } else { "n1" };
    println!("    {holder} holds both addresses");

    step("An IPv6 client (2001:db8::100) and an IPv4 client probe their address every 2 ms");
    let watch = DualWatch {
        v6: lab.watch(VIP6, WATCH_PORT6),
        v4: lab.watch(VIP, WATCH_PORT),
    };
    if !watch.wait_answer_from(&holder, Duration::from_secs(3)) {
        return Err(format!("a client gets no answer from {holder}"));
    }
    std::thread::sleep(Duration::from_millis(300));

    step(&format!("Planned stop on {holder} (SIGTERM)"));
    watch.mark("stop");
    if holder == "n1" { &n1 } else { &n2 }.stop();
    if !watch.wait_answer_from(other, Duration::from_secs(3)) {
        return Err(format!("a client gets no answer from {other}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (v6, v4) = watch.stop();
    let (v6, v4) = (v6.outage_after("stop"), v4.outage_after("stop"));
    println!(
        "    {other} took both addresses and announced them (gratuitous ARP, unsolicited Neighbor \
         Advertisements):\n    the IPv6 client waited {} ms, the IPv4 client {} ms",
        v6.as_millis(),
        v4.as_millis()
    );
    drop((n1, n2));
    Ok((v6, v4))
}

/// Waits until `node` alone holds the VIP.
fn wait_holder(lab: &Lab, node: &str) -> Result<String, String> {
    hold_alone(lab, node, ms(0), Duration::from_secs(5)).map(|()| node.to_string())
}
