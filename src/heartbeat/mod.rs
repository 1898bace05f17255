//! Network traffic → events. The threads here own sockets, never state: they read what
//! peers say, turn it into [`crate::vocabulary::Event`]s on a channel, and answer heartbeats
//! from a read-only snapshot of the local node that the daemon keeps current.

mod broadcast;
mod limits;
mod listener;
mod prober;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use log::warn;

pub use broadcast::{send_released, Broadcaster};
pub use listener::Listener;
pub use prober::{confirm_master, Prober};

use crate::auth::{within_skew, Auth, Replay, ReplayGuard};
use crate::vocabulary::{BootId, Histogram, Mac, Peer, Priority, Role};
use crate::wire::{self, Challenge, Decoded, Kind, Message, Stamp, WireError};
use limits::{ConnectionCap, LogLimit, Members, RateLimit, Trouble};

/// What this node says about itself; written by the daemon loop, read by the threads.
#[derive(Debug, Clone, Copy)]
pub struct LocalView {
    pub role: Role,
    pub priority: Priority,
    pub preempt_request: bool,
}

/// The local node as the heartbeat threads see it.
#[derive(Debug)]
pub struct Local {
    pub vip: IpAddr,
    pub node: IpAddr,
    pub mac: Mac,
    pub boot: BootId,
    seq: AtomicU64,
    view: Mutex<LocalView>,
    /// Messages dropped as malformed, foreign or unauthenticated (for `floatip status`).
    pub rejected: AtomicU64,
    /// Of those, the ones that failed authentication or replay checks.
    pub auth_failures: AtomicU64,
    /// Of those, the replayed, reordered or stale ones.
    pub replayed: AtomicU64,
    /// Heartbeat round trips the prober measured (heartbeat sent → echo read).
    pub round_trips: Mutex<Histogram>,
    /// The group's key; `None` runs the unauthenticated plain form. A reload replaces it.
    auth: RwLock<Option<Auth>>,
    shield: Mutex<Shield>,
    /// The silent connections of the backups that follow us.
    followers: listener::Followers,
}

/// The limits, the replay guard and the members heard, shared by the heartbeat threads.
/// Datagrams reach `datagrams`, `replay` and `members` only once they passed every check
/// that needs no memory (form, tag, sender), so forged ones cannot drain a member's budget.
#[derive(Debug)]
struct Shield {
    /// Per verified sender: (node, boot).
    datagrams: RateLimit<(IpAddr, BootId)>,
    connects: RateLimit,
    open: ConnectionCap,
    replay: ReplayGuard,
    members: Members,
    log: LogLimit,
}

/// Round-trip buckets (seconds): a LAN answers in well under a millisecond.
const ROUND_TRIP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25,
];

/// Simultaneous heartbeat connections one source may hold (a prober needs one).
pub const CONNECTIONS_PER_SOURCE: usize = 4;
/// More simultaneous heartbeat connections than any real group needs.
pub const MAX_CONNECTIONS: usize = 32;
/// Of those, the ones only members of the group may use.
pub const MEMBER_CONNECTIONS: usize = 8;

/// The log limiter's class of a wire error.
fn trouble_of(e: &WireError) -> Trouble {
    if e.is_auth_failure() {
        Trouble::Auth
    } else {
        Trouble::Malformed
    }
}

/// A socket of `family`'s kind on `port` of `interface` only, so that no other interface
/// (a WAN side) reaches it (`SO_BINDTOIFINDEX` on Linux, `IP(V6)_BOUND_IF` on macOS).
fn bind_on_interface(
    family: IpAddr,
    kind: socket2::Type,
    port: u16,
    interface: &str,
) -> std::io::Result<socket2::Socket> {
    let index = std::num::NonZeroU32::new(interface_index(interface)?);
    let unspecified = match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let s = socket2::Socket::new(
        socket2::Domain::for_address((unspecified, port).into()),
        kind,
        None,
    )?;
    s.set_reuse_address(true)?;
    match family {
        IpAddr::V4(_) => s.bind_device_by_index_v4(index)?,
        IpAddr::V6(_) => {
            s.set_only_v6(true)?;
            s.bind_device_by_index_v6(index)?;
        }
    }
    s.bind(&SocketAddr::from((unspecified, port)).into())?;
    Ok(s)
}

fn interface_index(interface: &str) -> std::io::Result<u32> {
    nix::net::if_::if_nametoindex(interface).map_err(std::io::Error::from)
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before 1970).
fn wall_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Local {
    /// `auth` is the group's key (or none); `interval` sizes the per-source rate limits.
    pub fn new(
        vip: IpAddr,
        node: IpAddr,
        mac: Mac,
        boot: BootId,
        view: LocalView,
        auth: Option<Auth>,
        interval: Duration,
    ) -> Arc<Local> {
        let window = auth
            .as_ref()
            .map_or(crate::auth::DEFAULT_MAX_SKEW, |a| a.max_skew);
        let shield = Shield {
            datagrams: RateLimit::for_datagrams(interval, 40),
            connects: RateLimit::for_interval(interval, 10),
            open: ConnectionCap::new(
                CONNECTIONS_PER_SOURCE,
                MAX_CONNECTIONS - MEMBER_CONNECTIONS,
                MEMBER_CONNECTIONS,
            ),
            replay: ReplayGuard::new(window),
            members: Members::default(),
            log: LogLimit::default(),
        };
        Arc::new(Local {
            vip,
            node,
            mac,
            boot,
            seq: AtomicU64::new(0),
            view: Mutex::new(view),
            rejected: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            round_trips: Mutex::new(Histogram::new(ROUND_TRIP_BUCKETS)),
            auth: RwLock::new(auth),
            shield: Mutex::new(shield),
            followers: listener::Followers::default(),
        })
    }

    pub fn authenticated(&self) -> bool {
        self.auth().is_some()
    }

    fn shield(&self) -> std::sync::MutexGuard<'_, Shield> {
        // A poisoned lock only means a panicking holder; the tables stay usable.
        self.shield.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new message of `kind` in the form this node speaks, with its bytes.
    pub fn seal(
        &self,
        kind: Kind,
        successor: Option<IpAddr>,
        reply_to: Option<Challenge>,
    ) -> (Message, Vec<u8>) {
        let m = self.message(kind, successor);
        let bytes = wire::seal(
            &m,
            &Stamp {
                time_ms: wall_ms(),
                reply_to,
            },
            self.auth().as_ref(),
        );
        (m, bytes)
    }

    /// Decodes `bytes` and applies the authentication policy.
    pub fn open(&self, bytes: &[u8]) -> Result<Decoded, WireError> {
        wire::open(bytes, self.auth().as_ref())
    }

    /// Refuses a replayed, reordered or stale authenticated broadcast.
    fn check_replay(&self, d: &Decoded) -> Result<(), Replay> {
        match d.stamp {
            Some(s) => self.shield().replay.check(
                d.message.node,
                d.message.boot,
                d.message.seq,
                s.time_ms,
                wall_ms(),
            ),
            None => Ok(()),
        }
    }

    /// Remembers the sender of a message that passed every check as a member.
    fn heard_member(&self, node: IpAddr) {
        self.shield().members.heard(node, Instant::now());
    }

    /// Refuses a timestamp outside the skew window (TCP messages, bound by their connection).
    fn check_clock(&self, d: &Decoded) -> Result<(), Replay> {
        let (Some(a), Some(s)) = (&*self.auth(), d.stamp) else {
            return Ok(());
        };
        let window = u64::try_from(a.max_skew.as_millis()).unwrap_or(u64::MAX);
        within_skew(s.time_ms, wall_ms(), window)
    }

    /// Takes a datagram token for a verified sender's (node, boot); false means drop it.
    fn admit_datagram(&self, node: IpAddr, boot: BootId) -> bool {
        self.shield().datagrams.allow((node, boot), Instant::now())
    }

    /// Admits a new connection from `from` (rate and open-connection caps): `Some(member)`
    /// when admitted, and then the caller must call [`Local::connection_closed`] with the
    /// same `member` when it ends.
    fn admit_connection(&self, from: IpAddr) -> Option<bool> {
        let mut s = self.shield();
        let member = s.members.contains(from);
        (s.connects.allow(from, Instant::now()) && s.open.open(from, member)).then_some(member)
    }

    fn connection_closed(&self, from: IpAddr, member: bool) {
        self.shield().open.close(from, member);
    }

    /// Counts a dropped message and logs why, at most once per source and trouble per 10 s.
    fn refuse(&self, from: IpAddr, trouble: Trouble, why: impl FnOnce() -> String) {
        self.reject();
        if matches!(trouble, Trouble::Auth | Trouble::Replay) {
            self.auth_failures.fetch_add(1, Ordering::Relaxed);
        }
        if trouble == Trouble::Replay {
            self.replayed.fetch_add(1, Ordering::Relaxed);
        }
        let admitted = self.shield().log.admit(from, trouble, Instant::now());
        if let Some(suppressed) = admitted {
            let more = if suppressed > 0 {
                format!(" ({suppressed} more from {from} since the last report)")
            } else {
                String::new()
            };
            warn!("heartbeat port: dropped from {from}: {}{more}", why());
        }
    }

    /// The key in use now (a poisoned lock still holds a valid key).
    fn auth(&self) -> std::sync::RwLockReadGuard<'_, Option<Auth>> {
        self.auth.read().unwrap_or_else(|e| e.into_inner())
    }

    /// New keys, used from the next message on (a reload).
    pub fn set_auth(&self, auth: Option<Auth>) {
        *self.auth.write().unwrap_or_else(|e| e.into_inner()) = auth;
    }

    /// Records one heartbeat round trip.
    fn round_trip(&self, took: Duration) {
        if let Ok(mut h) = self.round_trips.lock() {
            h.observe(took.as_secs_f64());
        }
    }

    /// Closes the connections of the backups that followed us, once we gave the address
    /// up (after the resignation went out): they follow the next holder.
    pub fn let_followers_go(&self) {
        self.followers.let_go();
    }

    pub fn set_view(&self, view: LocalView) {
        if let Ok(mut v) = self.view.lock() {
            *v = view;
        }
    }

    pub fn view(&self) -> LocalView {
        // A poisoned lock only means a panicking writer; the value is still a valid view.
        *self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reject(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    fn message(&self, kind: Kind, successor: Option<IpAddr>) -> Message {
        let v = self.view();
        Message {
            kind,
            role: v.role,
            priority: v.priority,
            preempt_request: v.preempt_request,
            vip: self.vip,
            node: self.node,
            mac: self.mac,
            successor,
            boot: self.boot,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// The sender of a message, as the state machine sees it.
pub fn peer_of(m: &Message) -> Peer {
    Peer {
        node: m.node,
        boot: m.boot,
        priority: m.priority,
        role: m.role,
        mac: m.mac,
        preempt_request: m.preempt_request,
    }
}
