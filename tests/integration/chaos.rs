//! A short chaos run (the one behind `make chaos`, see docs/chaos.md): about a
//! minute of random faults against a keyed three-node group at 100/300 ms. Fails
//! on any broken invariant, naming it and the seed (replay: `CHAOS_SEED=<seed>`).
//! Skips when the lab cannot be built, or fails where it is required
//! (`FLOATIP_REQUIRE_LAB=1`, `CI=true`), like every namespace test.
//!
//! Run: `cargo nextest run --test integration -E 'test(chaos::)' --no-capture` (as root).

use std::net::Ipv4Addr;
use std::time::Duration;

use floatip::auth::{Auth, Key};
use floatip::vocabulary::{BootId, Priority, Role};
use floatip::wire::{self, Kind, Message, Stamp, WireError};
use floatip_lab::chaos::{self, Settings};

use crate::BIN;

#[test]
fn short_run_keeps_every_invariant() {
    let seed = match std::env::var("CHAOS_SEED") {
        Ok(s) => s.parse().expect("CHAOS_SEED is a number"),
        Err(_) => chaos::random_seed(),
    };
    let settings = Settings {
        bin: BIN.into(),
        duration: Duration::from_secs(60),
        seed,
        // Generous, as everywhere in the tests: a shared CI machine's scheduling
        // delays land in the measured stretches.
        margin: Duration::from_millis(100),
    };
    // Skips, or fails where the lab is required (CI), when it cannot run.
    let Some(outcome) = chaos::run("short_chaos_run", &settings) else {
        return;
    };
    assert!(
        outcome.faults >= 10,
        "only {} faults in a minute",
        outcome.faults
    );
    assert!(
        outcome.passed(),
        "broken invariants (replay with CHAOS_SEED={}):\n{}\n{}",
        outcome.seed,
        outcome.broken.join("\n"),
        outcome.summary
    );
}

/// The stranger's forged announces are built from captured ones by rewriting
/// fields at the wire format's offsets: they must decode as what they claim and
/// fail only the tag.
#[test]
fn forged_announces_pass_every_check_but_the_tag() {
    let auth = Auth::new(Key::new(vec![b'k'; 32]).expect("a 32-byte key"));
    let heard = |kind| {
        let m = Message {
            kind,
            role: Role::Backup,
            priority: Priority(100),
            preempt_request: false,
            vip: Ipv4Addr::new(192, 0, 2, 234).into(),
            node: Ipv4Addr::new(192, 0, 2, 12).into(),
            mac: [2, 0, 0xc0, 0, 2, 12],
            successor: None,
            boot: BootId(7),
            seq: 9,
        };
        let stamp = Stamp {
            time_ms: 1,
            reply_to: None,
        };
        wire::encode_authenticated(&m, &stamp, &auth).to_vec()
    };
    let member = Ipv4Addr::new(192, 0, 2, 11);
    let forged = chaos::forge(&heard(Kind::Announce), member, 1234, 5678).expect("an announce");
    let d = wire::decode(&forged).expect("a forged announce decodes");
    assert_eq!(
        (
            d.message.kind,
            d.message.role,
            d.message.priority,
            d.message.node,
            d.message.seq
        ),
        (
            Kind::Announce,
            Role::Master,
            Priority(254),
            member.into(),
            1234
        )
    );
    assert_eq!(d.stamp.map(|s| s.time_ms), Some(5678));
    assert_eq!(
        wire::authenticate(&forged, &d, Some(&auth)),
        Err(WireError::BadTag)
    );
    assert!(chaos::forge(&heard(Kind::Heartbeat), member, 1, 1).is_none());
}
