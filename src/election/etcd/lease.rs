//! The holder's local deadline, pure: a lease is valid here until the send time of the
//! last acknowledged keep-alive plus the TTL minus a margin. etcd restarts its TTL only when
//! it receives the keep-alive, after we sent it, so this deadline always falls before the
//! lease can expire in etcd's view — assuming only that both clocks run at nearly the same rate.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A reading of a clock that counts while the host is suspended (`CLOCK_BOOTTIME` on Linux;
/// `CLOCK_MONOTONIC` elsewhere, which on macOS also counts asleep): a suspended holder must
/// find its deadline passed on resume, as etcd's did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(Duration);

impl Stamp {
    pub fn now() -> Stamp {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let id = nix::time::ClockId::CLOCK_BOOTTIME;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let id = nix::time::ClockId::CLOCK_MONOTONIC;
        // Reading a clock the kernel provides cannot fail for a valid id.
        let ts = nix::time::clock_gettime(id).expect("the boot clock is readable");
        Stamp(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
    }

    pub fn saturating_sub(self, earlier: Stamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    fn nanos(self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl std::ops::Add<Duration> for Stamp {
    type Output = Stamp;
    fn add(self, d: Duration) -> Stamp {
        Stamp(self.0 + d)
    }
}

/// How long before etcd could expire the lease the holder gives up: a tenth of the TTL,
/// at least 100 ms — room for removing the address and for clock rate differences.
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 10).max(Duration::from_millis(100))
}

/// The renewal bookkeeping of one held lease.
#[derive(Debug)]
pub struct LeaseClock {
    pub id: i64,
    /// What this node assumes etcd counts: the smaller of the configured and the granted TTL.
    ttl: Duration,
    /// Send times of keep-alives not yet acknowledged, oldest first (etcd answers in order).
    pending: VecDeque<Stamp>,
    valid_until: Stamp,
}

impl LeaseClock {
    /// A lease whose grant request was sent at `grant_sent`.
    pub fn granted(
        id: i64,
        configured: Duration,
        granted: Duration,
        grant_sent: Stamp,
    ) -> LeaseClock {
        let ttl = configured.min(granted);
        LeaseClock {
            id,
            ttl,
            pending: VecDeque::new(),
            valid_until: grant_sent + ttl.saturating_sub(margin(ttl)),
        }
    }

    pub fn sent(&mut self, at: Stamp) {
        self.pending.push_back(at);
    }

    /// The oldest outstanding keep-alive was acknowledged with etcd's remaining TTL.
    /// `false`: etcd no longer knows the lease.
    pub fn acknowledged(&mut self, ttl_left_secs: i64) -> bool {
        let Some(sent) = self.pending.pop_front() else {
            return ttl_left_secs > 0;
        };
        if ttl_left_secs <= 0 {
            return false;
        }
        self.renewed(sent);
        true
    }

    /// A renewal sent at `sent` was acknowledged outside the stream's order (a new stream's first).
    pub fn renewed(&mut self, sent: Stamp) {
        self.valid_until = self
            .valid_until
            .max(sent + self.ttl.saturating_sub(margin(self.ttl)));
    }

    /// When the oldest keep-alive still waiting for its answer was sent.
    pub fn oldest_pending(&self) -> Option<Stamp> {
        self.pending.front().copied()
    }

    /// The stream broke: its outstanding keep-alives will never be answered.
    pub fn stream_lost(&mut self) {
        self.pending.clear();
    }

    pub fn valid_until(&self) -> Stamp {
        self.valid_until
    }

    /// Time since the send time of the last acknowledged renewal (or of the grant).
    pub fn since_renewal(&self, now: Stamp) -> Duration {
        let renewed = Stamp(
            self.valid_until
                .0
                .saturating_sub(self.ttl.saturating_sub(margin(self.ttl))),
        );
        now.saturating_sub(renewed)
    }

    /// Time left before the local deadline; `None` once it has passed.
    pub fn left(&self, now: Stamp) -> Option<Duration> {
        (now < self.valid_until).then(|| self.valid_until.saturating_sub(now))
    }
}

/// The local deadline as the daemon's loop reads it, lock-free; 0 when nothing is held.
#[derive(Debug, Default)]
pub struct SharedDeadline(AtomicU64);

impl SharedDeadline {
    pub fn set(&self, until: Option<Stamp>) {
        self.0
            .store(until.map_or(0, Stamp::nanos), Ordering::SeqCst);
    }

    /// Time left before the holder must consider itself not elected; `None`: not elected.
    pub fn left(&self, now: Stamp) -> Option<Duration> {
        let until = self.0.load(Ordering::SeqCst);
        (until > now.nanos()).then(|| Duration::from_nanos(until - now.nanos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(2);

    fn at(ms: u64) -> Stamp {
        Stamp(Duration::from_secs(1000) + Duration::from_millis(ms))
    }

    #[test]
    fn deadline_runs_from_the_send_time_not_the_answer() {
        let mut l = LeaseClock::granted(7, TTL, TTL, at(0));
        assert_eq!(l.valid_until(), at(1800));
        l.sent(at(600));
        // Answered much later: still counted from 600.
        assert!(l.acknowledged(2));
        assert_eq!(l.valid_until(), at(2400));
        assert_eq!(l.left(at(2399)), Some(Duration::from_millis(1)));
        assert_eq!(l.left(at(2400)), None);
        assert_eq!(l.since_renewal(at(2400)), Duration::from_millis(1800));
    }

    #[test]
    fn answers_pair_with_the_oldest_request() {
        let mut l = LeaseClock::granted(7, TTL, TTL, at(0));
        l.sent(at(600));
        l.sent(at(1200));
        assert!(l.acknowledged(2));
        assert_eq!(
            l.valid_until(),
            at(2400),
            "the first answer renews from the first send"
        );
        assert_eq!(l.oldest_pending(), Some(at(1200)));
        assert!(l.acknowledged(2));
        assert_eq!(l.valid_until(), at(3000));
        assert_eq!(l.oldest_pending(), None);
    }

    #[test]
    fn a_lost_stream_renews_nothing_and_an_unknown_lease_is_lost() {
        let mut l = LeaseClock::granted(7, TTL, TTL, at(0));
        l.sent(at(600));
        l.stream_lost();
        assert!(
            l.acknowledged(2),
            "an answer with nothing pending changes nothing"
        );
        assert_eq!(l.valid_until(), at(1800));
        l.sent(at(700));
        assert!(!l.acknowledged(0), "TTL 0: etcd no longer has the lease");
        l.renewed(at(600));
        l.renewed(at(100));
        assert_eq!(l.valid_until(), at(2400), "a deadline never moves back");
    }

    #[test]
    fn the_smaller_ttl_counts_and_the_margin_has_a_floor() {
        let l = LeaseClock::granted(7, TTL, Duration::from_secs(5), at(0));
        assert_eq!(
            l.valid_until(),
            at(1800),
            "etcd granting more than asked does not extend ours"
        );
        assert_eq!(margin(Duration::from_secs(1)), Duration::from_millis(100));
        assert_eq!(margin(Duration::from_secs(10)), Duration::from_secs(1));
    }

    #[test]
    fn shared_deadline() {
        let d = SharedDeadline::default();
        assert_eq!(d.left(at(0)), None);
        d.set(Some(at(500)));
        assert_eq!(d.left(at(200)), Some(Duration::from_millis(300)));
        assert_eq!(d.left(at(500)), None);
        d.set(None);
        assert_eq!(d.left(at(0)), None);
        assert!(Stamp::now() > Stamp(Duration::ZERO));
    }
}
