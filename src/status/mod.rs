//! `floatip status`: the running daemon's state, served as JSON on a root-only Unix socket.
//!
//! A server thread asks the daemon loop for a [`Snapshot`] ([`Snapshot::of`] is pure)
//! each time a client connects.

mod client;
mod server;

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub use client::{fetch, hand_over, render};
pub use server::Server;

use crate::config::Config;
use crate::health::{Tracked, Tracker};
use crate::state::{Counters as MachineCounters, Holder, Machine};
use crate::vocabulary::{fmt_mac, Reason, Role};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub node: IpAddr,
    pub role: String,
    pub priority: u8,
    pub mac: String,
    pub last_heard_ms_ago: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    #[serde(flatten)]
    pub machine: MachineCounters,
    /// Messages dropped as malformed, foreign or unauthenticated.
    pub messages_rejected: u64,
    /// Of those, the ones that failed authentication or the replay checks.
    #[serde(default)]
    pub auth_failures: u64,
}

/// One service check (`floating_ip.track`) as the daemon's tracker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    /// `tcp`, `http` or `exec`.
    pub kind: String,
    pub target: String,
    /// `pending`, `up` or `down` (after rise/fall).
    pub state: String,
    /// What `down` does: `fault`, or `priority -<weight>`.
    pub effect: String,
    /// Results in a row against `state` (towards `rise` or `fall`).
    pub streak: u32,
    pub rise: u32,
    pub fall: u32,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub last_ok: Option<bool>,
    pub last_result: Option<String>,
    pub last_took_ms: Option<u64>,
    pub last_ms_ago: Option<u64>,
    pub state_since_ms_ago: Option<u64>,
    pub runs: u64,
    pub failures: u64,
}

impl CheckStatus {
    /// Each check of the daemon's tracker as `floatip status` shows it.
    pub fn all(tracker: &Tracker, now: Instant) -> Vec<CheckStatus> {
        tracker.checks().iter().map(|t| Self::of(t, now)).collect()
    }

    fn of(t: &Tracked, now: Instant) -> CheckStatus {
        let ago = |at: Instant| millis(now.saturating_duration_since(at));
        CheckStatus {
            name: t.check.name.clone(),
            kind: t.check.target.kind().into(),
            target: t.check.target.to_string(),
            state: t.counter.state().to_string(),
            effect: t
                .check
                .weight
                .map_or("fault".to_string(), |w| format!("priority -{w}")),
            streak: t.counter.streak(),
            rise: t.check.rise,
            fall: t.check.fall,
            interval_ms: millis(t.check.interval),
            timeout_ms: millis(t.check.timeout),
            last_ok: t.last.as_ref().map(|(s, _)| s.ok),
            last_result: t.last.as_ref().map(|(s, _)| s.detail.clone()),
            last_took_ms: t.last.as_ref().map(|(s, _)| millis(s.took)),
            last_ms_ago: t.last.as_ref().map(|(_, at)| ago(*at)),
            state_since_ms_ago: t.since.map(ago),
            runs: t.runs,
            failures: t.failures,
        }
    }
}

/// What a client of the status socket asks: one line, `status` (or nothing) or
/// `handover [NODE]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Status,
    HandOver { to: Option<IpAddr> },
}

impl Request {
    pub fn parse(line: &str) -> Option<Request> {
        let mut words = line.split_whitespace();
        let request = match words.next() {
            None | Some("status") => Request::Status,
            Some("handover") => Request::HandOver {
                to: match words.next() {
                    Some(node) => Some(node.parse().ok()?),
                    None => None,
                },
            },
            Some(_) => return None,
        };
        words.next().is_none().then_some(request)
    }

    pub fn line(&self) -> String {
        match self {
            Request::Status => "status\n".into(),
            Request::HandOver { to: None } => "handover\n".into(),
            Request::HandOver { to: Some(node) } => format!("handover {node}\n"),
        }
    }
}

/// The daemon's answer to `handover`: whom it handed the address to, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandoverReply {
    HandedTo(IpAddr),
    Refused(String),
}

/// The running configuration against the file: when it was (re)loaded, and what differs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    pub loaded_unix_ms: u64,
    pub reloads: u64,
    /// `same`, `changed since loaded (run systemctl reload floatip)`, or why it cannot be read.
    pub file_on_disk: String,
    /// Keys the file changed that only a restart applies.
    pub restart_needed_for: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: String,
    pub state: String,
    pub since_unix_ms: u64,
    pub since_ms_ago: u64,
    pub reason: String,
    pub node: IpAddr,
    pub vip: IpAddr,
    /// Every floating address, as `floatip check` lists them (empty from an older daemon).
    #[serde(default)]
    pub addresses: Vec<String>,
    pub interface: String,
    pub priority: u8,
    /// Who holds the address as far as this node knows (itself when MASTER).
    pub holder: Option<IpAddr>,
    pub peers: Vec<PeerStatus>,
    pub counters: Counters,
    /// The configured priority; `priority` is it minus failing weighted checks.
    #[serde(default)]
    pub configured_priority: u8,
    /// The service checks' verdict: `none` (no checks), `pending`, `healthy` or `failing`.
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub checks: Vec<CheckStatus>,
    #[serde(default)]
    pub config: ConfigStatus,
    pub election: ElectionStatus,
}

/// Who decides the holder, and what the election last said.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ElectionStatus {
    /// `lan` or `etcd` (empty from a daemon that predates elections).
    pub kind: String,
    /// The node the election key names; `None`: nobody, or not known.
    pub key_holder: Option<IpAddr>,
    /// Why the election cannot be reached, while it cannot.
    pub unreachable: Option<String>,
}

impl Snapshot {
    /// The machine's state as an operator reads it; `wall` is the wall-clock time at `now`,
    /// `checks` the service checks' states (from the daemon's tracker).
    pub fn of(
        machine: &Machine,
        config: &Config,
        now: Instant,
        wall: SystemTime,
        rejected: u64,
        checks: Vec<CheckStatus>,
    ) -> Snapshot {
        let ago = |t: Instant| now.saturating_duration_since(t);
        let since_ago = ago(machine.since());
        let since_wall = wall
            .checked_sub(since_ago)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let holder = holder_of(machine, config);
        Snapshot {
            version: env!("CARGO_PKG_VERSION").into(),
            state: machine.role().to_string(),
            since_unix_ms: millis(
                since_wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default(),
            ),
            since_ms_ago: millis(since_ago),
            reason: machine.reason().to_string(),
            node: config.node_addr,
            vip: config.vip,
            addresses: config.written_addresses(),
            interface: config.interface.clone(),
            priority: machine.priority().0,
            configured_priority: machine.me().priority.0,
            health: match (checks.is_empty(), machine.health().verdict) {
                (true, _) => "none".into(),
                (false, crate::vocabulary::Verdict::Pending) => "pending".into(),
                (false, crate::vocabulary::Verdict::Healthy) => "healthy".into(),
                (false, crate::vocabulary::Verdict::Failing) => "failing".into(),
            },
            checks,
            holder,
            election: ElectionStatus::default(),
            peers: machine
                .peers()
                .map(|s| PeerStatus {
                    node: s.peer.node,
                    role: s.peer.role.to_string(),
                    priority: s.peer.priority.0,
                    mac: fmt_mac(&s.peer.mac),
                    last_heard_ms_ago: millis(ago(s.at)),
                })
                .collect(),
            counters: Counters {
                machine: machine.counters(),
                messages_rejected: rejected,
                auth_failures: 0,
            },
            config: ConfigStatus::default(),
        }
    }

    /// Every floating address; an older daemon names only its IPv4 one.
    pub fn address_list(&self) -> String {
        match self.addresses.as_slice() {
            [] => self.vip.to_string(),
            all => all.join(", "),
        }
    }

    /// The one-line summary systemd shows as STATUS=.
    pub fn one_line(&self) -> String {
        summary(
            &self.state,
            &self.address_list(),
            self.holder,
            self.peers.len(),
            &self.reason,
        )
    }
}

/// What the one-line summary says, read straight from the machine: cheap to take and
/// compare on every step, so the line is formatted only when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    role: Role,
    holder: Option<IpAddr>,
    peers: usize,
    reason: Reason,
}

impl Summary {
    pub fn of(machine: &Machine, config: &Config) -> Summary {
        Summary {
            role: machine.role(),
            holder: holder_of(machine, config),
            peers: machine.peers().count(),
            reason: machine.reason().clone(),
        }
    }

    /// The line systemd shows as STATUS=, naming `config`'s addresses.
    pub fn line(&self, config: &Config) -> String {
        summary(
            &self.role.to_string(),
            &config.address_list(),
            self.holder,
            self.peers,
            &self.reason.to_string(),
        )
    }
}

fn summary(
    state: &str,
    addresses: &str,
    holder: Option<IpAddr>,
    peers: usize,
    reason: &str,
) -> String {
    let holder = holder.map_or("none".to_string(), |h| h.to_string());
    format!("{state} {addresses} holder {holder} peers {peers}: {reason}")
}

/// Who holds the address as far as this node knows (itself when MASTER).
fn holder_of(machine: &Machine, config: &Config) -> Option<IpAddr> {
    match (machine.role(), machine.holder()) {
        (crate::vocabulary::Role::Master, _) => Some(config.node_addr),
        (_, Holder::Alive { peer, .. }) => Some(peer.node),
        _ => None,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn requests_are_one_line_each_way() {
        for r in [
            Request::Status,
            Request::HandOver { to: None },
            Request::HandOver {
                to: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12))),
            },
        ] {
            assert_eq!(Request::parse(&r.line()), Some(r));
        }
        assert_eq!(Request::parse(""), Some(Request::Status));
        assert_eq!(Request::parse("handover nobody"), None);
        assert_eq!(Request::parse("reboot"), None);
    }
    use crate::config::Check;
    use crate::health::Sample;
    use crate::vocabulary::{BootId, Event, Peer, Priority, ProbeOutcome, Role};

    #[test]
    fn snapshot_of_a_master_with_a_peer() {
        let c = Config::example();
        let t0 = Instant::now();
        let (mut m, _) = Machine::new(c.me(BootId(1)), c.timing(), t0);
        let peer = Peer {
            node: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12)),
            boot: BootId(2),
            priority: Priority(90),
            role: Role::Backup,
            mac: [2, 0, 0, 0, 0, 12],
            preempt_request: false,
        };
        m.handle(t0 + Duration::from_millis(50), Event::Announce(peer));
        m.handle(t0 + Duration::from_millis(200), Event::Tick);
        m.handle(
            t0 + Duration::from_millis(201),
            Event::Probe(ProbeOutcome::Free),
        );
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = Snapshot::of(&m, &c, t0 + Duration::from_millis(301), wall, 7, vec![]);
        assert_eq!(s.state, "MASTER");
        assert_eq!(s.since_ms_ago, 100);
        assert_eq!(s.since_unix_ms, 999_900);
        assert_eq!(s.holder, Some(c.node_addr));
        assert_eq!(s.peers.len(), 1);
        assert_eq!(s.peers[0].last_heard_ms_ago, 251);
        assert_eq!(s.peers[0].mac, "02:00:00:00:00:0c");
        assert_eq!(s.counters.machine.takeovers, 1);
        assert_eq!(s.counters.messages_rejected, 7);
        assert!(
            s.one_line()
                .starts_with("MASTER 192.0.2.234 holder 192.0.2.11 peers 1: "),
            "{}",
            s.one_line()
        );
    }

    #[test]
    fn every_address_is_listed_and_an_older_daemon_names_its_one() {
        let mut c = Config::example();
        let v6 = crate::vocabulary::Floating::V6("2001:db8::234".parse().unwrap(), 64);
        c.addresses.push(v6);
        let t0 = Instant::now();
        let (m, _) = Machine::new(c.me(BootId(1)), c.timing(), t0);
        let mut s = Snapshot::of(&m, &c, t0, SystemTime::UNIX_EPOCH, 0, vec![]);
        assert_eq!(s.addresses, ["192.0.2.234", "2001:db8::234/64"]);
        assert!(
            s.one_line()
                .starts_with("BACKUP 192.0.2.234, 2001:db8::234/64 holder none"),
            "{}",
            s.one_line()
        );
        assert_eq!(Summary::of(&m, &c).line(&c), s.one_line());
        s.addresses.clear();
        assert_eq!(s.address_list(), "192.0.2.234");
    }

    #[test]
    fn snapshot_shows_checks_health_and_effective_priority() {
        let c = Config::example();
        let t0 = Instant::now();
        let (mut m, _) = Machine::new(c.me(BootId(1)), c.timing(), t0);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(Snapshot::of(&m, &c, t0, wall, 0, vec![]).health, "none");
        let health = crate::vocabulary::Health {
            verdict: crate::vocabulary::Verdict::Healthy,
            penalty: 30,
            detail: "x down".into(),
        };
        m.handle(t0 + Duration::from_millis(10), Event::Health(health));
        let check = CheckStatus {
            name: "gateway".into(),
            kind: "tcp".into(),
            target: "127.0.0.1:8000".into(),
            state: "down".into(),
            effect: "priority -30".into(),
            streak: 0,
            rise: 2,
            fall: 3,
            interval_ms: 100,
            timeout_ms: 100,
            last_ok: Some(false),
            last_result: Some("connection refused".into()),
            last_took_ms: Some(0),
            last_ms_ago: Some(5),
            state_since_ms_ago: Some(50),
            runs: 9,
            failures: 4,
        };
        let s = Snapshot::of(
            &m,
            &c,
            t0 + Duration::from_millis(20),
            wall,
            0,
            vec![check.clone()],
        );
        assert_eq!(
            (s.priority, s.configured_priority, s.health.as_str()),
            (70, 100, "healthy")
        );
        assert_eq!(s.checks, vec![check]);
        let text = render(&s);
        assert!(
            text.contains("health:    healthy (priority 70 of configured 100)"),
            "{text}"
        );
        assert!(text.contains("check \"gateway\" tcp 127.0.0.1:8000: down for 50 ms (down means priority -30); last \"connection refused\" 5 ms ago"), "{text}");
        // An older client's JSON without the new fields still parses.
        let mut json: serde_json::Value = serde_json::to_value(&s).unwrap();
        for k in ["checks", "health", "configured_priority", "config"] {
            json.as_object_mut().unwrap().remove(k);
        }
        assert!(serde_json::from_value::<Snapshot>(json).is_ok());
    }

    #[test]
    fn check_statuses_show_state_last_result_and_timings() {
        let t0 = Instant::now();
        let check = Check::example("web", Some(10));
        let sample = |ok: bool, detail: &str| Sample {
            ok,
            detail: detail.into(),
            took: Duration::from_millis(1),
        };
        let mut t = Tracker::new(&[check]);
        assert_eq!(CheckStatus::all(&t, t0)[0].state, "pending");
        assert_eq!(CheckStatus::all(&t, t0)[0].last_result, None);
        t.record(0, sample(true, "connected"), t0);
        let refused = sample(false, "connection refused");
        t.record(0, refused, t0 + Duration::from_millis(100));
        let s = &CheckStatus::all(&t, t0 + Duration::from_millis(130))[0];
        assert_eq!(s.state, "up");
        assert_eq!(s.effect, "priority -10");
        assert_eq!(s.streak, 1);
        assert_eq!(s.last_ok, Some(false));
        assert_eq!(s.last_result.as_deref(), Some("connection refused"));
        assert_eq!(s.last_ms_ago, Some(30));
        assert_eq!(s.state_since_ms_ago, Some(130));
        assert_eq!((s.runs, s.failures), (2, 1));
        assert_eq!(
            (s.kind.as_str(), s.target.as_str()),
            ("tcp", "127.0.0.1:8000")
        );
    }
}
