//! Bounds on what one stranger can make us do: token buckets (per verified sender for
//! datagrams, per source address for connections), caps on open connections (per source,
//! and in all, with capacity kept for the group's members), and a log limiter so a flood
//! costs one log line per source per [`LOG_EVERY`], not one per packet.
//! Pure apart from the `Instant`s passed in; every map is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A master tells a silent former holder it holds now every 20 ms (the state machine's
/// probe of a suspected second master); the datagram budget makes room for them.
const SUSPECT_PROBES_PER_SEC: f64 = 50.0;

/// At most one log line per source in this period.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Sources remembered at most per table; beyond that all new sources share one entry.
const MAX_SOURCES: usize = 4096;

/// The key for a source: its own, or one shared slot when the table is full.
fn slot<K: Eq + std::hash::Hash + Copy, V>(
    map: &mut HashMap<Option<K>, V>,
    ip: K,
    fresh: impl FnOnce() -> V,
) -> &mut V {
    let key = if map.contains_key(&Some(ip)) || map.len() < MAX_SOURCES {
        Some(ip)
    } else {
        None
    };
    map.entry(key).or_insert_with(fresh)
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key (a source address, or a verified sender's node and boot):
/// `burst` tokens, refilled at `rate` per second.
#[derive(Debug)]
pub struct RateLimit<K = IpAddr> {
    rate: f64,
    burst: f64,
    buckets: HashMap<Option<K>, Bucket>,
}

impl<K: Eq + std::hash::Hash + Copy> RateLimit<K> {
    pub fn new(rate_per_sec: f64, burst: u32) -> RateLimit<K> {
        RateLimit {
            rate: rate_per_sec,
            burst: f64::from(burst),
            buckets: HashMap::new(),
        }
    }

    /// What a node at heartbeat `interval` legitimately sends, times four, plus a burst.
    pub fn for_interval(interval: Duration, burst: u32) -> RateLimit<K> {
        let per_sec = 4.0 / interval.as_secs_f64().max(0.001);
        RateLimit::new(per_sec.max(20.0), burst)
    }

    /// The datagrams a member sends: [`RateLimit::for_interval`], plus a master's
    /// announces to a second master it cannot hear.
    pub fn for_datagrams(interval: Duration, burst: u32) -> RateLimit<K> {
        let base = RateLimit::<K>::for_interval(interval, burst).rate;
        RateLimit::new(base + SUSPECT_PROBES_PER_SEC, burst)
    }

    /// Takes a token for `ip`; false when its bucket is empty.
    pub fn allow(&mut self, ip: K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_SOURCES {
            let (rate, burst) = (self.rate, self.burst);
            // Full buckets are the same as no entry: forget them.
            self.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let burst = self.burst;
        let b = slot(&mut self.buckets, ip, || Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.rate)
            .min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open connections, capped per source and in all. Members of the group (senders of
/// verified messages) draw on their own share, so strangers holding every slot they
/// may have still leave room for a member's prober.
#[derive(Debug)]
pub struct ConnectionCap {
    per_source: usize,
    /// Connections strangers may hold together.
    for_strangers: usize,
    /// Connections members may hold together.
    for_members: usize,
    open: HashMap<IpAddr, usize>,
    strangers: usize,
    members: usize,
}

impl ConnectionCap {
    pub fn new(per_source: usize, for_strangers: usize, for_members: usize) -> ConnectionCap {
        ConnectionCap {
            per_source,
            for_strangers,
            for_members,
            open: HashMap::new(),
            strangers: 0,
            members: 0,
        }
    }

    /// Counts a new connection from `ip` (a `member` or not); false (and nothing counted)
    /// at a cap. [`ConnectionCap::close`] must get the same `member`.
    pub fn open(&mut self, ip: IpAddr, member: bool) -> bool {
        let (pool, cap) = if member {
            (self.members, self.for_members)
        } else {
            (self.strangers, self.for_strangers)
        };
        let n = self.open.get(&ip).copied().unwrap_or(0);
        if n >= self.per_source || pool >= cap {
            return false;
        }
        self.open.insert(ip, n + 1);
        *(if member {
            &mut self.members
        } else {
            &mut self.strangers
        }) += 1;
        true
    }

    pub fn close(&mut self, ip: IpAddr, member: bool) {
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
            let pool = if member {
                &mut self.members
            } else {
                &mut self.strangers
            };
            *pool = pool.saturating_sub(1);
        }
    }
}

/// The group's members as far as verified messages tell: node addresses that sent a
/// message that passed every check. Bounded: the longest-silent member is forgotten first.
#[derive(Debug, Default)]
pub struct Members {
    seen: HashMap<IpAddr, Instant>,
}

/// Members remembered at most (far more than a group has).
const MAX_MEMBERS: usize = 64;

impl Members {
    pub fn heard(&mut self, node: IpAddr, now: Instant) {
        if !self.seen.contains_key(&node) && self.seen.len() >= MAX_MEMBERS {
            if let Some(oldest) = self.seen.iter().min_by_key(|(_, at)| **at).map(|(n, _)| *n) {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(node, now);
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.seen.contains_key(&ip)
    }
}

#[derive(Debug, Clone, Copy)]
struct Reported {
    at: Instant,
    suppressed: u64,
}

/// What went wrong, for the log limiter: each kind gets its own line per source, so a
/// flood of garbage does not hide that a peer is sending with the wrong key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trouble {
    /// Garbage, truncated, wrong version, wrong sender.
    Malformed,
    /// Wrong or missing key, clock skew.
    Auth,
    /// A replayed or reordered message.
    Replay,
    /// Over a rate or connection limit.
    Limit,
}

/// Decides which problems from a source are worth a log line.
#[derive(Debug, Default)]
pub struct LogLimit {
    sources: HashMap<Option<(IpAddr, Trouble)>, Reported>,
}

impl LogLimit {
    /// `Some(n)` when a line about `trouble` may be logged now for `ip`, `n` being the lines
    /// suppressed since the last one; `None` (and one more suppressed) otherwise.
    pub fn admit(&mut self, ip: IpAddr, trouble: Trouble, now: Instant) -> Option<u64> {
        let ip = (ip, trouble);
        if self.sources.len() >= MAX_SOURCES {
            self.sources
                .retain(|_, r| now.saturating_duration_since(r.at) < LOG_EVERY || r.suppressed > 0);
        }
        let first = Reported {
            at: now.checked_sub(LOG_EVERY).unwrap_or(now),
            suppressed: 0,
        };
        let fresh = !self.sources.contains_key(&Some(ip));
        let r = slot(&mut self.sources, ip, || first);
        if fresh || now.saturating_duration_since(r.at) >= LOG_EVERY {
            let n = r.suppressed;
            *r = Reported {
                at: now,
                suppressed: 0,
            };
            Some(n)
        } else {
            r.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r: RateLimit = RateLimit::new(10.0, 5);
        assert_eq!((0..20).filter(|_| r.allow(ip(1), t0)).count(), 5);
        // Another source is not affected.
        assert!(r.allow(ip(2), t0));
        // One second refills ten tokens, capped at the burst.
        assert_eq!(
            (0..20)
                .filter(|_| r.allow(ip(1), t0 + Duration::from_secs(1)))
                .count(),
            5
        );
        assert_eq!(
            (0..20)
                .filter(|_| r.allow(ip(1), t0 + Duration::from_millis(1300)))
                .count(),
            3
        );
    }

    #[test]
    fn interval_rate_covers_real_traffic() {
        let r: RateLimit = RateLimit::for_interval(Duration::from_millis(100), 20);
        assert_eq!(r.rate, 40.0);
        assert_eq!(
            RateLimit::<IpAddr>::for_interval(Duration::from_secs(1), 20).rate,
            20.0
        );
        assert_eq!(
            RateLimit::<IpAddr>::for_datagrams(Duration::from_secs(1), 20).rate,
            20.0 + SUSPECT_PROBES_PER_SEC
        );
    }

    #[test]
    fn tables_stay_bounded_under_a_spoofed_flood() {
        let t0 = Instant::now();
        let mut r: RateLimit = RateLimit::new(1.0, 1);
        let mut l = LogLimit::default();
        for i in 0..20_000u32 {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            r.allow(a, t0);
            l.admit(a, Trouble::Malformed, t0);
        }
        assert!(r.buckets.len() <= MAX_SOURCES + 1);
        assert!(l.sources.len() <= MAX_SOURCES + 1);
    }

    #[test]
    fn connection_cap_per_source() {
        let mut c = ConnectionCap::new(2, 10, 10);
        assert!(c.open(ip(1), false) && c.open(ip(1), false));
        assert!(!c.open(ip(1), false));
        assert!(c.open(ip(2), false));
        c.close(ip(1), false);
        assert!(c.open(ip(1), false));
    }

    #[test]
    fn strangers_cannot_take_the_members_share() {
        let mut c = ConnectionCap::new(4, 8, 2);
        let strangers = (20..40).filter(|i| c.open(ip(*i), false)).count();
        assert_eq!(strangers, 8);
        assert!(c.open(ip(1), true) && c.open(ip(2), true));
        assert!(!c.open(ip(3), true), "the members' share is bounded too");
        c.close(ip(20), false);
        assert!(c.open(ip(41), false));
        c.close(ip(1), true);
        assert!(c.open(ip(3), true));
    }

    #[test]
    fn members_are_bounded_and_forget_the_longest_silent() {
        let t0 = Instant::now();
        let mut m = Members::default();
        for i in 0..200u32 {
            m.heard(
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert!(m.seen.len() <= MAX_MEMBERS);
        assert!(m.contains(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 199))));
        assert!(!m.contains(IpAddr::V4(Ipv4Addr::from(0x0a00_0000))));
    }

    #[test]
    fn log_limit_one_line_per_period_with_a_count() {
        let t0 = Instant::now();
        let mut l = LogLimit::default();
        assert_eq!(l.admit(ip(1), Trouble::Auth, t0), Some(0));
        for _ in 0..99 {
            assert_eq!(
                l.admit(ip(1), Trouble::Auth, t0 + Duration::from_secs(1)),
                None
            );
        }
        assert_eq!(
            l.admit(ip(2), Trouble::Auth, t0 + Duration::from_secs(1)),
            Some(0)
        );
        assert_eq!(
            l.admit(ip(1), Trouble::Auth, t0 + Duration::from_secs(10)),
            Some(99)
        );
        assert_eq!(
            l.admit(ip(1), Trouble::Auth, t0 + Duration::from_secs(11)),
            None
        );
        assert_eq!(
            l.admit(ip(1), Trouble::Limit, t0 + Duration::from_secs(11)),
            Some(0)
        );
    }
}
