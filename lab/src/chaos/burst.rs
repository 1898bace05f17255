//! The keyless stranger's burst: a lab node that runs no floatip listens to
//! the group for a few intervals, then floods every member with datagrams
//! carrying another member's address as their source — a third each of
//! random garbage, announces it forged from what it heard, and verbatim
//! replays of what that member sent.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::floatip::ECHO_PORT;
use crate::{noise, Captured, Flood, Lab, Stranger};

/// Datagrams per second from each member's forged address to each other
/// member: with three members, each receives twice this.
pub const PER_SECOND: u32 = 1500;

/// Wire format version 1 (`src/wire.rs`): the authenticated form's length,
/// and where the fields a forger rewrites live. The integration test
/// `chaos::forged_announces_pass_every_check_but_the_tag` keeps these
/// honest against the real decoder.
const AUTH_LEN: usize = 104;
const KIND: usize = 5;
const ANNOUNCE: u8 = 3;
const ROLE: usize = 8;
const MASTER: u8 = 1;
const PRIORITY: usize = 9;
const NODE: std::ops::Range<usize> = 16..20;
const SEQ: std::ops::Range<usize> = 40..48;
const CLOCK: std::ops::Range<usize> = 48..56;

/// A captured authenticated announce rewritten as a stranger without the
/// key would forge one: from `member`, master at priority 254, a fresh
/// sequence number and clock. Only the tag is then wrong. `None` if
/// `template` is not an authenticated announce.
pub fn forge(template: &[u8], member: Ipv4Addr, seq: u64, now_ms: u64) -> Option<Vec<u8>> {
    if !is_announce(template) {
        return None;
    }
    let mut b = template.to_vec();
    b[ROLE] = MASTER;
    b[PRIORITY] = 254;
    b[NODE].copy_from_slice(&member.octets());
    b[SEQ].copy_from_slice(&seq.to_be_bytes());
    b[CLOCK].copy_from_slice(&now_ms.to_be_bytes());
    Some(b)
}

fn is_announce(b: &[u8]) -> bool {
    b.len() == AUTH_LEN && b[KIND] == ANNOUNCE
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Listens for `listen`, then floods for `length` (see the module docs);
/// returns how many datagrams went out, and how many it had captured.
pub fn run(
    lab: &Lab,
    stranger: &str,
    members: &[String],
    listen: Duration,
    length: Duration,
) -> (u64, usize) {
    let evil = Stranger::new(lab, stranger);
    let heard: Vec<Captured> = {
        let capture = evil.capture(ECHO_PORT, listen + Duration::from_secs(1), 10_000);
        std::thread::sleep(listen);
        capture.stop()
    };
    let template = heard
        .iter()
        .find(|c| is_announce(&c.bytes))
        .map(|c| c.bytes.clone());
    let mut floods = Vec::new();
    for from in members {
        let from_ip = lab.ip(from);
        let replays: Vec<Vec<u8>> = heard
            .iter()
            .filter(|c| *c.from.ip() == from_ip)
            .map(|c| c.bytes.clone())
            .collect();
        for to in members.iter().filter(|m| *m != from) {
            let (replays, template) = (replays.clone(), template.clone());
            let f = Flood {
                from: from_ip,
                to: lab.ip(to),
                port: ECHO_PORT,
                per_second: PER_SECOND,
                duration: length,
                max: u64::from(PER_SECOND) * (length.as_secs() + 1),
            };
            floods.push(evil.flood(f, move |i| {
                let forged = || forge(template.as_deref()?, from_ip, i, now_ms());
                let replayed = || replays.get(i as usize / 3 % replays.len().max(1)).cloned();
                match i % 3 {
                    1 => forged(),
                    2 => replayed(),
                    _ => None,
                }
                .unwrap_or_else(|| noise(i))
            }));
        }
    }
    let sent = floods.into_iter().map(|f| f.join().unwrap_or(0)).sum();
    (sent, heard.len())
}
