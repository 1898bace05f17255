//! Every transition of the machine, driven by hand-made events on a synthetic clock.

use super::*;
use crate::vocabulary::Mac;
use std::net::Ipv4Addr;

const MS: Duration = Duration::from_millis(1);
const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
const N12: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12));
const N13: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 13));
const OTHER_MAC: Mac = [2, 0, 0, 0, 0, 0x99];

/// A master's hand-over: it drops the address, then resigns naming n12.
const HAND_OVER_TO_N12: [Action; 2] = [
    Action::RemoveAddress,
    Action::Resign {
        successor: Some(N12),
    },
];

/// What the interface watcher reports: the link's state and whether our
/// address is on it.
const LINK_UP_ADDRESS_ON: Event = Event::Observed {
    link_up: true,
    address_present: true,
};
const LINK_UP_ADDRESS_OFF: Event = Event::Observed {
    link_up: true,
    address_present: false,
};
const LINK_DOWN_ADDRESS_ON: Event = Event::Observed {
    link_up: false,
    address_present: true,
};
const LINK_DOWN_ADDRESS_OFF: Event = Event::Observed {
    link_up: false,
    address_present: false,
};

fn timing() -> Timing {
    Timing {
        interval: 100 * MS,
        timeout: 300 * MS,
        preempt: false,
        preempt_delay: Duration::ZERO,
        garp_refresh: None,
        confirm_claims: false,
    }
}

fn peer(node: IpAddr, priority: u8, role: Role) -> Peer {
    Peer {
        node,
        boot: BootId(u64::from(super::transcripts::last_octet(node))),
        priority: Priority(priority),
        role,
        mac: [2, 0, 0, 0, 0, super::transcripts::last_octet(node)],
        preempt_request: false,
    }
}

/// A machine plus its synthetic clock.
/// The holder n12 (priority 100) resigns, naming `successor`.
fn n12_resigns(successor: Option<IpAddr>) -> Event {
    Event::Resign {
        from: peer(N12, 100, Role::Backup),
        successor,
    }
}

struct Rig {
    m: Machine,
    t0: Instant,
    now: Instant,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(100, timing())
    }

    fn with(priority: u8, timing: Timing) -> Rig {
        let t0 = Instant::now();
        let me = Me {
            node: ME,
            boot: BootId(1),
            priority: Priority(priority),
        };
        let (m, first) = Machine::new(me, timing, t0);
        assert_eq!(first, vec![Action::SetProbing(true), Action::Announce]);
        Rig { m, t0, now: t0 }
    }

    /// Feeds `e` at `ms` after start.
    fn at(&mut self, ms: u64, e: Event) -> Vec<Action> {
        self.now = self.t0 + Duration::from_millis(ms);
        self.m.handle(self.now, e)
    }

    /// Ticks every 50 ms (never a stall) up to `ms`, collecting actions.
    fn run_to(&mut self, ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let mut t = (self.now - self.t0).as_millis() as u64;
        while t < ms {
            t = (t + 50).min(ms);
            out.extend(self.at(t, Event::Tick));
        }
        out
    }

    /// `p` announces itself every 80 ms from `from` to `to` (ms), with ticks in between.
    fn hear(&mut self, from: u64, to: u64, p: Peer) -> Vec<Action> {
        let mut out = Vec::new();
        for t in (from..=to).step_by(80) {
            out.extend(self.run_to(t));
            out.extend(self.at(t, Event::Announce(p)));
        }
        out
    }

    /// Drives the machine to MASTER at start-up with nobody around.
    fn master() -> Rig {
        let mut r = Rig::new();
        assert!(r.run_to(150).contains(&Action::ProbeAddress));
        let a = r.at(152, Event::Probe(ProbeOutcome::Free));
        assert!(a.contains(&Action::AddAddress));
        assert_eq!(r.m.role(), Role::Master);
        r
    }

    /// A BACKUP following master n12 from `ms`.
    fn following(ms: u64) -> Rig {
        let mut r = Rig::new();
        r.at(ms, Event::Echo(peer(N12, 100, Role::Master)));
        r
    }
}

fn transition(actions: &[Action]) -> Option<(Role, Role, String)> {
    actions.iter().find_map(|a| match a {
        Action::Transition { from, to, reason } => Some((*from, *to, reason.to_string())),
        _ => None,
    })
}

fn has(actions: &[Action], want: &Action) -> bool {
    actions.contains(want)
}

// ---- start-up -------------------------------------------------------------------

#[test]
fn alone_at_start_takes_over_after_listening() {
    let mut r = Rig::new();
    assert!(
        !r.run_to(100).contains(&Action::ProbeAddress),
        "listens for one start-up wait first"
    );
    assert!(r.run_to(150).contains(&Action::ProbeAddress));
    let a = r.at(152, Event::Probe(ProbeOutcome::Free));
    assert_eq!(
        a,
        vec![
            Action::AddAddress,
            Action::SendGarp,
            Action::SetProbing(false),
            Action::Transition {
                from: Role::Backup,
                to: Role::Master,
                reason: Reason::NoHolderAtStartup
            },
            Action::Announce,
        ]
    );
    assert_eq!(r.m.counters().takeovers, 1);
}

#[test]
fn existing_master_heard_at_start_means_no_probe() {
    let mut r = Rig::following(20);
    for _ in 0..5 {
        let t = (r.now - r.t0).as_millis() as u64 + 80;
        r.at(t, Event::Echo(peer(N12, 100, Role::Master)));
    }
    assert!(!r.run_to(450).contains(&Action::ProbeAddress));
    assert_eq!(r.m.role(), Role::Backup);
}

#[test]
fn better_backup_at_start_goes_first() {
    let mut r = Rig::new();
    r.at(50, Event::Announce(peer(N12, 100, Role::Backup)));
    let a = r.run_to(150);
    assert!(
        !a.contains(&Action::ProbeAddress),
        "n12 outranks us by address"
    );
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Note(n) if n.contains("better backup"))));
    // n12 took over and announces: we stay BACKUP.
    assert!(!r
        .hear(200, 1000, peer(N12, 100, Role::Master))
        .contains(&Action::ProbeAddress));
    assert_eq!(r.m.role(), Role::Backup);
}

#[test]
fn better_backup_that_never_acts_is_overtaken_after_its_slot() {
    let mut r = Rig::new();
    r.at(50, Event::Announce(peer(N12, 100, Role::Backup)));
    assert!(!r.run_to(250).contains(&Action::ProbeAddress));
    assert!(r.run_to(300).contains(&Action::ProbeAddress));
}

#[test]
fn lower_priority_backup_does_not_outrank_us() {
    let mut r = Rig::new();
    r.at(50, Event::Announce(peer(N12, 50, Role::Backup)));
    assert!(r.run_to(150).contains(&Action::ProbeAddress));
}

#[test]
fn address_in_use_at_start_is_a_conflict() {
    let mut r = Rig::new();
    r.run_to(150);
    let a = r.at(152, Event::Probe(ProbeOutcome::InUse(OTHER_MAC)));
    let (from, to, reason) = transition(&a).unwrap();
    assert_eq!((from, to), (Role::Backup, Role::Fault));
    assert!(
        reason.contains("address conflict: 02:00:00:00:00:99"),
        "{reason}"
    );
    assert!(!has(&a, &Action::AddAddress));
    assert_eq!(r.m.fault(), Some(&Fault::Conflict(OTHER_MAC)));
    assert_eq!(r.m.counters().conflicts, 1);
    // keeps retrying every interval; the same conflict is logged and counted once
    assert!(r.run_to(252).contains(&Action::ProbeAddress));
    let again = r.at(253, Event::Probe(ProbeOutcome::InUse(OTHER_MAC)));
    assert!(transition(&again).is_none());
    assert_eq!(r.m.counters().conflicts, 1);
    assert!(r.run_to(353).contains(&Action::ProbeAddress));
    let a = r.at(354, Event::Probe(ProbeOutcome::Free));
    assert_eq!(transition(&a).unwrap().0, Role::Fault);
    assert_eq!(r.m.role(), Role::Master);
}

#[test]
fn conflict_clears_when_a_real_master_answers() {
    let mut r = Rig::new();
    r.run_to(150);
    r.at(152, Event::Probe(ProbeOutcome::InUse(OTHER_MAC)));
    let a = r.at(180, Event::Announce(peer(N12, 100, Role::Master)));
    assert_eq!(
        transition(&a).map(|t| (t.0, t.1)),
        Some((Role::Fault, Role::Backup))
    );
    assert!(!r.run_to(400).contains(&Action::ProbeAddress));
}

// ---- losing the holder ----------------------------------------------------------

#[test]
fn silent_holder_is_replaced_even_if_frozen_kernel_answers() {
    let mut r = Rig::following(20);
    assert!(!r.run_to(300).contains(&Action::ProbeAddress));
    let a = r.run_to(320);
    assert!(
        a.contains(&Action::ProbeAddress),
        "silence for the timeout starts a take-over"
    );
    let holder_mac = peer(N12, 100, Role::Master).mac;
    let a = r.at(330, Event::Probe(ProbeOutcome::InUse(holder_mac)));
    let (_, to, reason) = transition(&a).unwrap();
    assert_eq!(to, Role::Master);
    assert!(reason.contains("frozen or cut off"), "{reason}");
    assert_eq!(r.m.counters().holder_losses, 1);
}

/// Following n12 with `timing`, which falls silent while its kernel still answers for
/// the address: we take over at 330 ms, and n12 may still hold it.
fn took_over_from_silent_n12(timing: Timing) -> Rig {
    let mut r = Rig::with(100, timing);
    r.at(20, Event::Echo(peer(N12, 100, Role::Master)));
    r.run_to(320);
    let holder_mac = peer(N12, 100, Role::Master).mac;
    r.at(330, Event::Probe(ProbeOutcome::InUse(holder_mac)));
    assert_eq!(r.m.role(), Role::Master);
    r
}

/// How many of `actions` tell n12 alone that we hold.
fn told_n12(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| **a == Action::AnnounceTo(N12))
        .count()
}

/// Ticks every 10 ms from `from` to `to` (ms), collecting actions.
fn tick_every_10ms(r: &mut Rig, from: u64, to: u64) -> Vec<Action> {
    (from..=to)
        .step_by(10)
        .flat_map(|t| r.at(t, Event::Tick))
        .collect()
}

#[test]
fn a_silent_former_holder_is_told_we_hold_every_probe_period_until_heard() {
    let mut r = took_over_from_silent_n12(timing());
    assert!(r.m.next_deadline() <= r.now + Timing::SUSPECT_PROBE);
    let told = told_n12(&tick_every_10ms(&mut r, 340, 540));
    assert!((9..=11).contains(&told), "{told} in 200 ms");
    // Heard again (here it yielded): the two-master rules and announces take over.
    r.at(545, Event::Announce(peer(N12, 100, Role::Backup)));
    assert_eq!(told_n12(&tick_every_10ms(&mut r, 550, 900)), 0);
}

#[test]
fn a_silent_former_holder_is_told_for_a_bounded_time() {
    let mut r = took_over_from_silent_n12(timing());
    let end = 330 + Timing::SUSPECT_FOR.as_millis() as u64;
    r.run_to(end - 50);
    assert_eq!(told_n12(&r.at(end - 20, Event::Tick)), 1);
    let a = r.run_to(end + 500);
    assert_eq!(told_n12(&a), 0, "{a:?}");
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Note(n) if n.contains("no longer telling"))));
}

#[test]
fn short_intervals_need_no_extra_announces_to_a_silent_former_holder() {
    let t = Timing {
        interval: Timing::SUSPECT_PROBE,
        timeout: 300 * MS,
        ..timing()
    };
    let mut r = took_over_from_silent_n12(t);
    assert_eq!(told_n12(&tick_every_10ms(&mut r, 340, 540)), 0);
}

#[test]
fn a_holder_that_closed_its_connection_is_not_told() {
    let mut r = Rig::following(20);
    r.at(40, Event::HolderLost(Loss::Closed));
    r.at(45, Event::Probe(ProbeOutcome::Free));
    assert_eq!(r.m.role(), Role::Master);
    assert_eq!(told_n12(&tick_every_10ms(&mut r, 50, 300)), 0);
}

#[test]
fn a_late_holder_is_asked_over_its_connection_once_before_it_counts_as_silent() {
    let asked = |a: &[Action]| a.iter().filter(|a| **a == Action::AskHolder).count();
    let mut r = Rig::following(20);
    assert_eq!(asked(&r.run_to(150)), 0, "half the timeout has not passed");
    assert_eq!(asked(&r.run_to(250)), 1);
    // Its echo: alive; the silence counts from here.
    r.at(260, Event::Echo(peer(N12, 100, Role::Master)));
    let a = r.run_to(400);
    assert_eq!(asked(&a), 0);
    assert!(!a.contains(&Action::ProbeAddress));
    assert_eq!(asked(&r.run_to(450)), 1);
    let a = r.run_to(600);
    assert_eq!(asked(&a), 0, "once per silence");
    assert!(
        a.contains(&Action::ProbeAddress),
        "no answer: silent after all"
    );
}

#[test]
fn silent_holder_but_a_stranger_answers_is_a_conflict() {
    let mut r = Rig::following(20);
    r.run_to(320);
    r.at(330, Event::Probe(ProbeOutcome::InUse(OTHER_MAC)));
    assert_eq!(r.m.role(), Role::Fault);
}

#[test]
fn closed_connection_with_address_still_there_is_a_conflict_until_released() {
    let mut r = Rig::following(20);
    let a = r.at(40, Event::HolderLost(Loss::Closed));
    assert!(a.contains(&Action::ProbeAddress), "acts at once on a reset");
    let holder_mac = peer(N12, 100, Role::Master).mac;
    r.at(45, Event::Probe(ProbeOutcome::InUse(holder_mac)));
    assert_eq!(
        r.m.fault(),
        Some(&Fault::Conflict(holder_mac)),
        "a dead daemon's address is never shared silently"
    );
    // `floatip release` on the dead node: probe at once rather than at the next retry.
    let a = r.at(60, Event::Released(N12));
    assert!(a.contains(&Action::ProbeAddress));
    let a = r.at(61, Event::Probe(ProbeOutcome::Free));
    assert_eq!(transition(&a).map(|t| t.1), Some(Role::Master));
}

#[test]
fn holder_lost_is_ignored_when_not_following() {
    let mut r = Rig::new();
    assert!(r.at(10, Event::HolderLost(Loss::Closed)).is_empty());
    let mut m = Rig::master();
    assert!(m.at(160, Event::HolderLost(Loss::Closed)).is_empty());
}

#[test]
fn worse_backups_wait_their_rank() {
    let mut r = Rig::following(20);
    r.at(30, Event::Announce(peer(N13, 150, Role::Backup)));
    let a = r.at(40, Event::HolderLost(Loss::Closed));
    assert!(
        !a.contains(&Action::ProbeAddress),
        "n13 (priority 150) goes first"
    );
    // n13 takes over and announces: we never probe.
    assert!(!r
        .hear(60, 1000, peer(N13, 150, Role::Master))
        .contains(&Action::ProbeAddress));
    assert_eq!(r.m.role(), Role::Backup);
}

#[test]
fn worse_backup_steps_in_when_the_better_one_is_gone_too() {
    let mut r = Rig::following(20);
    r.at(30, Event::Announce(peer(N13, 150, Role::Backup)));
    r.at(40, Event::HolderLost(Loss::Closed));
    assert!(!r.run_to(180).contains(&Action::ProbeAddress));
    assert!(
        r.run_to(200).contains(&Action::ProbeAddress),
        "rank 1 waits 1.5 intervals"
    );
}

// ---- resignation ----------------------------------------------------------------

#[test]
fn handed_over_address_is_probed_briefly_then_taken() {
    let mut r = Rig::following(20);
    let a = r.at(50, n12_resigns(Some(ME)));
    assert_eq!(a, vec![Action::ProbeHandedOver]);
    let a = r.at(53, Event::Probe(ProbeOutcome::Free));
    assert!(a.contains(&Action::AddAddress));
    assert_eq!(r.m.role(), Role::Master);
    let (_, _, reason) = transition(&a).unwrap();
    assert_eq!(reason, "192.0.2.12 handed the address over to us");
}

#[test]
fn handed_over_address_still_in_use_is_a_conflict() {
    let mut r = Rig::following(20);
    r.at(50, n12_resigns(Some(ME)));
    let a = r.at(53, Event::Probe(ProbeOutcome::InUse(OTHER_MAC)));
    assert!(!a.contains(&Action::AddAddress));
    assert!(matches!(r.m.fault(), Some(Fault::Conflict(_))));
}

#[test]
fn resignation_from_a_holder_we_do_not_follow_moves_nothing() {
    // A replay from an earlier boot of the holder.
    let mut r = Rig::following(20);
    let old_boot = Peer {
        boot: BootId(999),
        ..peer(N12, 100, Role::Backup)
    };
    let a = r.at(
        50,
        Event::Resign {
            from: old_boot,
            successor: Some(ME),
        },
    );
    assert!(
        !has(&a, &Action::ProbeHandedOver) && !has(&a, &Action::AddAddress),
        "{a:?}"
    );
    assert!(matches!(r.m.holder(), Holder::Alive { .. }));
    // Another node, and a node that just started and follows nobody yet.
    assert!(r
        .at(
            60,
            Event::Resign {
                from: peer(N13, 100, Role::Backup),
                successor: Some(ME)
            }
        )
        .iter()
        .all(|a| matches!(a, Action::Note(_))));
    let mut fresh = Rig::new();
    let a = fresh.at(10, n12_resigns(Some(ME)));
    assert!(a.iter().all(|a| matches!(a, Action::Note(_))), "{a:?}");
    assert!(!fresh.run_to(140).contains(&Action::AddAddress));
}

#[test]
fn resignation_to_someone_else_waits_then_checks() {
    let mut r = Rig::following(20);
    let a = r.at(50, n12_resigns(Some(N13)));
    assert!(!a.contains(&Action::ProbeAddress));
    assert!(!r.run_to(190).contains(&Action::ProbeAddress));
    assert!(
        r.run_to(200).contains(&Action::ProbeAddress),
        "the successor did not show up"
    );
}

#[test]
fn resignation_without_successor_makes_best_backup_probe() {
    let mut r = Rig::following(20);
    let a = r.at(50, n12_resigns(None));
    assert!(a.contains(&Action::ProbeAddress));
}

#[test]
fn repeated_resignation_is_heard_once() {
    let mut m = Rig::master();
    let first = m.at(160, n12_resigns(None));
    assert!(first.contains(&Action::SendGarp));
    assert!(m.at(161, n12_resigns(None)).is_empty());
}

// ---- two masters and preemption -------------------------------------------------

#[test]
fn two_masters_higher_priority_wins() {
    let mut m = Rig::master();
    let a = m.at(160, Event::Announce(peer(N12, 150, Role::Master)));
    assert_eq!(
        &a[..2],
        &[Action::RemoveAddress, Action::Resign { successor: None }]
    );
    let (_, to, reason) = transition(&a).unwrap();
    assert_eq!(to, Role::Backup);
    assert!(reason.contains("outranks us"), "{reason}");
}

#[test]
fn two_masters_equal_priority_higher_address_wins() {
    let mut m = Rig::master();
    let a = m.at(160, Event::Announce(peer(N12, 100, Role::Master)));
    assert_eq!(
        transition(&a).map(|t| t.1),
        Some(Role::Backup),
        "192.0.2.12 > 192.0.2.11"
    );

    let mut m = Rig::master();
    let lower = Peer {
        node: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5)),
        ..peer(N12, 100, Role::Master)
    };
    let a = m.at(160, Event::Announce(lower));
    assert!(transition(&a).is_none());
    assert!(
        a.contains(&Action::SendGarp),
        "the winner re-announces so clients come back"
    );
    assert_eq!(m.m.role(), Role::Master);
}

#[test]
fn echo_from_another_master_while_master_is_settled_the_same_way() {
    let mut m = Rig::master();
    let a = m.at(160, Event::Echo(peer(N12, 200, Role::Master)));
    assert_eq!(transition(&a).map(|t| t.1), Some(Role::Backup));
}

fn preempt_timing() -> Timing {
    Timing {
        preempt: true,
        preempt_delay: 200 * MS,
        ..timing()
    }
}

#[test]
fn preempting_backup_asks_after_its_delay() {
    let mut r = Rig::with(150, preempt_timing());
    r.at(10, Event::Echo(peer(N12, 100, Role::Master)));
    for t in (60..=400).step_by(50) {
        r.at(t, Event::Echo(peer(N12, 100, Role::Master)));
        assert_eq!(r.m.preempt_requesting(r.now), t >= 210, "at {t} ms");
    }
}

#[test]
fn no_preempt_without_config_or_with_equal_priority() {
    let mut r = Rig::with(150, timing());
    r.at(10, Event::Echo(peer(N12, 100, Role::Master)));
    r.at(400, Event::Echo(peer(N12, 100, Role::Master)));
    assert!(
        !r.m.preempt_requesting(r.now),
        "preempt: false keeps a working master"
    );

    let mut r = Rig::with(100, preempt_timing());
    r.at(10, Event::Echo(peer(N12, 100, Role::Master)));
    r.at(400, Event::Echo(peer(N12, 100, Role::Master)));
    assert!(
        !r.m.preempt_requesting(r.now),
        "equal priority never preempts"
    );
}

#[test]
fn master_hands_over_to_a_preempting_higher_priority_backup() {
    let mut m = Rig::master();
    let asking = Peer {
        preempt_request: true,
        ..peer(N12, 150, Role::Backup)
    };
    let a = m.at(160, Event::Announce(asking));
    assert_eq!(&a[..2], &HAND_OVER_TO_N12);
    assert_eq!(m.m.role(), Role::Backup);
}

#[test]
fn master_ignores_preempt_requests_from_lower_or_equal_priority() {
    for prio in [50, 100] {
        let mut m = Rig::master();
        let asking = Peer {
            preempt_request: true,
            ..peer(N12, prio, Role::Backup)
        };
        assert!(transition(&m.at(160, Event::Announce(asking))).is_none());
        assert_eq!(m.m.role(), Role::Master);
    }
}

// ---- link and reconciliation ----------------------------------------------------

#[test]
fn link_loss_on_master_drops_the_address() {
    let mut m = Rig::master();
    let a = m.at(160, LINK_DOWN_ADDRESS_ON);
    assert_eq!(
        &a[..2],
        &[Action::RemoveAddress, Action::Resign { successor: None }]
    );
    assert!(a.contains(&Action::SetProbing(false)));
    assert_eq!(m.m.fault(), Some(&Fault::Link));
    // no take-over while the link is down, whatever happens
    assert!(!m.run_to(1000).contains(&Action::ProbeAddress));
    let a = m.at(1010, LINK_UP_ADDRESS_OFF);
    assert_eq!(
        transition(&a).map(|t| (t.0, t.1)),
        Some((Role::Fault, Role::Backup))
    );
    assert!(a.contains(&Action::SetProbing(true)));
}

#[test]
fn link_back_with_a_master_around_stays_backup() {
    let mut m = Rig::master();
    m.at(160, LINK_DOWN_ADDRESS_ON);
    m.at(500, LINK_UP_ADDRESS_OFF);
    assert!(
        !m.hear(550, 1500, peer(N12, 100, Role::Master))
            .contains(&Action::ProbeAddress),
        "no flapping back"
    );
}

#[test]
fn link_loss_on_backup_is_fault_without_address_changes() {
    let mut r = Rig::following(20);
    let a = r.at(30, LINK_DOWN_ADDRESS_OFF);
    assert!(!a.contains(&Action::RemoveAddress));
    assert_eq!(r.m.role(), Role::Fault);
}

#[test]
fn reconcile_removes_a_copy_held_while_not_master() {
    let mut r = Rig::new();
    let a = r.at(10, LINK_UP_ADDRESS_ON);
    assert!(a.contains(&Action::RemoveAddress));
}

#[test]
fn reconcile_probes_then_restores_a_vanished_address_on_master() {
    let mut m = Rig::master();
    let a = m.at(160, LINK_UP_ADDRESS_OFF);
    assert_eq!(a, vec![Action::ProbeAddress]);
    let a = m.at(162, Event::Probe(ProbeOutcome::Free));
    assert_eq!(a[1..3], [Action::AddAddress, Action::SendGarp]);
    assert!(m.at(170, LINK_UP_ADDRESS_ON).is_empty());
}

#[test]
fn vanished_address_answered_by_another_host_is_not_restored() {
    let mut m = Rig::master();
    m.at(160, LINK_UP_ADDRESS_OFF);
    let a = m.at(162, Event::Probe(ProbeOutcome::InUse(OTHER_MAC)));
    assert!(!has(&a, &Action::AddAddress), "{a:?}");
    assert_eq!(m.m.role(), Role::Backup);
}

// ---- stalls (a frozen process) --------------------------------------------------

#[test]
fn master_after_a_stall_verifies_before_anything_else() {
    let mut m = Rig::master();
    // frozen for a second; the first thing it sees is the new master's announce
    let a = m.at(1200, Event::Announce(peer(N12, 100, Role::Master)));
    assert_eq!(a[1], Action::ProbeAddress, "{a:?}");
    assert!(
        !a.contains(&Action::Announce) && !a.contains(&Action::SendGarp),
        "nothing announced from a stale view"
    );
    assert_eq!(m.m.role(), Role::Master);
    let a = m.at(
        1201,
        Event::Probe(ProbeOutcome::InUse(peer(N12, 100, Role::Master).mac)),
    );
    assert_eq!(
        &a[..2],
        &[Action::RemoveAddress, Action::Resign { successor: None }]
    );
    let (_, to, reason) = transition(&a).unwrap();
    assert_eq!(to, Role::Backup);
    assert!(reason.contains("stale"), "{reason}");
}

#[test]
fn master_after_a_stall_keeps_the_address_if_nobody_took_it() {
    let mut m = Rig::master();
    let a = m.at(1200, Event::Tick);
    assert!(a.contains(&Action::ProbeAddress));
    let a = m.at(1201, Event::Probe(ProbeOutcome::Free));
    assert!(transition(&a).is_none());
    assert_eq!(m.m.role(), Role::Master);
    assert!(
        m.run_to(1400).contains(&Action::Announce),
        "announces resume"
    );
}

#[test]
fn backup_after_a_stall_does_not_take_over_on_stale_timers() {
    let mut r = Rig::following(20);
    let a = r.at(2000, Event::Tick);
    assert!(!a.contains(&Action::ProbeAddress), "{a:?}");
    r.at(2050, Event::Echo(peer(N12, 100, Role::Master)));
    assert!(!r.run_to(2300).contains(&Action::ProbeAddress));
}

#[test]
fn normal_gaps_are_not_stalls() {
    let mut m = Rig::master();
    for t in (250..2000).step_by(100) {
        assert!(!m.at(t, Event::Tick).contains(&Action::ProbeAddress));
    }
}

// ---- failures, shutdown, self ---------------------------------------------------

#[test]
fn failed_add_steps_down_and_retries() {
    let mut m = Rig::master();
    let a = m.at(160, Event::ActionFailed("ifconfig: boom".into()));
    assert!(a.contains(&Action::RemoveAddress));
    assert_eq!(m.m.fault(), Some(&Fault::Failed("ifconfig: boom".into())));
    assert!(m.run_to(270).contains(&Action::ProbeAddress));
}

#[test]
fn shutdown_as_master_releases_and_names_the_best_backup() {
    let mut m = Rig::master();
    m.at(160, Event::Announce(peer(N12, 50, Role::Backup)));
    m.at(170, Event::Announce(peer(N13, 200, Role::Backup)));
    let a = m.at(180, Event::Shutdown);
    assert_eq!(
        a,
        vec![
            Action::RemoveAddress,
            Action::Resign {
                successor: Some(N13)
            },
            Action::Exit
        ]
    );
    assert!(m.at(190, Event::Tick).is_empty(), "nothing after shutdown");
}

#[test]
fn shutdown_as_backup_just_exits() {
    let mut r = Rig::new();
    assert_eq!(r.at(10, Event::Shutdown), vec![Action::Exit]);
}

#[test]
fn own_messages_are_ignored() {
    let mut m = Rig::master();
    let me_as_peer = Peer {
        boot: BootId(1),
        ..peer(ME, 100, Role::Master)
    };
    assert!(m.at(160, Event::Announce(me_as_peer)).is_empty());
    assert!(m
        .at(
            161,
            Event::Resign {
                from: me_as_peer,
                successor: None
            }
        )
        .is_empty());
    let mut r = Rig::new();
    r.at(10, Event::Echo(me_as_peer));
    assert_eq!(r.m.holder(), Holder::Unknown);
}

#[test]
fn another_daemon_with_our_address_is_ignored() {
    let mut r = Rig::new();
    let twin = peer(ME, 200, Role::Master);
    let a = r.at(10, Event::Announce(twin));
    assert!(matches!(&a[..], [Action::Note(n)] if n.contains("our own address")));
}

#[test]
fn master_announces_every_interval_and_repeats_garp_after_a_second() {
    let mut m = Rig::master();
    let a = m.run_to(1200);
    let announces = a.iter().filter(|x| **x == Action::Announce).count();
    assert!((9..=11).contains(&announces), "{announces}");
    assert_eq!(
        a.iter().filter(|x| **x == Action::SendGarp).count(),
        1,
        "one follow-up burst"
    );
}

#[test]
fn garp_refresh_when_configured() {
    let t = Timing {
        garp_refresh: Some(300 * MS),
        ..timing()
    };
    let mut r = Rig::with(100, t);
    r.run_to(150);
    r.at(152, Event::Probe(ProbeOutcome::Free));
    // refreshes at +300, +600, +900 ms and the one-second follow-up
    let garps = r
        .run_to(1200)
        .iter()
        .filter(|x| **x == Action::SendGarp)
        .count();
    assert_eq!(garps, 4);
}

#[test]
fn deadline_never_exceeds_an_interval() {
    let r = Rig::following(20);
    assert!(r.m.next_deadline() <= r.now + timing().interval);
    let m = Rig::master();
    assert!(m.m.next_deadline() <= m.now + timing().interval);
}

#[test]
fn masters_expire_after_the_timeout_members_after_missing_two_refreshes() {
    let mut r = Rig::new();
    r.at(10, Event::Announce(peer(N12, 100, Role::Backup)));
    r.at(10, Event::Announce(peer(N13, 100, Role::Master)));
    assert_eq!(r.m.peers().count(), 2);
    r.run_to(400);
    let left: Vec<_> = r.m.peers().map(|s| s.peer.node).collect();
    assert_eq!(
        left,
        [N12],
        "the master is forgotten, the quiet backup is not"
    );
    let ttl = r.m.timing().member_ttl().as_millis() as u64;
    r.run_to(10 + ttl + 50);
    assert_eq!(r.m.peers().count(), 0);
}

#[test]
fn a_backup_speaks_only_on_news_or_rarely() {
    let mut r = Rig::following(20);
    let announces = |a: &[Action]| a.iter().filter(|a| **a == Action::Announce).count();
    // The holder's announces keep it followed; we tell it who we are once.
    assert_eq!(
        announces(&r.hear(100, 2000, peer(N12, 100, Role::Master))),
        1
    );
    assert_eq!(r.m.role(), Role::Backup);
    // A member we did not know: it has not heard us, so we tell it, once.
    assert_eq!(
        announces(&r.at(2010, Event::Announce(peer(N13, 50, Role::Backup)))),
        1
    );
    assert_eq!(
        announces(&r.at(2020, Event::Announce(peer(N13, 50, Role::Backup)))),
        0
    );
    // Our priority changed (a failing weighted check): said at once.
    assert_eq!(announces(&r.at(2030, penalty(30))), 1);
    assert_eq!(announces(&r.at(2040, Event::Tick)), 0);
    // And the refresh.
    let refresh = Timing::MEMBER_REFRESH.as_millis() as u64;
    let a = r.hear(2100, 2030 + refresh + 100, peer(N12, 100, Role::Master));
    assert_eq!(announces(&a), 1, "one refresh in {refresh} ms");
}

// ---- service checks ---------------------------------------------------------------

fn failing(detail: &str) -> Event {
    Event::Health(Health {
        verdict: Verdict::Failing,
        penalty: 0,
        detail: detail.into(),
    })
}

fn healthy() -> Event {
    Event::Health(Health::healthy())
}

fn penalty(p: u8) -> Event {
    Event::Health(Health {
        verdict: Verdict::Healthy,
        penalty: p,
        detail: "web failed 3 times".into(),
    })
}

/// A MASTER with priority `priority`, alone at start.
fn master_with(priority: u8) -> Rig {
    let mut r = Rig::with(priority, timing());
    assert!(r.run_to(150).contains(&Action::ProbeAddress));
    r.at(152, Event::Probe(ProbeOutcome::Free));
    assert_eq!(r.m.role(), Role::Master);
    r
}

#[test]
fn deadlines_passed_but_not_acted_on_never_make_the_loop_spin() {
    // A backup asking a lower master to hand over.
    let mut r = Rig::with(150, preempt_timing());
    r.at(10, Event::Echo(peer(N12, 100, Role::Master)));
    r.at(250, Event::Echo(peer(N12, 100, Role::Master)));
    assert!(r.m.preempt_requesting(r.now));
    assert!(r.m.next_deadline() > r.now, "preempting");
    // A master verifying its address after a stall announces nothing until the answer.
    let mut m = Rig::master();
    assert!(has(&m.at(1000, Event::Tick), &Action::ProbeAddress));
    assert!(m.m.next_deadline() > m.now, "verifying");
    // A FAULT node whose holder fell silent.
    let mut f = Rig::following(20);
    f.at(30, failing("web"));
    f.at(400, Event::Tick);
    assert_eq!(f.m.role(), Role::Fault);
    assert!(f.m.next_deadline() > f.now, "unhealthy");
}

#[test]
fn pending_checks_defer_the_startup_take_over() {
    let mut r = Rig::new();
    assert!(r.at(0, Event::Health(Health::pending())).is_empty());
    assert!(
        !r.run_to(400).contains(&Action::ProbeAddress),
        "no take-over before the first verdict"
    );
    assert!(
        r.m.next_deadline() > r.now,
        "a blocked take-over must not make the loop spin"
    );
    assert!(
        r.at(410, healthy()).contains(&Action::ProbeAddress),
        "the deferred take-over goes ahead at once"
    );
}

#[test]
fn without_a_key_a_better_master_must_answer_before_we_step_down() {
    let mut m = Rig::with(
        100,
        Timing {
            confirm_claims: true,
            ..timing()
        },
    );
    assert!(m.run_to(150).contains(&Action::ProbeAddress));
    m.at(152, Event::Probe(ProbeOutcome::Free));
    let phantom = peer(N13, 254, Role::Master);
    let a = m.at(160, Event::Announce(phantom));
    assert!(
        has(&a, &Action::ConfirmMaster(N13)) && !has(&a, &Action::RemoveAddress),
        "{a:?}"
    );
    // Asked once per interval however many announces come.
    assert!(!has(
        &m.at(170, Event::Announce(phantom)),
        &Action::ConfirmMaster(N13)
    ));
    assert!(has(
        &m.at(270, Event::Announce(phantom)),
        &Action::ConfirmMaster(N13)
    ));
    assert_eq!(m.m.role(), Role::Master);
    // The node answers a heartbeat, as a better master: now we yield.
    let a = m.at(280, Event::MasterConfirmed(peer(N12, 150, Role::Master)));
    assert_eq!(
        &a[..2],
        &[Action::RemoveAddress, Action::Resign { successor: None }]
    );
    assert_eq!(m.m.role(), Role::Backup);
}

#[test]
fn without_a_key_a_backup_keeps_following_the_holder_it_hears_from() {
    let mut r = Rig::with(
        100,
        Timing {
            confirm_claims: true,
            ..timing()
        },
    );
    r.at(20, Event::Echo(peer(N12, 100, Role::Master)));
    r.at(30, Event::Announce(peer(N13, 254, Role::Master)));
    assert!(matches!(r.m.holder(), Holder::Alive { peer, .. } if peer.node == N12));
    // The holder's resignation still counts.
    assert_eq!(
        r.at(40, n12_resigns(Some(ME))),
        vec![Action::ProbeHandedOver]
    );
}

#[test]
fn failing_backup_goes_to_fault_and_never_takes_over() {
    let mut r = Rig::following(20);
    let a = r.at(
        50,
        failing("tcp 127.0.0.1:8000 failed 3 times: connection refused"),
    );
    let (from, to, reason) = transition(&a).unwrap();
    assert_eq!((from, to), (Role::Backup, Role::Fault));
    assert_eq!(
        reason,
        "service checks failing: tcp 127.0.0.1:8000 failed 3 times: connection refused"
    );
    assert!(
        has(&a, &Action::SetProbing(true)),
        "keeps following the holder"
    );
    assert!(has(&a, &Action::Announce), "tells the group it is FAULT");
    assert!(matches!(r.m.fault(), Some(Fault::Unhealthy(_))));
    // The holder goes silent, then resigns naming us: still nothing.
    let a = r.run_to(1000);
    assert!(
        !has(&a, &Action::ProbeAddress) && !has(&a, &Action::AddAddress),
        "{a:?}"
    );
    let a = r.at(1010, n12_resigns(Some(ME)));
    assert!(!has(&a, &Action::AddAddress), "{a:?}");
    assert!(!r.run_to(2000).contains(&Action::ProbeAddress));
    assert_eq!(r.m.role(), Role::Fault);
}

#[test]
fn failing_detail_updates_without_a_transition_while_in_fault() {
    let mut r = Rig::following(20);
    r.at(50, failing("a"));
    let a = r.at(60, failing("a and b"));
    assert_eq!(transition(&a), None);
    assert_eq!(r.m.fault(), Some(&Fault::Unhealthy("a and b".into())));
}

#[test]
fn recovered_node_returns_as_backup_and_leaves_the_holder_alone() {
    let mut r = Rig::following(20);
    r.at(50, failing("web down"));
    r.at(100, Event::Echo(peer(N12, 100, Role::Master)));
    let a = r.at(150, healthy());
    let (from, to, reason) = transition(&a).unwrap();
    assert_eq!(
        (from, to, reason.as_str()),
        (Role::Fault, Role::Backup, "service checks pass again")
    );
    for t in (200..=800).step_by(80) {
        let a = r.at(t, Event::Echo(peer(N12, 100, Role::Master)));
        assert!(!has(&a, &Action::ProbeAddress), "at {t}: {a:?}");
    }
    assert_eq!(r.m.role(), Role::Backup);
}

#[test]
fn recovered_node_with_no_holder_around_takes_over() {
    let mut r = Rig::new();
    r.at(10, failing("web down"));
    assert!(!r.run_to(500).contains(&Action::ProbeAddress));
    r.at(500, healthy());
    assert!(
        !r.run_to(600).contains(&Action::ProbeAddress),
        "listens first"
    );
    assert!(r.run_to(660).contains(&Action::ProbeAddress));
    let a = r.at(661, Event::Probe(ProbeOutcome::Free));
    assert_eq!(
        transition(&a).unwrap().2,
        "service checks pass and no holder is around"
    );
}

#[test]
fn recovered_node_whose_holder_died_meanwhile_takes_over() {
    let mut r = Rig::following(20);
    r.at(50, failing("web down"));
    // The holder falls silent while we are FAULT; we recover long after.
    assert!(!r.run_to(1000).contains(&Action::ProbeAddress));
    let a = r.at(1000, healthy());
    assert!(
        has(&a, &Action::ProbeAddress),
        "the holder is long silent: probe at once: {a:?}"
    );
}

#[test]
fn failing_master_hands_over_to_a_healthy_backup() {
    let mut m = Rig::master();
    m.at(160, Event::Announce(peer(N12, 90, Role::Backup)));
    let a = m.at(170, failing("web failed 3 times"));
    assert_eq!(&a[..2], &HAND_OVER_TO_N12);
    let (from, to, reason) = transition(&a).unwrap();
    assert_eq!((from, to), (Role::Master, Role::Fault));
    assert!(
        reason.contains("handing the address over to healthy backup 192.0.2.12"),
        "{reason}"
    );
    assert!(
        !m.run_to(2000).contains(&Action::AddAddress),
        "never takes the address back while failing"
    );
}

#[test]
fn failing_master_keeps_the_address_while_no_healthy_backup_announces() {
    let mut m = Rig::master();
    m.at(160, Event::Announce(peer(N12, 100, Role::Fault)));
    let a = m.at(170, failing("web failed 3 times"));
    assert!(!has(&a, &Action::RemoveAddress), "{a:?}");
    assert_eq!(m.m.role(), Role::Master);
    assert!(
        matches!(m.m.reason(), Reason::UnhealthyKeeping(_)),
        "{}",
        m.m.reason()
    );
    assert_eq!(a.iter().filter(|x| matches!(x, Action::Note(_))).count(), 1);
    // Said once, not on every announce.
    let a = m.at(240, Event::Announce(peer(N12, 100, Role::Fault)));
    assert!(!a.iter().any(|x| matches!(x, Action::Note(_))), "{a:?}");
    // The peer recovers: hand over at its first BACKUP announce.
    let a = m.at(320, Event::Announce(peer(N12, 100, Role::Backup)));
    assert_eq!(&a[..2], &HAND_OVER_TO_N12);
    assert_eq!(m.m.role(), Role::Fault);
}

#[test]
fn master_whose_checks_recover_before_any_backup_shows_up_keeps_going() {
    let mut m = Rig::master();
    m.at(170, failing("web"));
    let a = m.at(300, healthy());
    assert_eq!(transition(&a), None);
    assert_eq!(m.m.reason(), &Reason::ChecksPass);
    assert!(!has(
        &m.at(320, Event::Announce(peer(N12, 100, Role::Backup))),
        &Action::RemoveAddress
    ));
}

#[test]
fn failing_master_picks_the_best_healthy_backup() {
    let mut m = Rig::master();
    m.at(160, Event::Announce(peer(N12, 120, Role::Fault)));
    m.at(161, Event::Announce(peer(N13, 80, Role::Backup)));
    let a = m.at(170, failing("web"));
    assert!(
        has(
            &a,
            &Action::Resign {
                successor: Some(N13)
            }
        ),
        "{a:?}"
    );
}

#[test]
fn weight_lowers_the_announced_priority() {
    let mut r = Rig::with(150, timing());
    let a = r.at(10, penalty(60));
    assert_eq!(r.m.priority(), Priority(90));
    assert_eq!(
        r.m.me().priority,
        Priority(150),
        "the configured priority is kept"
    );
    assert!(
        has(&a, &Action::Announce),
        "the new priority is told at once: {a:?}"
    );
    assert_eq!(r.m.role(), Role::Backup, "a weight never means FAULT");
    r.at(20, penalty(200));
    assert_eq!(r.m.priority(), Priority(1), "never below 1");
    r.at(30, healthy());
    assert_eq!(r.m.priority(), Priority(150));
}

#[test]
fn weight_counts_in_ranks() {
    // Alone with n12 (priority 100) at start: 150 goes first, 150 - 60 waits its rank.
    let mut r = Rig::with(150, timing());
    r.at(0, penalty(60));
    r.hear(10, 140, peer(N12, 100, Role::Backup));
    assert!(
        !r.run_to(170).contains(&Action::ProbeAddress),
        "n12 outranks our lowered priority"
    );
}

#[test]
fn degraded_master_hands_over_to_a_backup_that_now_outranks_it() {
    let mut m = master_with(150);
    m.at(160, Event::Announce(peer(N12, 100, Role::Backup)));
    let a = m.at(170, penalty(60));
    assert_eq!(&a[..2], &HAND_OVER_TO_N12);
    let (from, to, reason) = transition(&a).unwrap();
    assert_eq!((from, to), (Role::Master, Role::Backup));
    assert!(reason.contains("priority lowered to 90"), "{reason}");
    // If n12 never takes over, we take the address back (we are still healthy enough).
    assert!(m.run_to(600).contains(&Action::ProbeAddress));
}

#[test]
fn degraded_master_keeps_the_address_over_lower_backups() {
    let mut m = master_with(150);
    m.at(160, Event::Announce(peer(N12, 80, Role::Backup)));
    let a = m.at(170, penalty(60));
    assert!(!has(&a, &Action::RemoveAddress), "{a:?}");
    assert_eq!(m.m.role(), Role::Master);
    // A backup announcing a higher priority later wins it.
    let a = m.at(250, Event::Announce(peer(N13, 95, Role::Backup)));
    assert!(
        has(
            &a,
            &Action::Resign {
                successor: Some(N13)
            }
        ),
        "{a:?}"
    );
}

#[test]
fn degraded_priority_decides_two_masters() {
    let mut m = master_with(150);
    m.at(160, penalty(60));
    let a = m.at(170, Event::Announce(peer(N12, 100, Role::Master)));
    let (_, to, reason) = transition(&a).unwrap();
    assert_eq!(to, Role::Backup);
    assert!(
        reason.contains("outranks us (192.0.2.11 priority 90)"),
        "{reason}"
    );
}

#[test]
fn unhealthy_or_pending_nodes_never_request_preemption() {
    let mut r = Rig::with(150, preempt_timing());
    r.at(0, Event::Health(Health::pending()));
    for t in (20..=400).step_by(80) {
        r.at(t, Event::Echo(peer(N12, 100, Role::Master)));
    }
    assert!(!r.m.preempt_requesting(r.now), "pending");
    r.at(410, healthy());
    r.at(420, Event::Echo(peer(N12, 100, Role::Master)));
    r.run_to(700);
    r.at(700, Event::Echo(peer(N12, 100, Role::Master)));
    assert!(
        r.m.preempt_requesting(r.now),
        "healthy and higher: preempts as configured"
    );
    r.at(710, failing("web"));
    assert!(!r.m.preempt_requesting(r.now));
    assert_eq!(r.m.role(), Role::Fault);
}

#[test]
fn recovered_higher_priority_node_preempts_when_configured() {
    let mut r = Rig::with(150, preempt_timing());
    r.at(10, failing("web"));
    r.at(20, Event::Echo(peer(N12, 100, Role::Master)));
    r.at(100, healthy());
    assert_eq!(r.m.role(), Role::Backup);
    r.at(150, Event::Echo(peer(N12, 100, Role::Master)));
    r.run_to(310);
    r.at(310, Event::Echo(peer(N12, 100, Role::Master)));
    assert!(r.m.preempt_requesting(r.now));
}

#[test]
fn hand_over_to_a_pending_node_waits_for_its_verdict() {
    let mut r = Rig::new();
    r.at(0, Event::Health(Health::pending()));
    r.at(20, Event::Echo(peer(N12, 100, Role::Master)));
    let a = r.at(50, n12_resigns(Some(ME)));
    assert!(!has(&a, &Action::AddAddress), "{a:?}");
    assert!(!r.run_to(300).contains(&Action::ProbeAddress));
    assert!(
        r.at(310, healthy()).contains(&Action::ProbeAddress),
        "probes, then takes the address"
    );
}

#[test]
fn link_back_with_failing_checks_is_fault_for_the_checks() {
    let mut r = Rig::following(20);
    r.at(30, LINK_DOWN_ADDRESS_OFF);
    r.at(40, failing("web"));
    assert_eq!(
        r.m.fault(),
        Some(&Fault::Link),
        "the link fault stays the reason while the link is down"
    );
    let a = r.at(50, LINK_UP_ADDRESS_OFF);
    let (from, to, reason) = transition(&a).unwrap();
    assert_eq!((from, to), (Role::Fault, Role::Fault));
    assert!(
        reason.contains("link up again, but service checks fail: web"),
        "{reason}"
    );
    assert!(!r.run_to(1000).contains(&Action::ProbeAddress));
}

#[test]
fn conflict_cleared_with_failing_checks_is_fault_for_the_checks() {
    let mut r = Rig::new();
    r.run_to(150);
    r.at(152, Event::Probe(ProbeOutcome::InUse(OTHER_MAC)));
    r.at(160, failing("web"));
    assert_eq!(r.m.fault(), Some(&Fault::Conflict(OTHER_MAC)));
    r.at(170, Event::Echo(peer(N12, 100, Role::Master)));
    assert_eq!(r.m.fault(), Some(&Fault::Unhealthy("web".into())));
}

#[test]
fn release_notice_keeps_the_rank_order() {
    let mut r = Rig::following(20);
    r.at(30, Event::Announce(peer(N13, 150, Role::Backup)));
    r.at(40, Event::HolderLost(Loss::Closed));
    let a = r.at(60, Event::Released(N12));
    assert!(
        !a.contains(&Action::ProbeAddress),
        "n13 outranks us and goes first"
    );
    assert!(!r.run_to(200).contains(&Action::ProbeAddress));
    assert!(
        r.run_to(220).contains(&Action::ProbeAddress),
        "our turn 1.5 intervals after the notice"
    );
}

#[test]
fn conflicted_backups_retry_in_rank_order() {
    let mut r = Rig::following(20);
    r.at(
        30,
        Event::Announce(Peer {
            role: Role::Fault,
            ..peer(N13, 150, Role::Backup)
        }),
    );
    r.at(40, Event::HolderLost(Loss::Closed));
    r.run_to(200);
    let a = r.at(
        201,
        Event::Probe(ProbeOutcome::InUse(peer(N12, 100, Role::Master).mac)),
    );
    assert_eq!(transition(&a).map(|t| t.1), Some(Role::Fault));
    r.at(
        230,
        Event::Announce(Peer {
            role: Role::Fault,
            ..peer(N13, 150, Role::Backup)
        }),
    );
    assert!(
        !r.run_to(440).contains(&Action::ProbeAddress),
        "a FAULT peer waiting on the same conflict still ranks first"
    );
    assert!(r.run_to(460).contains(&Action::ProbeAddress));
}

#[test]
fn release_notice_from_the_followed_holder_starts_a_take_over() {
    let mut r = Rig::following(20);
    let a = r.at(40, Event::Released(N12));
    assert!(
        a.contains(&Action::ProbeAddress),
        "the holder released its copy: nobody holds the address"
    );
}

// ---- take-over gated by an election's lease ----------------------------------------

const LEASE: Lease = Lease {
    id: 0x2f1b,
    revision: 7,
};

fn lost(why: &str) -> Event {
    Event::ElectionLost { reason: why.into() }
}

/// A lease-gated machine, elected at 10 ms and MASTER after the probe.
fn elected_master() -> Rig {
    let mut r = Rig::new();
    r.m.gate_on_lease();
    let a = r.at(10, Event::Elected(LEASE));
    assert_eq!(a, vec![Action::ProbeAddress], "probes before adding");
    let a = r.at(12, Event::Probe(ProbeOutcome::Free));
    assert_eq!(
        transition(&a),
        Some((
            Role::Backup,
            Role::Master,
            Reason::Elected(LEASE).to_string()
        ))
    );
    assert!(a.starts_with(&[Action::AddAddress, Action::SendGarp]));
    r
}

#[test]
fn under_a_lease_nobody_takes_over_without_being_elected() {
    let mut r = Rig::new();
    r.m.gate_on_lease();
    let mut a = r.run_to(2000);
    a.extend(r.hear(2000, 2200, peer(N12, 200, Role::Master)));
    a.extend(r.run_to(3000));
    a.extend(r.at(
        3001,
        Event::Resign {
            from: peer(N12, 200, Role::Master),
            successor: Some(ME),
        },
    ));
    a.extend(r.run_to(4000));
    assert!(
        !a.iter().any(|a| matches!(
            a,
            Action::ProbeAddress | Action::ProbeHandedOver | Action::AddAddress
        )),
        "{a:?}"
    );
    assert_eq!(r.m.role(), Role::Backup);
}

#[test]
fn elected_master_removes_the_address_first_when_the_lease_is_lost() {
    let mut r = elected_master();
    assert_eq!(r.m.lease(), Some(LEASE));
    let a = r.at(50, lost("lease gone"));
    assert_eq!(a.first(), Some(&Action::RemoveAddress), "{a:?}");
    assert_eq!(r.m.role(), Role::Backup);
    assert_eq!(r.m.lease(), None);
    assert!(!r.run_to(1000).contains(&Action::ProbeAddress));
}

#[test]
fn elected_master_ignores_lan_claims_and_preemption() {
    let mut r = elected_master();
    let mut better = peer(N12, 250, Role::Master);
    let mut a = r.hear(20, 400, better);
    better.role = Role::Backup;
    better.preempt_request = true;
    a.extend(r.hear(400, 800, better));
    assert!(!a.contains(&Action::RemoveAddress), "{a:?}");
    assert_eq!(r.m.role(), Role::Master);
}

#[test]
fn elected_master_with_failing_checks_removes_the_address_and_stands_down() {
    let mut r = elected_master();
    assert!(r.m.wants_election());
    let a = r.at(50, failing("web down"));
    assert_eq!(a.first(), Some(&Action::RemoveAddress), "{a:?}");
    assert_eq!(r.m.role(), Role::Fault);
    assert!(!r.m.wants_election(), "the daemon resigns the key");
    r.at(100, healthy());
    assert!(r.m.wants_election(), "and campaigns again on recovery");
}

#[test]
fn a_lease_lost_while_probing_adds_nothing() {
    let mut r = Rig::new();
    r.m.gate_on_lease();
    r.at(10, Event::Elected(LEASE));
    r.at(11, lost("resigned"));
    assert!(r.at(12, Event::Probe(ProbeOutcome::Free)).is_empty());
    assert_eq!(r.m.role(), Role::Backup);
}

#[test]
fn without_the_gate_an_election_is_ignored() {
    let mut r = Rig::new();
    let a = r.at(10, Event::Elected(LEASE));
    assert!(!a.contains(&Action::ProbeAddress), "{a:?}");
    assert!(!r.m.wants_election());
}

#[test]
fn elected_right_after_the_holder_resigned_probes_briefly() {
    let mut r = Rig::following(20);
    r.m.gate_on_lease();
    let holder = peer(N12, 100, Role::Master);
    let a = r.at(
        50,
        Event::Resign {
            from: holder,
            successor: None,
        },
    );
    assert!(!a.contains(&Action::ProbeHandedOver), "{a:?}");
    assert_eq!(
        r.at(60, Event::Elected(LEASE)),
        vec![Action::ProbeHandedOver]
    );
    let a = r.at(62, Event::Probe(ProbeOutcome::Free));
    assert_eq!(r.m.role(), Role::Master, "{a:?}");
}

#[test]
fn under_a_lease_live_backups_campaign_in_rank_order_a_named_successor_first() {
    let resigning = |successor| Event::Resign {
        from: peer(N12, 100, Role::Master),
        successor,
    };
    let mut r = Rig::following(20);
    r.m.gate_on_lease();
    r.at(30, Event::Announce(peer(N13, 200, Role::Backup)));
    assert_eq!(r.m.election_rank(r.now), 1, "n13 ranks higher");
    r.at(40, resigning(Some(ME)));
    assert_eq!(r.m.election_rank(r.now), 0, "named: campaigns at once");

    let mut r = Rig::following(20);
    r.m.gate_on_lease();
    r.at(30, Event::Announce(peer(N13, 50, Role::Backup)));
    assert_eq!(r.m.election_rank(r.now), 0, "the best live backup");
    r.at(40, resigning(Some(N13)));
    assert_eq!(
        r.m.election_rank(r.now),
        1,
        "the named successor goes first"
    );
}

#[test]
fn elected_right_after_the_holder_released_probes_briefly() {
    let mut r = Rig::following(20);
    r.m.gate_on_lease();
    r.at(40, Event::HolderLost(Loss::Closed));
    r.at(60, Event::Released(N12));
    assert_eq!(
        r.at(70, Event::Elected(LEASE)),
        vec![Action::ProbeHandedOver]
    );

    // A closed connection alone says nothing about the address: the full probe.
    let mut r = Rig::following(20);
    r.m.gate_on_lease();
    r.at(40, Event::HolderLost(Loss::Closed));
    assert_eq!(r.at(70, Event::Elected(LEASE)), vec![Action::ProbeAddress]);
}
