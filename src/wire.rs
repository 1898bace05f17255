//! The heartbeat message: versioned, fixed-size, encoded and decoded by pure functions.
//!
//! Version 1 layout (48 bytes, big-endian):
//!
//! | bytes  | field                                                 |
//! |--------|-------------------------------------------------------|
//! | 0..4   | magic `FLIP`                                          |
//! | 4      | version (1)                                           |
//! | 5      | kind (see [`Kind`])                                   |
//! | 6..8   | total length of the message                           |
//! | 8      | sender's role: 0 backup, 1 master, 2 fault            |
//! | 9      | sender's priority (1..=254)                           |
//! | 10     | flags: bit 0 = the sender asks to preempt             |
//! | 11     | reserved, 0                                           |
//! | 12..16 | the floating IP (the group)                           |
//! | 16..20 | sender's own address                                  |
//! | 20..26 | sender's MAC address                                  |
//! | 26..28 | reserved, 0                                           |
//! | 28..32 | successor (resign only; 0.0.0.0 = none)               |
//! | 32..40 | sender's boot id (random per daemon start)            |
//! | 40..48 | sequence number                                       |

use std::net::Ipv4Addr;

use crate::config::Priority;
use crate::state::Role;

pub const MAGIC: [u8; 4] = *b"FLIP";
pub const VERSION: u8 = 1;
/// Bytes needed to learn a message's version and length.
pub const HEADER_LEN: usize = 8;
pub const MESSAGE_LEN: usize = 48;
/// Nothing longer is ever read, whatever a header claims.
pub const MAX_MESSAGE_LEN: usize = 256;

const FLAG_PREEMPT: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Backup → holder over TCP: "are you there?"
    Heartbeat = 1,
    /// Holder → backup over TCP: the answer.
    Echo = 2,
    /// Broadcast every interval by every node: who I am and my role.
    Announce = 3,
    /// Broadcast by a master that has just removed the address.
    Resign = 4,
    /// Broadcast by `floatip release` / start-up clean-up: a stale copy was removed.
    Released = 5,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Heartbeat,
            2 => Kind::Echo,
            3 => Kind::Announce,
            4 => Kind::Resign,
            5 => Kind::Released,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub role: Role,
    pub priority: Priority,
    pub preempt_request: bool,
    pub vip: Ipv4Addr,
    pub node: Ipv4Addr,
    pub mac: [u8; 6],
    pub successor: Option<Ipv4Addr>,
    pub boot: u64,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message too short: {0} bytes")]
    TooShort(usize),
    #[error("not a floatip message (bad magic)")]
    BadMagic,
    #[error("unsupported protocol version {0} (this floatip speaks {VERSION})")]
    UnsupportedVersion(u8),
    #[error("length mismatch: header says {declared} bytes, got {actual}")]
    Length { declared: usize, actual: usize },
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("unknown role {0}")]
    UnknownRole(u8),
    #[error("priority {0} outside 1..=254")]
    BadPriority(u8),
}

fn role_code(role: Role) -> u8 {
    match role {
        Role::Backup => 0,
        Role::Master => 1,
        Role::Fault => 2,
    }
}

fn role_from(code: u8) -> Option<Role> {
    Some(match code {
        0 => Role::Backup,
        1 => Role::Master,
        2 => Role::Fault,
        _ => return None,
    })
}

pub fn encode(m: &Message) -> [u8; MESSAGE_LEN] {
    let mut b = [0u8; MESSAGE_LEN];
    b[0..4].copy_from_slice(&MAGIC);
    b[4] = VERSION;
    b[5] = m.kind as u8;
    b[6..8].copy_from_slice(&(MESSAGE_LEN as u16).to_be_bytes());
    b[8] = role_code(m.role);
    b[9] = m.priority.0;
    b[10] = if m.preempt_request { FLAG_PREEMPT } else { 0 };
    b[12..16].copy_from_slice(&m.vip.octets());
    b[16..20].copy_from_slice(&m.node.octets());
    b[20..26].copy_from_slice(&m.mac);
    b[28..32].copy_from_slice(&m.successor.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
    b[32..40].copy_from_slice(&m.boot.to_be_bytes());
    b[40..48].copy_from_slice(&m.seq.to_be_bytes());
    b
}

/// Validates a header and returns the whole message's length, so a stream reader
/// knows how much more to read (never more than [`MAX_MESSAGE_LEN`]).
pub fn frame_len(header: &[u8]) -> Result<usize, WireError> {
    if header.len() < HEADER_LEN {
        return Err(WireError::TooShort(header.len()));
    }
    if header[0..4] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if header[4] != VERSION {
        return Err(WireError::UnsupportedVersion(header[4]));
    }
    let declared = u16::from_be_bytes([header[6], header[7]]) as usize;
    if declared != MESSAGE_LEN {
        return Err(WireError::Length { declared, actual: header.len().max(declared) });
    }
    Ok(declared)
}

pub fn decode(b: &[u8]) -> Result<Message, WireError> {
    let declared = frame_len(b)?;
    if b.len() != declared {
        return Err(WireError::Length { declared, actual: b.len() });
    }
    let kind = Kind::from_u8(b[5]).ok_or(WireError::UnknownKind(b[5]))?;
    let role = role_from(b[8]).ok_or(WireError::UnknownRole(b[8]))?;
    if !(1..=254).contains(&b[9]) {
        return Err(WireError::BadPriority(b[9]));
    }
    let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
    let u64_at = |at: usize| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(v)
    };
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&b[20..26]);
    let successor = ip(28);
    Ok(Message {
        kind,
        role,
        priority: Priority(b[9]),
        preempt_request: b[10] & FLAG_PREEMPT != 0,
        vip: ip(12),
        node: ip(16),
        mac,
        successor: (!successor.is_unspecified()).then_some(successor),
        boot: u64_at(32),
        seq: u64_at(40),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Message {
        Message {
            kind: Kind::Resign,
            role: Role::Master,
            priority: Priority(150),
            preempt_request: true,
            vip: Ipv4Addr::new(192, 0, 2, 234),
            node: Ipv4Addr::new(192, 0, 2, 11),
            mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
            successor: Some(Ipv4Addr::new(192, 0, 2, 12)),
            boot: 0x0102_0304_0506_0708,
            seq: 42,
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(decode(&encode(&m)).unwrap(), m);
        let plain = Message { successor: None, preempt_request: false, kind: Kind::Echo, role: Role::Fault, ..m };
        assert_eq!(decode(&encode(&plain)).unwrap(), plain);
    }

    #[test]
    fn byte_layout_is_stable() {
        let b = encode(&sample());
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            hex,
            "464c4950010400300196010 0c00002eac000020b02aabbccddee0000c000020c01020304050607080000000000 00002a"
                .replace(' ', "")
        );
    }

    #[test]
    fn rejects_bad_input() {
        let good = encode(&sample());
        assert_eq!(decode(&good[..10]), Err(WireError::Length { declared: 48, actual: 10 }));
        assert_eq!(decode(&good[..3]), Err(WireError::TooShort(3)));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(decode(&long), Err(WireError::Length { declared: 48, actual: 49 }));
        let with = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            decode(&b)
        };
        assert_eq!(with(0, b'X'), Err(WireError::BadMagic));
        assert_eq!(with(4, 2), Err(WireError::UnsupportedVersion(2)));
        assert_eq!(with(4, 0), Err(WireError::UnsupportedVersion(0)));
        assert_eq!(with(5, 9), Err(WireError::UnknownKind(9)));
        assert_eq!(with(8, 3), Err(WireError::UnknownRole(3)));
        assert_eq!(with(9, 0), Err(WireError::BadPriority(0)));
        assert_eq!(with(9, 255), Err(WireError::BadPriority(255)));
        assert!(matches!(with(7, 200), Err(WireError::Length { declared: 200, .. })));
    }

    #[test]
    fn frame_len_bounds_stream_reads() {
        let good = encode(&sample());
        assert_eq!(frame_len(&good[..HEADER_LEN]), Ok(MESSAGE_LEN));
        let mut huge = good;
        huge[6] = 0xff;
        assert!(frame_len(&huge[..HEADER_LEN]).is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_messages_decode_or_error(i in 0usize..MESSAGE_LEN, v in any::<u8>()) {
            let mut b = encode(&sample());
            b[i] = v;
            // Reserved bytes and unknown flag bits are ignored; everything else must survive.
            if let Ok(m) = decode(&b) {
                if ![10, 11, 26, 27].contains(&i) {
                    prop_assert_eq!(encode(&m), b);
                }
            }
        }

        #[test]
        fn any_valid_message_round_trips(prio in 1u8..=254, boot in any::<u64>(), seq in any::<u64>(), node in any::<u32>(), pre in any::<bool>()) {
            let m = Message { priority: Priority(prio), boot, seq, node: Ipv4Addr::from(node), preempt_request: pre, ..sample() };
            prop_assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
    }
}
