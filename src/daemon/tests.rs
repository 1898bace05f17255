//! The loop and the executor against a fake host, group and service manager: no root,
//! no network, time handed in.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::executor::Executor;
use super::outside::{Group, Notice, Supervisor};
use super::{Daemon, TooManySteps, MAX_STEPS};
use crate::config::Config;
use crate::health::Tracker;
use crate::heartbeat::LocalView;
use crate::net::fake::FakeHost;
use crate::state::Machine;
use crate::vocabulary::{Action, BootId, Event, Health, Mac, ProbeOutcome, Role};
use crate::wire::Kind;

type Log<T> = Rc<RefCell<Vec<T>>>;

struct FakeGroup(Log<String>);

impl Group for FakeGroup {
    fn set_view(&self, view: LocalView) {
        self.0.borrow_mut().push(format!("view {}", view.role));
    }
    fn send(&self, kind: Kind, successor: Option<IpAddr>) {
        self.0
            .borrow_mut()
            .push(format!("send {kind:?} {successor:?}"));
    }
    fn announce_to(&self, node: IpAddr) {
        self.0.borrow_mut().push(format!("announce to {node}"));
    }
    fn set_probing(&self, on: bool) {
        self.0.borrow_mut().push(format!("probing {on}"));
    }
    fn follow(&self, _: Option<(IpAddr, crate::vocabulary::BootId)>) {}
    fn let_followers_go(&self) {}
    fn ask_holder(&self) {
        self.0.borrow_mut().push("ask holder".into());
    }
    fn confirm_master(&self, node: IpAddr) {
        self.0.borrow_mut().push(format!("confirm {node}"));
    }
    fn rejected(&self) -> (u64, u64) {
        (0, 0)
    }
    fn replayed(&self) -> u64 {
        0
    }
    fn round_trips(&self) -> crate::vocabulary::Histogram {
        crate::vocabulary::Histogram::new(&[])
    }
    fn set_auth(&self, auth: Option<crate::auth::Auth>) {
        let keyed = auth.is_some();
        self.0.borrow_mut().push(format!("auth {keyed}"));
    }
}

struct FakeSupervisor {
    notices: Log<Notice>,
    watchdog: Option<Duration>,
}

impl Supervisor for FakeSupervisor {
    fn notify(&self, notice: Notice) {
        self.notices.borrow_mut().push(notice);
    }
    fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }
}

struct Rig {
    daemon: Daemon<FakeHost>,
    host: FakeHost,
    group: Log<String>,
    notices: Log<Notice>,
    t0: Instant,
}

const STRANGER: Mac = [2, 0, 0, 0, 0, 99];

impl Rig {
    fn new(watchdog: Option<Duration>) -> Rig {
        let t0 = Instant::now();
        let config = Config::example();
        let (machine, first) = Machine::new(config.me(BootId(1)), config.timing(), t0);
        let host = FakeHost::default();
        let group = Log::default();
        let notices = Log::default();
        let supervisor = FakeSupervisor {
            notices: notices.clone(),
            watchdog,
        };
        let exec = Executor::new(
            host.clone(),
            Box::new(FakeGroup(group.clone())),
            Box::new(supervisor),
            &config,
            t0,
        );
        let mut daemon = Daemon {
            machine,
            max_steps: MAX_STEPS,
            exec,
            tracker: Tracker::new(&config.track),
            loaded: super::Loaded::now(&config, Vec::new(), 0),
            config,
            health: Health::healthy(),
            checks: None,
            generation: 0,
            inputs: None,
            election: Box::new(crate::election::Lan),
            campaigning: false,
            election_status: Default::default(),
            interface_watched: false,
        };
        assert_eq!(daemon.apply(t0, first), Ok(false));
        Rig {
            daemon,
            host,
            group,
            notices,
            t0,
        }
    }

    /// A tick just after the start-up wait (well within the stall threshold), when a lone
    /// node looks for a holder and takes over.
    fn tick_after_startup(&mut self) -> Result<bool, TooManySteps> {
        let later =
            self.t0 + self.daemon.config.timing().startup_wait() + Duration::from_millis(10);
        self.daemon.step(later, Event::Tick)
    }

    fn calls(&self) -> Vec<String> {
        self.host.0.borrow().calls.clone()
    }
}

#[test]
fn a_free_probe_comes_back_as_an_event_and_the_address_is_added() {
    let mut rig = Rig::new(None);
    assert_eq!(rig.tick_after_startup(), Ok(false));
    let calls = rig.calls();
    let probe = calls.iter().position(|c| c.starts_with("probe"));
    let add = calls.iter().position(|c| c == "add");
    assert!(probe.is_some() && probe < add, "{calls:?}");
    assert!(calls.contains(&"announce".to_string()), "{calls:?}");
    assert_eq!(rig.daemon.machine.role(), Role::Master);
    assert!(rig.host.0.borrow().address_present);
    assert!(rig.group.borrow().contains(&"view MASTER".to_string()));
    let status = rig
        .notices
        .borrow()
        .iter()
        .any(|n| matches!(n, Notice::Status(s) if s.contains("MASTER")));
    assert!(status, "{:?}", rig.notices.borrow());
}

#[test]
fn a_failed_add_comes_back_as_action_failed_and_faults_the_node() {
    let mut rig = Rig::new(None);
    rig.host.0.borrow_mut().fail_add = Some(FakeHost::timeout("ifconfig eth0:234"));
    assert_eq!(rig.tick_after_startup(), Ok(false));
    assert!(rig.calls().contains(&"add".to_string()));
    assert_eq!(rig.daemon.machine.role(), Role::Fault);
    assert!(!rig.host.0.borrow().address_present);
}

#[test]
fn an_address_in_use_or_a_probe_that_fails_is_never_added() {
    for answer in [
        Ok(ProbeOutcome::InUse(STRANGER)),
        Err(FakeHost::timeout("arping")),
    ] {
        let mut rig = Rig::new(None);
        rig.host.0.borrow_mut().probes.push_back(answer);
        assert_eq!(rig.tick_after_startup(), Ok(false));
        assert!(
            !rig.calls().contains(&"add".to_string()),
            "{:?}",
            rig.calls()
        );
        assert_ne!(rig.daemon.machine.role(), Role::Master);
    }
}

#[test]
fn exceeding_the_step_cap_is_an_error_naming_what_was_left_undone() {
    let mut rig = Rig::new(None);
    rig.daemon.max_steps = 2;
    let Err(e) = rig.tick_after_startup() else {
        panic!("a take-over is more than two steps");
    };
    assert_eq!(e.steps, 2);
    assert!(!e.undone.is_empty());
    assert!(e.to_string().contains("left undone"), "{e}");
    assert!(
        !e.undone.contains(&Action::ProbeAddress),
        "the first steps ran"
    );
}

#[test]
fn the_watchdog_is_pinged_at_half_its_period_from_the_loop() {
    let mut rig = Rig::new(Some(Duration::from_secs(1)));
    let t0 = rig.t0;
    let pings = |rig: &Rig| {
        rig.notices
            .borrow()
            .iter()
            .filter(|n| **n == Notice::Watchdog)
            .count()
    };
    assert_eq!(
        rig.daemon.exec.next_watchdog(t0),
        t0 + Duration::from_millis(500)
    );
    rig.daemon.exec.watchdog(t0 + Duration::from_millis(400));
    assert_eq!(pings(&rig), 0);
    rig.daemon.exec.watchdog(t0 + Duration::from_millis(500));
    rig.daemon.exec.watchdog(t0 + Duration::from_millis(600));
    assert_eq!(pings(&rig), 1);
    assert_eq!(
        rig.daemon
            .exec
            .next_watchdog(t0 + Duration::from_millis(600)),
        t0 + Duration::from_millis(1000)
    );
    let unwatched = Rig::new(None);
    assert!(unwatched.daemon.exec.next_watchdog(t0) > t0 + Duration::from_secs(60));
}

#[test]
fn shutdown_releases_the_address_resigns_and_exits() {
    let mut rig = Rig::new(None);
    rig.tick_after_startup().unwrap();
    assert!(rig.host.0.borrow().address_present);
    let later = rig.t0 + Duration::from_millis(200);
    assert_eq!(rig.daemon.step(later, Event::Shutdown), Ok(true));
    assert!(!rig.host.0.borrow().address_present);
    assert!(rig.calls().contains(&"remove".to_string()));
    assert!(
        rig.group
            .borrow()
            .iter()
            .any(|g| g.starts_with("send Resign")),
        "{:?}",
        rig.group.borrow()
    );
    assert_eq!(rig.notices.borrow().last(), Some(&Notice::Stopping));
}

/// An election whose deadline the test sets, logging what the loop asks of it.
struct FakeElection {
    left: Rc<std::cell::Cell<Option<Duration>>>,
    asked: Log<&'static str>,
}

impl crate::election::Election for FakeElection {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn campaign(&self) {
        self.asked.borrow_mut().push("campaign");
    }
    fn resign(&self) {
        self.asked.borrow_mut().push("resign");
    }
    fn holds_for(&self) -> Option<Duration> {
        self.left.get()
    }
}

const LEASE: crate::vocabulary::Lease = crate::vocabulary::Lease {
    id: 0x2f1b,
    revision: 7,
};

/// A rig whose machine is gated by a fake election's lease.
fn gated_rig() -> (
    Rig,
    Rc<std::cell::Cell<Option<Duration>>>,
    Log<&'static str>,
) {
    let mut rig = Rig::new(None);
    let left = Rc::new(std::cell::Cell::new(Some(Duration::from_secs(1))));
    let asked = Log::default();
    rig.daemon.machine.gate_on_lease();
    rig.daemon.election = Box::new(FakeElection {
        left: left.clone(),
        asked: asked.clone(),
    });
    assert_eq!(rig.daemon.step(rig.t0, Event::Tick), Ok(false));
    assert_eq!(
        *asked.borrow(),
        ["campaign"],
        "a healthy node stands at once"
    );
    (rig, left, asked)
}

#[test]
fn elected_adds_after_the_probe_and_failing_checks_remove_then_resign() {
    let (mut rig, _, asked) = gated_rig();
    let t = rig.t0 + Duration::from_millis(10);
    assert_eq!(rig.daemon.step(t, Event::Elected(LEASE)), Ok(false));
    let calls = rig.calls();
    let probe = calls.iter().position(|c| c.starts_with("probe"));
    let add = calls.iter().position(|c| c == "add");
    assert!(probe.is_some() && probe < add, "{calls:?}");
    assert_eq!(rig.daemon.machine.role(), Role::Master);
    let failing = Event::Health(Health {
        verdict: crate::vocabulary::Verdict::Failing,
        penalty: 0,
        detail: "web down".into(),
    });
    assert_eq!(rig.daemon.step(t, failing), Ok(false));
    assert!(!rig.host.0.borrow().address_present);
    assert_eq!(*asked.borrow(), ["campaign", "resign"]);
}

#[test]
fn a_deadline_passed_between_deciding_and_acting_adds_nothing() {
    let (mut rig, left, _) = gated_rig();
    left.set(None);
    let t = rig.t0 + Duration::from_millis(10);
    assert_eq!(rig.daemon.step(t, Event::Elected(LEASE)), Ok(false));
    let calls = rig.calls();
    assert!(!calls.contains(&"add".to_string()), "{calls:?}");
    assert_eq!(rig.daemon.machine.role(), Role::Backup);
    assert!(!rig.host.0.borrow().address_present);
}
