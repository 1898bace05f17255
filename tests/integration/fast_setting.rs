//! The fast setting (interval 10 ms, timeout 50 ms: a holder's failure is detected in
//! 50 ms) keeps one holder on a bad LAN: 20 s with 5 % of all frames dropped at random
//! by the switch and CPU hogs on every core, and not one false take-over.
//!
//! It measures scheduling, so nextest runs it alone (`.config/nextest.toml`).

use std::time::{Duration, Instant};

use crate::BIN;
use floatip_lab::floatip::*;
use floatip_lab::Lab;

const FAST: Timing = Timing {
    interval: ms(10),
    timeout: ms(50),
};
const SOAK: Duration = Duration::from_secs(20);
/// Busy threads beside the daemons: one per core of a CI machine.
const HOGS: usize = 2;
const LOSS_PERCENT: u32 = 5;

/// Drops `percent` % of the frames the switch forwards, at random; returns a closure
/// that reads how many it dropped.
fn lossy_switch(lab: &Lab, percent: u32) -> impl Fn() -> u64 + '_ {
    let nft = floatip_lab::find_program("nft").expect("the loss rule needs nft (nftables)");
    let nft = nft.to_str().expect("nft path").to_string();
    let rules = format!(
        "table bridge fip_loss {{\n chain forward {{\n  type filter hook forward priority -10; policy accept;\n  numgen random mod 100 < {percent} counter drop\n }}\n}}\n"
    );
    let script = lab.write_file("loss.nft", &rules);
    lab.sh_ok("sw", &[&nft, "-f", path_str(&script)]);
    move || {
        let listed = lab.sh_ok("sw", &[&nft, "list", "table", "bridge", "fip_loss"]);
        listed
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// Spins `n` threads until `until`.
fn hogs(n: usize, until: Instant) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let mut x = 0u64;
                while Instant::now() < until {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect()
}

#[test]
fn no_false_take_over_under_loss_and_load() {
    let Some(lab) = Lab::new("fast-soak", &["n1", "n2"]) else {
        return;
    };
    let cfg1 = write_config(&lab, "n1", &timed_config(FAST, &["priority: 150"]));
    let cfg2 = write_config(&lab, "n2", &timed_config(FAST, &[]));
    let n1 = start(&lab, BIN, "n1", &cfg1);
    wait_stable_holder(&lab, "n1", ms(200), ms(5000));
    let n2 = start(&lab, BIN, "n2", &cfg2);
    std::thread::sleep(ms(500));
    assert_eq!(lab.holders(VIP), ["n1"], "n2: {:?}", transitions(&n2));
    let (before1, before2) = (transitions(&n1).len(), transitions(&n2).len());

    let dropped = lossy_switch(&lab, LOSS_PERCENT);
    let end = Instant::now() + SOAK;
    let load = hogs(HOGS, end);
    let mut not_alone = 0;
    while Instant::now() < end {
        not_alone += usize::from(lab.holders(VIP) != ["n1"]);
        std::thread::sleep(ms(20));
    }
    for h in load {
        h.join().expect("hog thread");
    }
    let lost = dropped();
    let new1 = transitions(&n1).split_off(before1);
    let new2 = transitions(&n2).split_off(before2);
    println!(
        "SCENARIO fast_soak frames_dropped={lost} transitions_n1={new1:?} transitions_n2={new2:?}"
    );

    let mut t = Table::new("fast setting under loss and load");
    t.check(
        "the switch dropped frames",
        lost > 100,
        format!("{lost} dropped"),
    );
    t.equal("transitions of the holder", new1, Vec::<String>::new());
    t.equal("transitions of the backup", new2, Vec::<String>::new());
    t.equal("samples where n1 did not hold alone", not_alone, 0);
    t.finish(&transition_logs(&[("n1", &n1), ("n2", &n2)]));
}
