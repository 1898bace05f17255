//! Golden transcripts: whole scenarios replayed against the machine, compared line by line.
//!
//! Each file in `transcripts/` reads top to bottom as what happened and what the machine
//! did about it. This node is 192.0.2.11 (boot id 1); time is in milliseconds after start.
//!
//! ```text
//! # a comment, kept as is
//! set priority=150 preempt=on preempt_delay=200   (before `start`; defaults below)
//! 0 start                      the machine is created
//!     probing on               what it asked for: indented lines, regenerated
//! 500 run                      tick at each deadline it asks for, up to 500 ms
//!     @150 probe address       (an action from such a tick, with its time)
//! 520 announce n12 MASTER 100  any event, at that time
//! ```
//!
//! Settings: `priority` (100), `interval` (100), `timeout` (300), `preempt` (off),
//! `preempt_delay` (0), `garp_refresh` (none), `confirm_claims` (off).
//! Events: `tick`, `echo PEER`, `announce PEER`, `confirmed PEER`,
//! `holder-lost silence|closed`, `resign PEER [to NODE]`, `released NODE`,
//! `probe free`, `probe in-use NODE|MAC`, `observed link=up|down address=present|absent`,
//! `failed TEXT`, `health healthy|pending|failing [penalty=N] [DETAIL]`,
//! `handover [to NODE]`, `shutdown`.
//! A PEER is `NODE ROLE PRIORITY [preempt-request]`; a NODE `n12` is 192.0.2.12, with
//! boot id 12 and MAC 02:00:00:00:00:0c.
//!
//! When a change of behaviour is intended, regenerate the expected lines with
//! `FLOATIP_BLESS=1 cargo test --lib state::transcripts` and review the diff.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Machine, Me, Timing};
use crate::vocabulary::{
    Action, BootId, Event, Health, Loss, Mac, Peer, Priority, ProbeOutcome, Role, Verdict,
};

const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
/// Ticks one `run` may take; more means the machine asks for ticks it does not act on.
const MAX_TICKS: usize = 10_000;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/state/transcripts")
}

/// Replays `transcripts/NAME.txt`; fails on the first line that differs, or rewrites
/// the file under `FLOATIP_BLESS=1`.
fn check(name: &str) {
    let path = dir().join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let replayed = replay(name, &text);
    if std::env::var_os("FLOATIP_BLESS").is_some() {
        std::fs::write(&path, &replayed)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    if replayed != text {
        let (n, (want, got)) = text
            .lines()
            .chain(std::iter::repeat(""))
            .zip(replayed.lines().chain(std::iter::repeat("")))
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .expect("texts differ, so some line does");
        panic!(
            "{name}.txt:{}: expected\n  {want:?}\nbut the machine gives\n  {got:?}\n\
             whole replay:\n{replayed}\n(FLOATIP_BLESS=1 rewrites the file if the change is intended)",
            n + 1
        );
    }
}

/// The transcript with every expected line replaced by what the machine does now.
fn replay(name: &str, text: &str) -> String {
    let mut out = String::new();
    let mut timing = Timing {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
        preempt: false,
        preempt_delay: Duration::ZERO,
        garp_refresh: None,
        confirm_claims: false,
    };
    let mut priority = Priority(100);
    let t0 = Instant::now();
    let mut machine: Option<Machine> = None;
    let mut now = t0;
    let mut asking = false;
    for (n, line) in text.lines().enumerate() {
        let at = |what: &str| format!("{name}.txt:{}: {what}: {line:?}", n + 1);
        if line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            continue; // an expected action: regenerated below its event
        }
        out.push_str(line);
        out.push('\n');
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(settings) = line.strip_prefix("set ") {
            assert!(machine.is_none(), "{}", at("settings come before start"));
            for kv in settings.split_whitespace() {
                let (k, v) = kv
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}", at("key=value")));
                let ms =
                    || Duration::from_millis(v.parse().unwrap_or_else(|_| panic!("{}", at(k))));
                let on = || v == "on";
                match k {
                    "priority" => {
                        priority = Priority(v.parse().unwrap_or_else(|_| panic!("{}", at(k))))
                    }
                    "interval" => timing.interval = ms(),
                    "timeout" => timing.timeout = ms(),
                    "preempt" => timing.preempt = on(),
                    "preempt_delay" => timing.preempt_delay = ms(),
                    "garp_refresh" => timing.garp_refresh = Some(ms()),
                    "confirm_claims" => timing.confirm_claims = on(),
                    _ => panic!("{}", at("unknown setting")),
                }
            }
            continue;
        }
        let (ms, event) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{}", at("`MS EVENT`")));
        let ms: u64 = ms
            .parse()
            .unwrap_or_else(|_| panic!("{}", at("time in ms")));
        let t = t0 + Duration::from_millis(ms);
        assert!(t >= now, "{}", at("time goes backwards"));
        if event == "start" {
            let me = Me {
                node: ME,
                boot: BootId(1),
                priority,
            };
            let (m, actions) = Machine::new(me, timing, t);
            machine = Some(m);
            now = t;
            let lines: Vec<String> = actions.iter().map(render).collect();
            write_lines(&mut out, None, &lines);
            continue;
        }
        let m = machine
            .as_mut()
            .unwrap_or_else(|| panic!("{}", at("`start` first")));
        if event == "run" {
            for _ in 0..MAX_TICKS {
                let d = m.next_deadline();
                if d > t {
                    break;
                }
                assert!(
                    d > now,
                    "{}",
                    at("the machine asks for a tick it was given")
                );
                now = d;
                step(&mut out, (m, &mut asking), now, Event::Tick, Some(now - t0));
            }
            assert!(m.next_deadline() > t, "{}", at("too many ticks"));
            now = t;
            continue;
        }
        now = t;
        let event = parse_event(event).unwrap_or_else(|| panic!("{}", at("unknown event")));
        step(&mut out, (m, &mut asking), now, event, None);
    }
    out
}

/// Feeds `event` and writes what the machine does, with the tick's time `at` in a `run`.
/// A preemption request shows too: it is no action, the heartbeats carry it.
fn step(
    out: &mut String,
    (m, asking): (&mut Machine, &mut bool),
    now: Instant,
    event: Event,
    at: Option<Duration>,
) {
    let mut lines: Vec<String> = m.handle(now, event).iter().map(render).collect();
    if m.preempt_requesting(now) != *asking {
        *asking = !*asking;
        lines.push(format!(
            "preempt request {}",
            if *asking { "on" } else { "off" }
        ));
    }
    write_lines(out, at, &lines);
}

fn write_lines(out: &mut String, at: Option<Duration>, lines: &[String]) {
    for line in lines {
        out.push_str("    ");
        if let Some(t) = at {
            let _ = write!(out, "@{} ", t.as_millis());
        }
        let _ = writeln!(out, "{line}");
    }
}

fn render(a: &Action) -> String {
    match a {
        Action::AddAddress => "add address".into(),
        Action::RemoveAddress => "remove address".into(),
        Action::ProbeAddress => "probe address".into(),
        Action::ProbeHandedOver => "probe address briefly (handed over)".into(),
        Action::SendGarp => "gratuitous ARP".into(),
        Action::Announce => "announce".into(),
        Action::AnnounceTo(n) => format!("announce to {n}"),
        Action::Resign { successor: None } => "resign".into(),
        Action::Resign { successor: Some(s) } => format!("resign, successor {s}"),
        Action::ConfirmMaster(n) => format!("ask {n} to confirm it is master"),
        Action::AskHolder => "ask the holder over its connection".into(),
        Action::SetProbing(on) => format!("probing {}", if *on { "on" } else { "off" }),
        Action::Transition { from, to, reason } => format!("{from} -> {to}: {reason}"),
        Action::Note(text) => format!("note: {text}"),
        Action::Exit => "exit".into(),
    }
}

fn parse_event(text: &str) -> Option<Event> {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    Some(match word {
        "tick" => Event::Tick,
        "shutdown" => Event::Shutdown,
        "echo" => Event::Echo(parse_peer(rest)?),
        "announce" => Event::Announce(parse_peer(rest)?),
        "confirmed" => Event::MasterConfirmed(parse_peer(rest)?),
        "holder-lost" => Event::HolderLost(match rest {
            "silence" => Loss::Silence,
            "closed" => Loss::Closed,
            _ => return None,
        }),
        "resign" => {
            let (peer, successor) = match rest.split_once(" to ") {
                Some((p, to)) => (p, Some(parse_node(to)?)),
                None => (rest, None),
            };
            Event::Resign {
                from: parse_peer(peer)?,
                successor,
            }
        }
        "released" => Event::Released(parse_node(rest)?),
        "handover" => Event::HandOver {
            to: match rest.strip_prefix("to ") {
                Some(node) => Some(parse_node(node)?),
                None if rest.is_empty() => None,
                None => return None,
            },
        },
        "probe" => Event::Probe(match rest.split_once(' ') {
            None if rest == "free" => ProbeOutcome::Free,
            Some(("in-use", who)) => ProbeOutcome::InUse(parse_mac(who)?),
            _ => return None,
        }),
        "observed" => {
            let mut link_up = None;
            let mut address_present = None;
            for kv in rest.split_whitespace() {
                match kv {
                    "link=up" => link_up = Some(true),
                    "link=down" => link_up = Some(false),
                    "address=present" => address_present = Some(true),
                    "address=absent" => address_present = Some(false),
                    _ => return None,
                }
            }
            Event::Observed {
                link_up: link_up?,
                address_present: address_present?,
            }
        }
        "failed" => Event::ActionFailed(rest.into()),
        "health" => {
            let (verdict, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let verdict = match verdict {
                "healthy" => Verdict::Healthy,
                "pending" => Verdict::Pending,
                "failing" => Verdict::Failing,
                _ => return None,
            };
            let (penalty, detail) = match rest.strip_prefix("penalty=") {
                Some(r) => {
                    let (p, d) = r.split_once(' ').unwrap_or((r, ""));
                    (p.parse().ok()?, d)
                }
                None => (0, rest),
            };
            Event::Health(Health {
                verdict,
                penalty,
                detail: detail.into(),
            })
        }
        _ => return None,
    })
}

/// `n12 MASTER 100 [preempt-request]`
fn parse_peer(text: &str) -> Option<Peer> {
    let mut words = text.split_whitespace();
    let node = parse_node(words.next()?)?;
    let role = match words.next()? {
        "BACKUP" => Role::Backup,
        "MASTER" => Role::Master,
        "FAULT" => Role::Fault,
        _ => return None,
    };
    let priority = Priority(words.next()?.parse().ok()?);
    let preempt_request = match words.next() {
        None => false,
        Some("preempt-request") => true,
        Some(_) => return None,
    };
    let last = last_octet(node);
    Some(Peer {
        node,
        boot: BootId(u64::from(last)),
        priority,
        role,
        mac: [2, 0, 0, 0, 0, last],
        preempt_request,
    })
}

/// 12 for 192.0.2.12: what names a test node's boot id and MAC.
pub(super) fn last_octet(node: IpAddr) -> u8 {
    match node {
        IpAddr::V4(v4) => v4.octets()[3],
        IpAddr::V6(v6) => v6.octets()[15],
    }
}

/// `n12` for 192.0.2.12, or a full address.
fn parse_node(text: &str) -> Option<IpAddr> {
    match text.strip_prefix('n') {
        Some(last) => Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last.parse().ok()?))),
        None => text.parse().ok(),
    }
}

/// A node's MAC (`n12`) or `aa:bb:cc:dd:ee:ff`.
fn parse_mac(text: &str) -> Option<Mac> {
    if let Some(node) = text.strip_prefix('n').and_then(|_| parse_node(text)) {
        return Some([2, 0, 0, 0, 0, last_octet(node)]);
    }
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

/// One test per transcript, and a check that no file goes unreplayed.
macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check(stringify!($name)); })*

        #[test]
        fn every_transcript_file_is_replayed() {
            let known = [$(stringify!($name)),*];
            let entries = std::fs::read_dir(dir()).expect("the transcripts folder");
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                assert!(
                    path.extension().is_some_and(|e| e == "txt") && known.contains(&stem),
                    "{} has no test: add it to transcripts! in {}",
                    path.display(),
                    file!()
                );
            }
        }
    };
}

transcripts! {
    startup_alone,
    backup_takes_over_from_a_silent_holder,
    handed_over_by_resign,
    resign_from_a_node_not_followed,
    two_masters_keyed,
    two_masters_unkeyed,
    conflict_then_retry,
    link_down_as_master,
    action_failed_as_master,
    stall_as_master,
    preemption,
    failing_checks,
    handover_on_request,
}
