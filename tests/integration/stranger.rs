//! A keyless stranger on the LAN ("evil", a lab node that runs no floatip) against a
//! group at interval 100 ms / timeout 300 ms: forged-source garbage while a partition
//! heals, a captured Resign replayed after the holder took the address back, slow
//! connections holding the heartbeat port's slots while a backup restarts, and a phantom
//! master announce in an unauthenticated group. Each must leave one holder.
//!
//! Run: `cargo nextest run --test integration -E 'test(stranger::)' --no-capture` (as root).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{status_json, BIN};
use floatip::vocabulary::{BootId, Priority, Role};
use floatip::wire::{self, Kind, Message};
use floatip_lab::floatip::*;
use floatip_lab::{Flood, Hold, Lab, Proc, Stranger, CLIENT};

const T: Timing = Timing::FAST;
const BROADCAST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 255);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A priority-254 master claiming to be `node`, in the plain form.
fn phantom(kind: Kind, node: Ipv4Addr, seq: u64) -> Message {
    Message {
        kind,
        role: Role::Master,
        priority: Priority(254),
        preempt_request: false,
        vip: VIP.into(),
        node: node.into(),
        mac: [2, 0, 0xc0, 0, 2, 0x77],
        successor: None,
        boot: BootId(0x0bad_b007),
        seq,
    }
}

/// Garbage for a keyed group claiming to come from `member`: random bytes, and forged
/// announces in the authenticated form with a wrong key (they pass every check but the tag).
fn forged_garbage(member: Ipv4Addr) -> impl FnMut(u64) -> Vec<u8> + Send + 'static {
    let wrong =
        floatip::auth::Auth::new(floatip::auth::Key::new(vec![b'x'; 32]).expect("a 32-byte key"));
    move |i| {
        if i % 2 == 0 {
            floatip_lab::noise(i)
        } else {
            let stamp = wire::Stamp {
                time_ms: now_ms(),
                reply_to: None,
            };
            wire::encode_authenticated(&phantom(Kind::Announce, member, i), &stamp, &wrong).to_vec()
        }
    }
}

/// Starts n1 (with `n1_extra` keys), lets it take the address, then n2, following it.
fn pair(lab: &Lab, key: Option<&str>, n1_extra: &[&str]) -> (Vec<PathBuf>, Proc, Proc) {
    let cfgs = vec![
        group_config(lab, "n1", key, n1_extra),
        group_config(lab, "n2", key, &[]),
    ];
    let n1 = start(lab, BIN, "n1", &cfgs[0]);
    wait_stable_holder(lab, "n1", T.interval * 3, T.startup_bound() * 2 + ms(3000));
    let n2 = start(lab, BIN, "n2", &cfgs[1]);
    std::thread::sleep(T.startup_bound() + T.interval * 3);
    assert_eq!(lab.holders(VIP), ["n1"], "n2: {:?}", transitions(&n2));
    (cfgs, n1, n2)
}

/// Samples the holders every `pause` for `span`, calling `each` before every sample;
/// returns the samples (time since the start, holders) where `node` was not alone.
fn samples_without(
    lab: &Lab,
    node: &str,
    span: Duration,
    pause: Duration,
    mut each: impl FnMut(),
) -> Vec<(Duration, Vec<String>)> {
    let (start, mut off) = (Instant::now(), Vec::new());
    while start.elapsed() < span {
        each();
        let h = lab.holders(VIP);
        if h != [node] {
            off.push((start.elapsed(), h));
        }
        std::thread::sleep(pause);
    }
    off
}

/// SIGTERMs the holder `from` and waits until `to` holds alone: whether it did, how long.
fn planned_stop(lab: &Lab, from: &Proc, to: &str) -> (bool, Duration) {
    let stopped = Instant::now();
    assert!(
        from.stop().success(),
        "the holder's stop failed:\n{}",
        from.log()
    );
    let handed = lab.wait_until(T.outage_bound(), ms(2), || lab.holders(VIP) == [to]);
    (handed, stopped.elapsed())
}

/// Partition the pair until both hold the address, then heal it, with or without the
/// stranger flooding each member with garbage carrying the other member's address.
/// Returns the time from the heal until n1 (priority 150) holds alone.
fn heal(test: &str, with_stranger: bool) -> Option<Duration> {
    let lab = Lab::new(test, &["n1", "n2", "evil"])?;
    let key = write_key(&lab);
    let (_, n1, n2) = pair(&lab, Some(&key), &["priority: 150"]);
    lab.partition(ECHO_PORT, true)
        .expect("partition (needs nft)");
    let both = lab.wait_until(T.timeout * 3 + ms(2000), ms(5), || {
        lab.holders(VIP).len() == 2
    });
    assert!(
        both,
        "the partition did not make two masters: {:?}\nn2: {:?}",
        lab.holders(VIP),
        transitions(&n2)
    );

    let evil = Stranger::new(&lab, "evil");
    let (n1ip, n2ip) = (lab.ip("n1"), lab.ip("n2"));
    let flood = |from, to| Flood {
        from,
        to,
        port: ECHO_PORT,
        per_second: 3500,
        duration: ms(4000),
        max: 20_000,
    };
    let floods = with_stranger.then(|| {
        let floods = [
            evil.flood(flood(n2ip, n1ip), forged_garbage(n2ip)),
            evil.flood(flood(n1ip, n2ip), forged_garbage(n1ip)),
        ];
        std::thread::sleep(ms(500));
        floods
    });

    lab.partition(ECHO_PORT, false).expect("heal the partition");
    // From the moment the rule is gone: the nft call itself is no part of the heal.
    let healed = Instant::now();
    let converged = lab.wait_until(ms(3000), ms(2), || lab.holders(VIP) == ["n1"]);
    let took = healed.elapsed();
    // And it stays that way while the garbage goes on.
    let after = samples_without(&lab, "n1", ms(3000).saturating_sub(took), ms(5), || {});
    let flood_elapsed = healed.elapsed() + ms(500);
    let sent: Vec<u64> = floods
        .map(|f| f.map(|t| t.join().expect("flood thread")).to_vec())
        .unwrap_or_default();
    println!(
        "SCENARIO heal_{} converged={}ms datagrams_per_member={:?} (~{:?}/s)",
        if with_stranger {
            "with_stranger"
        } else {
            "without_stranger"
        },
        took.as_millis(),
        sent,
        sent.iter()
            .map(|n| *n * 1000 / flood_elapsed.as_millis().max(1) as u64)
            .collect::<Vec<_>>()
    );
    let mut t = Table::new(test);
    t.check(
        "one holder after the heal",
        converged,
        format!("holders {:?}", lab.holders(VIP)),
    );
    t.at_most("two masters resolved after the heal", took, T.dual_bound());
    t.equal("samples with holders != [n1] afterwards", after.len(), 0);
    if with_stranger {
        // At least 3,000 datagrams per second toward each member, for the whole run.
        t.check(
            "garbage rate",
            sent.iter()
                .all(|n| *n * 1000 >= 3000 * flood_elapsed.as_millis() as u64 * 9 / 10),
            format!("{sent:?}"),
        );
    }
    t.finish(&format!(
        "n1: {:#?}\nn2: {:#?}\nn2 log:\n{}",
        transitions(&n1),
        transitions(&n2),
        n2.log()
    ));
    Some(took)
}

#[test]
fn forged_garbage_does_not_keep_two_masters_after_a_heal() {
    heal("heal-evil", true);
}

/// The same heal without the stranger, for comparison.
#[test]
fn two_masters_resolve_after_a_heal() {
    heal("heal-quiet", false);
}

/// The stranger captures n1's Resign (naming n2) as n1 stops; n2 takes over, n1 comes
/// back, n2 stops and hands the address back to n1. Then n2 restarts and the stranger
/// replays n1's old Resign at it (from n1's address, within the clock window) the whole
/// time n2 starts: nobody may move.
#[test]
fn replayed_resign_moves_nothing() {
    let Some(lab) = Lab::new("replay", &["n1", "n2", "evil"]) else {
        return;
    };
    let key = write_key(&lab);
    let (cfgs, n1, n2) = pair(&lab, Some(&key), &[]);
    let evil = Stranger::new(&lab, "evil");
    let capture = evil.capture(ECHO_PORT, ms(20_000), 10_000);
    assert!(n1.stop().success());
    wait_stable_holder(&lab, "n2", ms(100), ms(3000));
    let n1 = start(&lab, BIN, "n1", &cfgs[0]);
    std::thread::sleep(T.startup_bound() + T.interval * 3);
    assert!(n2.stop().success());
    wait_stable_holder(&lab, "n1", ms(100), ms(3000));
    let captured = capture.stop();
    let n1ip = lab.ip("n1");
    let resigns: Vec<_> = captured
        .iter()
        .filter(|c| *c.from.ip() == n1ip)
        .filter(|c| wire::decode(&c.bytes).is_ok_and(|d| d.message.kind == Kind::Resign))
        .cloned()
        .collect();
    assert!(
        !resigns.is_empty(),
        "no Resign from n1 captured among {} datagrams",
        captured.len()
    );
    let resigned_at = resigns[0].at;

    let n2 = start(&lab, BIN, "n2", &cfgs[1]);
    let mut replays = 0;
    let moved = samples_without(&lab, "n1", T.startup_bound() * 2 + ms(1000), ms(3), || {
        for r in &resigns {
            for to in [lab.ip("n2"), BROADCAST] {
                replays += u32::from(evil.replay(r, to).is_ok());
            }
        }
    });
    let age = resigned_at.elapsed();
    println!(
        "SCENARIO replayed_resign replays={replays} resign_age_at_end={}ms moved_samples={}",
        age.as_millis(),
        moved.len()
    );
    let mut t = Table::new("replayed Resign");
    t.check(
        "replays within the clock window",
        age < ms(10_000),
        format!("{age:?}"),
    );
    t.equal("samples with holders != [n1]", moved.len(), 0);
    t.equal("n2 role", last_role(&n2), "BACKUP");
    t.equal("n1 role", last_role(&n1), "MASTER");
    t.finish(&format!("moved: {moved:?}\nn2 log:\n{}", n2.log()));
}

/// The stranger holds every heartbeat connection it can get at the holder (from 40
/// addresses of its own, trickling a plausible message a byte at a time) while the backup
/// restarts. The backup must still follow the holder (no FAULT, no MASTER, no "connection
/// closed" taken as a crash), and a planned stop must still hand the address over.
#[test]
fn slow_connections_do_not_blind_a_restarting_backup() {
    let Some(lab) = Lab::new("slots", &["n1", "n2", "evil"]) else {
        return;
    };
    let key = write_key(&lab);
    let (cfgs, n1, n2) = pair(&lab, Some(&key), &[]);
    let evil = Stranger::new(&lab, "evil");
    let sources = evil.take_addresses(&lab, 150, 40);
    let wrong =
        floatip::auth::Auth::new(floatip::auth::Key::new(vec![b'x'; 32]).expect("a 32-byte key"));
    let stamp = wire::Stamp {
        time_ms: now_ms(),
        reply_to: None,
    };
    let trickle =
        wire::encode_authenticated(&phantom(Kind::Heartbeat, lab.ip("evil"), 1), &stamp, &wrong)
            .to_vec();
    let hold = Hold {
        to: VIP,
        port: ECHO_PORT,
        sources,
        per_source: 4,
        every: ms(100),
        trickle,
        duration: ms(6000),
    };
    let holding = evil.hold_connections(hold);
    std::thread::sleep(ms(1000));

    assert!(n2.stop().success());
    let n2 = start(&lab, BIN, "n2", &cfgs[1]);
    let bad = samples_without(&lab, "n1", T.startup_bound() + ms(2500), ms(5), || {});
    let n2_moves = transitions(&n2);
    let closed = log_lines(&n2, "connection closed");

    // Still under the stranger's connections: a planned stop hands over.
    let (handed, hand_over) = planned_stop(&lab, &n1, "n2");
    let held = holding.join().expect("hold thread");
    println!(
        "SCENARIO slot_exhaustion opened={} most_at_once={} hand_over={}ms",
        held.opened,
        held.most_at_once,
        hand_over.as_millis()
    );
    let mut t = Table::new("slow connections while a backup restarts");
    let capped = log_lines(&n1, "connection refused");
    t.check(
        "the stranger ran the holder into its connection caps",
        !capped.is_empty(),
        format!("{held:?}"),
    );
    t.equal(
        "samples with holders != [n1] while n2 restarts",
        bad.len(),
        0,
    );
    t.equal(
        "n2 transitions before the stop",
        n2_moves,
        Vec::<String>::new(),
    );
    t.equal(
        "n2 lines about a closed connection",
        closed,
        Vec::<String>::new(),
    );
    t.check(
        "hand-over under the stranger",
        handed,
        format!("holders {:?}", lab.holders(VIP)),
    );
    t.below("hand-over time", hand_over, T.outage_bound());
    t.finish(&format!(
        "bad: {bad:?}\nn2 log:\n{}\nn1 log:\n{}",
        n2.log(),
        n1.log()
    ));
}

/// An unauthenticated group (the zero-config default): the stranger announces a
/// priority-254 master from an unused LAN address, from an address off the LAN segment,
/// and in the backup's name. The real master keeps the address, the backup keeps
/// following it, and a planned stop still hands over.
#[test]
fn phantom_master_moves_nothing_in_an_unauthenticated_group() {
    let Some(lab) = Lab::new("phantom", &["n1", "n2", "evil"]) else {
        return;
    };
    let (_, n1, n2) = pair(&lab, None, &[]);
    let evil = Stranger::new(&lab, "evil");
    let unused = Ipv4Addr::new(192, 0, 2, 77);
    let off_lan = Ipv4Addr::new(198, 51, 100, 7);
    let claims = [unused, off_lan, lab.ip("n2")];
    let (mut sent, mut seq) = (0u32, 1);
    let moved = samples_without(&lab, "n1", ms(2000), ms(20), || {
        for node in claims {
            let b = wire::encode(&phantom(Kind::Announce, node, seq));
            for to in [BROADCAST, lab.ip("n1"), lab.ip("n2")] {
                sent += u32::from(evil.send_as(node, to, ECHO_PORT, &b).is_ok());
            }
        }
        seq += 1;
    });
    let followed = status_json(&lab, "n2")["holder"].clone();
    let asked = log_lines(&n1, "asking it before stepping down");
    let off_lan_dropped = log_lines(&n1, "outside the LAN segment");
    let (handed, hand_over) = planned_stop(&lab, &n1, "n2");
    println!(
        "SCENARIO phantom sent={sent} moved_samples={} n2_follows={followed} hand_over={}ms",
        moved.len(),
        hand_over.as_millis()
    );
    let mut t = Table::new("phantom master, no key");
    t.equal("samples with holders != [n1]", moved.len(), 0);
    t.equal(
        "n1 role while the phantom announced",
        last_role(&n1),
        "MASTER",
    );
    t.check(
        "n1 asked before stepping down",
        !asked.is_empty(),
        "no line about asking",
    );
    t.check(
        "off-LAN announce dropped",
        !off_lan_dropped.is_empty(),
        "no line about the LAN segment",
    );
    t.equal(
        "n2 follows",
        followed,
        serde_json::json!(lab.ip("n1").to_string()),
    );
    t.check(
        "planned stop hands over",
        handed,
        format!("holders {:?}", lab.holders(VIP)),
    );
    t.below("hand-over time", hand_over, T.outage_bound());
    t.finish(&format!(
        "moved: {moved:?}\nn1 log:\n{}\nn2 log:\n{}",
        n1.log(),
        n2.log()
    ));
}

/// The heartbeat port is bound to the configured interface (eth0): reached from the LAN,
/// never through another interface (here the node's own loopback stands in for a WAN side).
#[test]
fn heartbeat_port_is_reached_only_through_the_configured_interface() {
    let Some(lab) = Lab::new("bound", &["n1"]) else {
        return;
    };
    let cfg = group_config(&lab, "n1", None, &[]);
    let n1 = start(&lab, BIN, "n1", &cfg);
    wait_stable_holder(&lab, "n1", T.interval * 3, T.startup_bound() * 2 + ms(3000));
    let dial = |node: &str, to: Ipv4Addr| {
        lab.in_ns(node, move || {
            std::net::TcpStream::connect_timeout(&(to, ECHO_PORT).into(), ms(500)).is_ok()
        })
    };
    let from_lan = dial(CLIENT, lab.ip("n1"));
    let from_loopback = dial("n1", Ipv4Addr::LOCALHOST);
    let mut t = Table::new("heartbeat port bound to eth0");
    t.check(
        "reached from the LAN",
        from_lan,
        "connect from the client failed",
    );
    t.check(
        "not through another interface",
        !from_loopback,
        "connect to 127.0.0.1 succeeded",
    );
    t.finish(&n1.log());
}
