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
//!
//! The authenticated form (flag bit 1 set, 104 bytes; used when `floating_ip.auth` is
//! configured) appends:
//!
//! | bytes   | field                                                      |
//! |---------|------------------------------------------------------------|
//! | 48..56  | sender's wall clock, ms since the Unix epoch               |
//! | 56..64  | echo only: boot id of the heartbeat answered, else 0       |
//! | 64..72  | echo only: sequence number of the heartbeat answered, else 0 |
//! | 72..104 | HMAC-SHA256 over bytes 0..72 with the group's key          |
//!
//! A node with a key accepts only the authenticated form, a node without one only the
//! plain form; [`decode`] checks structure, [`authenticate`] that policy and the tag.

use std::net::Ipv4Addr;

use crate::auth::{Auth, KeyUsed, TAG_LEN};
use crate::vocabulary::{BootId, Priority, Role};

pub const MAGIC: [u8; 4] = *b"FLIP";
pub const VERSION: u8 = 1;
/// Bytes needed to learn a message's version and length.
pub const HEADER_LEN: usize = 8;
pub const MESSAGE_LEN: usize = 48;
/// Length of the authenticated form: the plain message, the stamp and the tag.
pub const AUTH_MESSAGE_LEN: usize = MESSAGE_LEN + STAMP_LEN + TAG_LEN;
const STAMP_LEN: usize = 24;
/// Bytes covered by the tag.
const SIGNED_LEN: usize = MESSAGE_LEN + STAMP_LEN;
/// Nothing longer is ever read, whatever a header claims.
pub const MAX_MESSAGE_LEN: usize = 256;

const FLAG_PREEMPT: u8 = 1;
const FLAG_AUTH: u8 = 2;

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
    pub boot: BootId,
    pub seq: u64,
}

/// The heartbeat a message answers (echoes only): the requester's boot id and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    pub boot: BootId,
    pub seq: u64,
}

/// The authenticated form's extra fields (the tag aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Sender's wall clock, ms since the Unix epoch.
    pub time_ms: u64,
    pub reply_to: Option<Challenge>,
}

/// A structurally valid message; `stamp` is `Some` for the authenticated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub message: Message,
    pub stamp: Option<Stamp>,
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
    #[error("flags say {} form but the length is {declared}", if *authenticated { "authenticated" } else { "plain" })]
    FormMismatch {
        authenticated: bool,
        declared: usize,
    },
    #[error("unauthenticated message, but this node requires floating_ip.auth; configure the same key on every node")]
    Unauthenticated,
    #[error("authenticated message, but this node has no floating_ip.auth key; configure the group's key here too")]
    UnexpectedAuth,
    #[error("authentication failed: wrong key or altered message")]
    BadTag,
}

impl WireError {
    /// A failure of authentication rather than of form (for the `auth_failures` counter).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            WireError::Unauthenticated | WireError::UnexpectedAuth | WireError::BadTag
        )
    }
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
    b[32..40].copy_from_slice(&m.boot.0.to_be_bytes());
    b[40..48].copy_from_slice(&m.seq.to_be_bytes());
    b
}

/// The authenticated form of `m`, signed with `auth`'s current key.
pub fn encode_authenticated(m: &Message, stamp: &Stamp, auth: &Auth) -> [u8; AUTH_MESSAGE_LEN] {
    let mut b = [0u8; AUTH_MESSAGE_LEN];
    b[..MESSAGE_LEN].copy_from_slice(&encode(m));
    b[6..8].copy_from_slice(&(AUTH_MESSAGE_LEN as u16).to_be_bytes());
    b[10] |= FLAG_AUTH;
    let reply = stamp.reply_to.unwrap_or(Challenge {
        boot: BootId(0),
        seq: 0,
    });
    b[48..56].copy_from_slice(&stamp.time_ms.to_be_bytes());
    b[56..64].copy_from_slice(&reply.boot.0.to_be_bytes());
    b[64..72].copy_from_slice(&reply.seq.to_be_bytes());
    let tag = auth.tag(&b[..SIGNED_LEN]);
    b[SIGNED_LEN..].copy_from_slice(&tag);
    b
}

/// `m` in the form this node speaks: authenticated when it has a key.
pub fn seal(m: &Message, stamp: &Stamp, auth: Option<&Auth>) -> Vec<u8> {
    match auth {
        Some(a) => encode_authenticated(m, stamp, a).to_vec(),
        None => encode(m).to_vec(),
    }
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
    if declared != MESSAGE_LEN && declared != AUTH_MESSAGE_LEN {
        return Err(WireError::Length {
            declared,
            actual: header.len().max(declared),
        });
    }
    Ok(declared)
}

/// Checks a message's structure (either form) and decodes it; no authentication.
pub fn decode(b: &[u8]) -> Result<Decoded, WireError> {
    let declared = frame_len(b)?;
    if b.len() != declared {
        return Err(WireError::Length {
            declared,
            actual: b.len(),
        });
    }
    let authenticated = b[10] & FLAG_AUTH != 0;
    if authenticated != (declared == AUTH_MESSAGE_LEN) {
        return Err(WireError::FormMismatch {
            authenticated,
            declared,
        });
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
    let stamp = authenticated.then(|| {
        let (boot, seq) = (BootId(u64_at(56)), u64_at(64));
        Stamp {
            time_ms: u64_at(48),
            reply_to: (boot.0 != 0 || seq != 0).then_some(Challenge { boot, seq }),
        }
    });
    let message = Message {
        kind,
        role,
        priority: Priority(b[9]),
        preempt_request: b[10] & FLAG_PREEMPT != 0,
        vip: ip(12),
        node: ip(16),
        mac,
        successor: (!successor.is_unspecified()).then_some(successor),
        boot: BootId(u64_at(32)),
        seq: u64_at(40),
    };
    Ok(Decoded { message, stamp })
}

/// Applies this node's policy to a decoded message `b`: with a key, only the authenticated
/// form with a tag that verifies; without one, only the plain form.
pub fn authenticate(
    b: &[u8],
    d: &Decoded,
    auth: Option<&Auth>,
) -> Result<Option<KeyUsed>, WireError> {
    match (auth, d.stamp) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(WireError::UnexpectedAuth),
        (Some(_), None) => Err(WireError::Unauthenticated),
        (Some(a), Some(_)) => a
            .verify(&b[..SIGNED_LEN], &b[SIGNED_LEN..AUTH_MESSAGE_LEN])
            .map(Some)
            .ok_or(WireError::BadTag),
    }
}

/// [`decode`] then [`authenticate`].
pub fn open(b: &[u8], auth: Option<&Auth>) -> Result<Decoded, WireError> {
    let d = decode(b)?;
    authenticate(b, &d, auth)?;
    Ok(d)
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
            boot: BootId(0x0102_0304_0506_0708),
            seq: 42,
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(
            decode(&encode(&m)).unwrap(),
            Decoded {
                message: m,
                stamp: None
            }
        );
        let plain = Message {
            successor: None,
            preempt_request: false,
            kind: Kind::Echo,
            role: Role::Fault,
            ..m
        };
        assert_eq!(decode(&encode(&plain)).unwrap().message, plain);
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
        assert_eq!(
            decode(&good[..10]),
            Err(WireError::Length {
                declared: 48,
                actual: 10
            })
        );
        assert_eq!(decode(&good[..3]), Err(WireError::TooShort(3)));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(
            decode(&long),
            Err(WireError::Length {
                declared: 48,
                actual: 49
            })
        );
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
        assert!(matches!(
            with(7, 200),
            Err(WireError::Length { declared: 200, .. })
        ));
    }

    #[test]
    fn frame_len_bounds_stream_reads() {
        let good = encode(&sample());
        assert_eq!(frame_len(&good[..HEADER_LEN]), Ok(MESSAGE_LEN));
        let mut huge = good;
        huge[6] = 0xff;
        assert!(frame_len(&huge[..HEADER_LEN]).is_err());
    }

    fn auth(c: u8) -> Auth {
        Auth::new(crate::auth::Key::new(vec![c; 32]).unwrap())
    }

    fn stamp() -> Stamp {
        Stamp {
            time_ms: 1_700_000_000_123,
            reply_to: Some(Challenge {
                boot: BootId(9),
                seq: 77,
            }),
        }
    }

    #[test]
    fn authenticated_round_trip_and_layout() {
        let (m, a) = (sample(), auth(7));
        let b = encode_authenticated(&m, &stamp(), &a);
        assert_eq!(b.len(), 104);
        assert_eq!(&b[6..8], &[0, 104]);
        assert_eq!(b[10], FLAG_PREEMPT | FLAG_AUTH);
        assert_eq!(&b[..6], &encode(&m)[..6]);
        assert_eq!(&b[11..MESSAGE_LEN], &encode(&m)[11..]);
        assert_eq!(frame_len(&b[..HEADER_LEN]), Ok(AUTH_MESSAGE_LEN));
        let d = open(&b, Some(&a)).unwrap();
        assert_eq!(
            d,
            Decoded {
                message: m,
                stamp: Some(stamp())
            }
        );
        assert_eq!(authenticate(&b, &d, Some(&a)), Ok(Some(KeyUsed::Current)));
        let none = Stamp {
            time_ms: 5,
            reply_to: None,
        };
        assert_eq!(
            open(&encode_authenticated(&m, &none, &a), Some(&a))
                .unwrap()
                .stamp,
            Some(none)
        );
        assert_eq!(seal(&m, &none, None), encode(&m).to_vec());
        assert_eq!(
            seal(&m, &none, Some(&a)),
            encode_authenticated(&m, &none, &a).to_vec()
        );
    }

    #[test]
    fn policy_keyed_and_plain_nodes_refuse_each_other() {
        let (m, a) = (sample(), auth(7));
        let signed = encode_authenticated(&m, &stamp(), &a);
        assert_eq!(open(&encode(&m), Some(&a)), Err(WireError::Unauthenticated));
        assert_eq!(open(&signed, None), Err(WireError::UnexpectedAuth));
        assert_eq!(open(&signed, Some(&auth(8))), Err(WireError::BadTag));
        let rotating = Auth {
            previous_key: Some(auth(7).key),
            ..auth(8)
        };
        let d = decode(&signed).unwrap();
        assert_eq!(
            authenticate(&signed, &d, Some(&rotating)),
            Ok(Some(KeyUsed::Previous))
        );
        for e in [
            WireError::Unauthenticated,
            WireError::UnexpectedAuth,
            WireError::BadTag,
        ] {
            assert!(e.is_auth_failure());
        }
        assert!(!WireError::BadMagic.is_auth_failure());
    }

    #[test]
    fn any_altered_byte_of_an_authenticated_message_is_refused() {
        let a = auth(7);
        let good = encode_authenticated(&sample(), &stamp(), &a);
        for i in 0..AUTH_MESSAGE_LEN {
            for bit in 0..8 {
                let mut b = good;
                b[i] ^= 1 << bit;
                assert!(
                    open(&b, Some(&a)).is_err(),
                    "byte {i} bit {bit} flipped was accepted"
                );
            }
        }
    }

    #[test]
    fn form_and_length_must_agree() {
        let a = auth(7);
        let mut plain_claiming_auth = encode(&sample());
        plain_claiming_auth[10] |= FLAG_AUTH;
        assert_eq!(
            decode(&plain_claiming_auth),
            Err(WireError::FormMismatch {
                authenticated: true,
                declared: 48
            })
        );
        let mut auth_claiming_plain = encode_authenticated(&sample(), &stamp(), &a);
        auth_claiming_plain[10] &= !FLAG_AUTH;
        assert_eq!(
            decode(&auth_claiming_plain),
            Err(WireError::FormMismatch {
                authenticated: false,
                declared: 104
            })
        );
        let signed = encode_authenticated(&sample(), &stamp(), &a);
        assert_eq!(
            decode(&signed[..103]),
            Err(WireError::Length {
                declared: 104,
                actual: 103
            })
        );
        let mut future = signed;
        future[4] = 2;
        assert_eq!(decode(&future), Err(WireError::UnsupportedVersion(2)));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn opener_never_panics_with_or_without_a_key(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let a = auth(7);
            let _ = open(&bytes, Some(&a));
            let _ = open(&bytes, None);
        }

        #[test]
        fn garbage_with_a_valid_header_is_never_accepted_by_a_keyed_node(tail in proptest::collection::vec(any::<u8>(), 96)) {
            let a = auth(7);
            let mut b = encode_authenticated(&sample(), &stamp(), &a).to_vec();
            b[HEADER_LEN..].copy_from_slice(&tail);
            b[10] |= FLAG_AUTH;
            prop_assert!(open(&b, Some(&a)).is_err());
        }

        #[test]
        fn mutated_authenticated_messages_are_refused(i in 0usize..AUTH_MESSAGE_LEN, v in 1u8..=255) {
            let a = auth(7);
            let mut b = encode_authenticated(&sample(), &stamp(), &a);
            b[i] ^= v;
            prop_assert!(open(&b, Some(&a)).is_err());
        }

        #[test]
        fn any_authenticated_message_round_trips(prio in 1u8..=254, boot in any::<u64>(), seq in any::<u64>(), time_ms in any::<u64>(), rb in 1u64.., rs in any::<u64>(), echo in any::<bool>()) {
            let a = auth(3);
            let m = Message { priority: Priority(prio), boot: BootId(boot), seq, ..sample() };
            let st = Stamp { time_ms, reply_to: echo.then_some(Challenge { boot: BootId(rb), seq: rs }) };
            let d = open(&encode_authenticated(&m, &st, &a), Some(&a)).unwrap();
            prop_assert_eq!(d, Decoded { message: m, stamp: Some(st) });
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_messages_decode_or_error(i in 0usize..MESSAGE_LEN, v in any::<u8>()) {
            let mut b = encode(&sample());
            b[i] = v;
            // Reserved bytes and unknown flag bits are ignored; everything else must survive.
            if let Ok(d) = decode(&b) {
                if ![10, 11, 26, 27].contains(&i) {
                    prop_assert_eq!(encode(&d.message), b);
                }
            }
        }

        #[test]
        fn any_valid_message_round_trips(prio in 1u8..=254, boot in any::<u64>(), seq in any::<u64>(), node in any::<u32>(), pre in any::<bool>()) {
            let m = Message { priority: Priority(prio), boot: BootId(boot), seq, node: Ipv4Addr::from(node), preempt_request: pre, ..sample() };
            prop_assert_eq!(decode(&encode(&m)).unwrap(), Decoded { message: m, stamp: None });
        }
    }
}
