//! A short chaos run (the one behind `make chaos`, see docs/chaos.md): about a
//! minute of random faults against a keyed three-node group at 100/300 ms. Fails
//! on any broken invariant, naming it and the seed (replay: `CHAOS_SEED=<seed>`).
//! Skips when the lab cannot be built, unless `CI` or `FLOATIP_REQUIRE_LAB` is set:
//! then it fails.
//!
//! Run: `cargo nextest run --test integration -E 'test(chaos::)' --no-capture` (as root).

use std::time::Duration;

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
    let Some(outcome) = chaos::run("short_chaos_run", &settings) else {
        assert!(
            !chaos::lab_required(),
            "the chaos run could not build its lab (needs root and iproute2), and CI or FLOATIP_REQUIRE_LAB is set"
        );
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
