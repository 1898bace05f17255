//! The replay guard for authenticated broadcasts (pure: the caller passes the clock).
//!
//! Per sending node it remembers the boot id, the highest sequence number and the newest
//! timestamp it accepted. A message is accepted when its timestamp is within the skew
//! window of our clock, and either it comes from the remembered boot with a higher
//! sequence number, or from another boot with a newer timestamp than anything accepted
//! from that node (a restart; boots only move forward in time). So a captured message can
//! never be accepted twice, an old boot's messages are refused once a newer one was heard,
//! and a receiver that knows nothing (it just restarted) accepts at most messages younger
//! than the window.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::vocabulary::BootId;

/// Senders remembered at most; only messages with a valid tag get here.
const MAX_PEERS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    #[error("timestamp {0} ms behind our clock (replayed, or clocks not in sync: run NTP or raise floating_ip.auth.max_clock_skew_in_ms)")]
    TooOld(u64),
    #[error("timestamp {0} ms ahead of our clock (clocks not in sync: run NTP or raise floating_ip.auth.max_clock_skew_in_ms)")]
    FromFuture(u64),
    #[error("sequence {seq} not above {last} already seen from this boot (replayed or reordered)")]
    Repeated { seq: u64, last: u64 },
    #[error("from an earlier boot of the sender (replayed)")]
    OldBoot,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    boot: BootId,
    seq: u64,
    time_ms: u64,
}

#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    peers: HashMap<IpAddr, Last>,
}

impl ReplayGuard {
    pub fn new(window: std::time::Duration) -> ReplayGuard {
        ReplayGuard {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            peers: HashMap::new(),
        }
    }

    /// Accepts (and remembers) or refuses one message; `now_ms` is our wall clock.
    pub fn check(
        &mut self,
        node: IpAddr,
        boot: BootId,
        seq: u64,
        time_ms: u64,
        now_ms: u64,
    ) -> Result<(), Replay> {
        within_skew(time_ms, now_ms, self.window_ms)?;
        match self.peers.get_mut(&node) {
            Some(last) if last.boot == boot => {
                if seq <= last.seq {
                    return Err(Replay::Repeated {
                        seq,
                        last: last.seq,
                    });
                }
                last.seq = seq;
                last.time_ms = last.time_ms.max(time_ms);
            }
            Some(last) => {
                if time_ms <= last.time_ms {
                    return Err(Replay::OldBoot);
                }
                *last = Last { boot, seq, time_ms };
            }
            None => {
                if self.peers.len() >= MAX_PEERS {
                    self.forget_before(now_ms);
                }
                self.peers.insert(node, Last { boot, seq, time_ms });
            }
        }
        Ok(())
    }

    /// Drops what the window alone already refuses; if still full, the stalest sender.
    fn forget_before(&mut self, now_ms: u64) {
        let window = self.window_ms;
        self.peers
            .retain(|_, l| l.time_ms.saturating_add(window) >= now_ms);
        if self.peers.len() >= MAX_PEERS {
            if let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, l)| l.time_ms)
                .map(|(n, _)| *n)
            {
                self.peers.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// A timestamp within `window_ms` of our clock `now_ms`, either way.
pub fn within_skew(time_ms: u64, now_ms: u64, window_ms: u64) -> Result<(), Replay> {
    if time_ms.saturating_add(window_ms) < now_ms {
        Err(Replay::TooOld(now_ms - time_ms))
    } else if time_ms > now_ms.saturating_add(window_ms) {
        Err(Replay::FromFuture(time_ms - now_ms))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const N: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 12));
    const T: u64 = 1_700_000_000_000;

    fn guard() -> ReplayGuard {
        ReplayGuard::new(Duration::from_secs(10))
    }

    #[test]
    fn in_order_messages_pass_replays_and_reorders_do_not() {
        let mut g = guard();
        assert_eq!(g.check(N, BootId(7), 1, T, T), Ok(()));
        assert_eq!(g.check(N, BootId(7), 3, T + 100, T + 100), Ok(()));
        assert_eq!(
            g.check(N, BootId(7), 3, T + 100, T + 200),
            Err(Replay::Repeated { seq: 3, last: 3 })
        );
        assert_eq!(
            g.check(N, BootId(7), 2, T + 50, T + 200),
            Err(Replay::Repeated { seq: 2, last: 3 })
        );
        assert_eq!(g.check(N, BootId(7), 4, T + 300, T + 300), Ok(()));
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let mut g = guard();
        assert_eq!(
            g.check(N, BootId(7), 1, T - 10_001, T),
            Err(Replay::TooOld(10_001))
        );
        assert_eq!(
            g.check(N, BootId(7), 1, T + 10_001, T),
            Err(Replay::FromFuture(10_001))
        );
        assert_eq!(g.check(N, BootId(7), 1, T - 10_000, T), Ok(()));
        assert!(g.check(N, BootId(7), 2, u64::MAX, T).is_err());
        assert!(g.check(N, BootId(7), 2, 0, T).is_err());
    }

    #[test]
    fn a_new_boot_replaces_the_old_one_and_the_old_one_is_refused() {
        let mut g = guard();
        g.check(N, BootId(7), 100, T, T).unwrap();
        // Restart: new boot id, sequence from 0, later timestamp.
        assert_eq!(g.check(N, BootId(8), 0, T + 2_000, T + 2_000), Ok(()));
        // A message captured from the earlier boot, replayed inside the window.
        assert_eq!(
            g.check(N, BootId(7), 101, T + 500, T + 2_100),
            Err(Replay::OldBoot)
        );
        assert_eq!(g.check(N, BootId(8), 1, T + 2_100, T + 2_100), Ok(()));
        // `floatip release` on the same host (its own boot id), then the daemon again.
        assert_eq!(g.check(N, BootId(9), 0, T + 2_200, T + 2_200), Ok(()));
        assert_eq!(g.check(N, BootId(8), 2, T + 2_300, T + 2_300), Ok(()));
        assert_eq!(
            g.check(N, BootId(9), 0, T + 2_200, T + 2_400),
            Err(Replay::OldBoot)
        );
    }

    #[test]
    fn a_fresh_receiver_accepts_only_recent_messages() {
        let mut g = guard();
        assert!(g.check(N, BootId(7), 5, T - 60_000, T).is_err());
        assert_eq!(g.check(N, BootId(7), 5, T - 5_000, T), Ok(()));
        assert!(g.check(N, BootId(7), 5, T - 5_000, T).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let mut g = guard();
        for i in 0..5_000u32 {
            let node = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.check(node, BootId(1), 1, T + u64::from(i), T + u64::from(i))
                .unwrap();
        }
        assert!(g.len() <= MAX_PEERS, "{}", g.len());
    }
}
