//! A healed partition at a long interval (1 s, timeout 3 s): the node that took over from
//! a holder it could no longer hear keeps telling that holder, and only it, that it holds
//! now; the moment the path is back the two masters meet and the lower one lets go. The
//! periodic announces alone would take up to one whole interval.
//!
//! Run: `cargo nextest run --test integration -E 'test(heal::)' --no-capture` (as root).

use std::time::{Duration, Instant};

use crate::BIN;
use floatip_lab::floatip::*;
use floatip_lab::Lab;

const T: Timing = Timing {
    interval: ms(1000),
    timeout: ms(3000),
};

/// Well under the interval, far over the 20 ms the probes take, for a loaded machine.
const HEAL_BOUND: Duration = ms(300);

/// n1 holds, n2 follows; the echo port is cut until n2 holds too; then it is healed and
/// the time until `winner` holds alone is returned. The group is keyed if `keyed`.
fn partition_then_heal(
    test: &str,
    keyed: bool,
    [n1, n2]: [&str; 2],
    winner: &str,
) -> Option<Duration> {
    let lab = Lab::new(test, &["n1", "n2"])?;
    let auth = keyed.then(|| format!("auth: {{key_file: {}}}", write_key(&lab)));
    let config = |node, extra: &str| {
        let mut lines = vec![extra];
        lines.extend(auth.as_deref());
        write_config(&lab, node, &timed_config(T, &lines))
    };
    let (cfg1, cfg2) = (config("n1", n1), config("n2", n2));
    let p1 = start(&lab, BIN, "n1", &cfg1);
    wait_stable_holder(&lab, "n1", T.interval * 2, T.startup_bound() * 2 + ms(3000));
    let p2 = start(&lab, BIN, "n2", &cfg2);
    std::thread::sleep(T.startup_bound() + T.interval * 2);
    assert_eq!(lab.holders(VIP), ["n1"], "n2: {:?}", transitions(&p2));

    lab.partition(ECHO_PORT, true)
        .expect("partition (needs nft)");
    let both = lab.wait_until(T.outage_bound() * 2, ms(5), || lab.holders(VIP).len() == 2);
    assert!(
        both,
        "the partition did not make two masters: {:?}\nn2: {:?}",
        lab.holders(VIP),
        transitions(&p2)
    );
    // Away from any phase the periodic announces might have with the heal.
    std::thread::sleep(T.interval * 3 / 2);
    lab.partition(ECHO_PORT, false).expect("heal the partition");
    let healed = Instant::now();
    let converged = lab.wait_until(T.interval * 3, ms(2), || lab.holders(VIP) == [winner]);
    let took = healed.elapsed();
    println!(
        "SCENARIO {test} two_holders_after_heal={}ms",
        took.as_millis()
    );
    let mut t = Table::new(test);
    t.check(
        "one holder after the heal",
        converged,
        format!("holders {:?}", lab.holders(VIP)),
    );
    t.at_most("two holders after the heal", took, HEAL_BOUND);
    t.finish(&transition_logs(&[("n1", &p1), ("n2", &p2)]));
    Some(took)
}

/// Keyed, and the node that took over outranks the old holder: the old holder hears it
/// and steps down at once.
#[test]
fn the_old_holder_yields_the_moment_it_hears_the_new_one() {
    partition_then_heal(
        "heal-newer-wins",
        true,
        ["priority: 100", "priority: 150"],
        "n2",
    );
}

/// Keyless, and the old holder outranks the node that took over: it answers that node's
/// announce at once, and that node asks it to confirm and steps down.
#[test]
fn the_old_holder_answers_the_new_one_at_once_and_keeps_the_address() {
    partition_then_heal(
        "heal-older-wins",
        false,
        ["priority: 150", "priority: 100"],
        "n1",
    );
}
