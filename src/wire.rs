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
//! | 11     | address family: 0 IPv4 (this layout), 6 IPv6 (below)   |
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
//! The IPv6 family (byte 11 = 6; a group whose heartbeat runs over IPv6) keeps every
//! field above in place, with bytes 12..20 and 28..32 zero, and carries the addresses
//! after them as 16 bytes each (an IPv4 address among them IPv4-mapped, `::ffff:a.b.c.d`):
//!
//! | bytes  | field                                                 |
//! |--------|-------------------------------------------------------|
//! | 48..64 | the floating IP (the group)                           |
//! | 64..80 | sender's own address                                  |
//! | 80..96 | successor (resign only; :: = none)                    |
//!
//! so the plain form is 96 bytes, and the authenticated one (152 bytes) appends the same
//! stamp and tag at 96..120 and 120..152, the tag over bytes 0..120. The IPv4 form is
//! byte for byte the first version's (byte 11 was reserved, 0), so the version stays 1;
//! a node of that version refuses the IPv6 form by its length.
//!
//! A node with a key accepts only the authenticated form, a node without one only the
//! plain form; [`decode`] checks structure, [`authenticate`] that policy and the tag.

use std::net::{IpAddr, Ipv6Addr};

use crate::auth::{Auth, KeyUsed, TAG_LEN};
use crate::vocabulary::{BootId, Priority, Role};

pub const MAGIC: [u8; 4] = *b"FLIP";
pub const VERSION: u8 = 1;
/// Bytes needed to learn a message's version and length.
pub const HEADER_LEN: usize = 8;
pub const MESSAGE_LEN: usize = 48;
/// Length of the authenticated form: the plain message, the stamp and the tag.
pub const AUTH_MESSAGE_LEN: usize = MESSAGE_LEN + STAMP_LEN + TAG_LEN;
/// Length of the IPv6 family's plain form: the three addresses appended, 16 bytes each.
pub const MESSAGE6_LEN: usize = MESSAGE_LEN + 3 * 16;
/// Length of the IPv6 family's authenticated form.
pub const AUTH_MESSAGE6_LEN: usize = MESSAGE6_LEN + STAMP_LEN + TAG_LEN;
const STAMP_LEN: usize = 24;
/// Nothing longer is ever read, whatever a header claims.
pub const MAX_MESSAGE_LEN: usize = 256;

const FLAG_PREEMPT: u8 = 1;
const FLAG_AUTH: u8 = 2;

/// Byte 11: which address family, and so which layout, the message uses.
const FAMILY_IPV4: u8 = 0;
const FAMILY_IPV6: u8 = 6;

/// The plain length of a family's form; the authenticated one adds the stamp and tag.
fn plain_len(family: u8) -> Option<usize> {
    match family {
        FAMILY_IPV4 => Some(MESSAGE_LEN),
        FAMILY_IPV6 => Some(MESSAGE6_LEN),
        _ => None,
    }
}

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
    pub vip: IpAddr,
    pub node: IpAddr,
    pub mac: [u8; 6],
    pub successor: Option<IpAddr>,
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
    #[error("address family {family} does not fit a {declared}-byte message")]
    BadFamily { family: u8, declared: usize },
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

impl Message {
    /// IPv6 when any address is, so that every address fits the layout.
    fn family(&self) -> u8 {
        let v6 = [Some(self.vip), Some(self.node), self.successor]
            .into_iter()
            .flatten()
            .any(|a| a.is_ipv6());
        if v6 {
            FAMILY_IPV6
        } else {
            FAMILY_IPV4
        }
    }
}

/// An address in 16 bytes; an IPv4 one IPv4-mapped.
fn octets16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The plain form: 48 bytes for an IPv4 group, 96 for an IPv6 one.
pub fn encode(m: &Message) -> Vec<u8> {
    let family = m.family();
    let len = if family == FAMILY_IPV4 {
        MESSAGE_LEN
    } else {
        MESSAGE6_LEN
    };
    let mut b = vec![0u8; len];
    b[0..4].copy_from_slice(&MAGIC);
    b[4] = VERSION;
    b[5] = m.kind as u8;
    b[6..8].copy_from_slice(&(len as u16).to_be_bytes());
    b[8] = role_code(m.role);
    b[9] = m.priority.0;
    b[10] = if m.preempt_request { FLAG_PREEMPT } else { 0 };
    b[11] = family;
    b[20..26].copy_from_slice(&m.mac);
    b[32..40].copy_from_slice(&m.boot.0.to_be_bytes());
    b[40..48].copy_from_slice(&m.seq.to_be_bytes());
    // No successor stays all zeros in either layout (0.0.0.0, ::).
    let addrs = [Some(m.vip), Some(m.node), m.successor];
    for (i, a) in addrs.into_iter().enumerate() {
        match a {
            Some(IpAddr::V4(v4)) if family == FAMILY_IPV4 => {
                let at = [12, 16, 28][i];
                b[at..at + 4].copy_from_slice(&v4.octets());
            }
            Some(a) => {
                let at = MESSAGE_LEN + 16 * i;
                b[at..at + 16].copy_from_slice(&octets16(a));
            }
            None => {}
        }
    }
    b
}

/// The authenticated form of `m`, signed with `auth`'s current key.
pub fn encode_authenticated(m: &Message, stamp: &Stamp, auth: &Auth) -> Vec<u8> {
    let mut b = encode(m);
    let plain = b.len();
    let len = plain + STAMP_LEN + TAG_LEN;
    b[6..8].copy_from_slice(&(len as u16).to_be_bytes());
    b[10] |= FLAG_AUTH;
    let reply = stamp.reply_to.unwrap_or(Challenge {
        boot: BootId(0),
        seq: 0,
    });
    b.extend_from_slice(&stamp.time_ms.to_be_bytes());
    b.extend_from_slice(&reply.boot.0.to_be_bytes());
    b.extend_from_slice(&reply.seq.to_be_bytes());
    let tag = auth.tag(&b);
    b.extend_from_slice(&tag);
    b
}

/// `m` in the form this node speaks: authenticated when it has a key.
pub fn seal(m: &Message, stamp: &Stamp, auth: Option<&Auth>) -> Vec<u8> {
    match auth {
        Some(a) => encode_authenticated(m, stamp, a),
        None => encode(m),
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
    if ![
        MESSAGE_LEN,
        AUTH_MESSAGE_LEN,
        MESSAGE6_LEN,
        AUTH_MESSAGE6_LEN,
    ]
    .contains(&declared)
    {
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
    let family = b[11];
    let plain = plain_len(family)
        .filter(|p| declared == *p || declared == p + STAMP_LEN + TAG_LEN)
        .ok_or(WireError::BadFamily { family, declared })?;
    let authenticated = b[10] & FLAG_AUTH != 0;
    if authenticated != (declared > plain) {
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
    // The i-th address: in place for IPv4, appended for IPv6 (an IPv4-mapped one as IPv4).
    let ip = |i: usize| -> IpAddr {
        if family == FAMILY_IPV4 {
            let at = [12, 16, 28][i];
            IpAddr::from([b[at], b[at + 1], b[at + 2], b[at + 3]])
        } else {
            let mut v = [0u8; 16];
            v.copy_from_slice(&b[MESSAGE_LEN + 16 * i..MESSAGE_LEN + 16 * (i + 1)]);
            Ipv6Addr::from(v).to_canonical()
        }
    };
    let u64_at = |at: usize| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(v)
    };
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&b[20..26]);
    let successor = ip(2);
    let stamp = authenticated.then(|| {
        let (boot, seq) = (BootId(u64_at(plain + 8)), u64_at(plain + 16));
        Stamp {
            time_ms: u64_at(plain),
            reply_to: (boot.0 != 0 || seq != 0).then_some(Challenge { boot, seq }),
        }
    });
    let message = Message {
        kind,
        role,
        priority: Priority(b[9]),
        preempt_request: b[10] & FLAG_PREEMPT != 0,
        vip: ip(0),
        node: ip(1),
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
    let (signed, tag) = b.split_at(b.len().saturating_sub(TAG_LEN));
    match (auth, d.stamp) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(WireError::UnexpectedAuth),
        (Some(_), None) => Err(WireError::Unauthenticated),
        (Some(a), Some(_)) => a.verify(signed, tag).map(Some).ok_or(WireError::BadTag),
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
    use std::net::Ipv4Addr;

    fn sample() -> Message {
        Message {
            kind: Kind::Resign,
            role: Role::Master,
            priority: Priority(150),
            preempt_request: true,
            vip: IpAddr::from([192, 0, 2, 234]),
            node: IpAddr::from([192, 0, 2, 11]),
            mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
            successor: Some(IpAddr::from([192, 0, 2, 12])),
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

    /// The first version's bytes, exactly: an IPv4 group is unchanged on the wire.
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
            let mut b = good.clone();
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
        let mut huge = good.clone();
        huge[6] = 0xff;
        assert!(frame_len(&huge[..HEADER_LEN]).is_err());
    }

    fn sample6() -> Message {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        Message {
            vip: ip("2001:db8::234"),
            node: ip("2001:db8::11"),
            successor: Some(ip("2001:db8::12")),
            ..sample()
        }
    }

    #[test]
    fn ipv6_family_keeps_the_fixed_fields_in_place_and_appends_the_addresses() {
        let (m, a) = (sample6(), auth(7));
        let b = encode(&m);
        assert_eq!(b.len(), MESSAGE6_LEN);
        assert_eq!((b[4], b[11]), (VERSION, FAMILY_IPV6));
        assert_eq!(&b[6..8], &[0, 96]);
        let v4 = encode(&sample());
        for same in [0..4, 5..6, 8..11, 20..26, 32..48] {
            assert_eq!(&b[same.clone()], &v4[same]);
        }
        assert!(b[12..20].iter().chain(&b[28..32]).all(|x| *x == 0));
        assert_eq!(
            &b[48..64],
            &"2001:db8::234".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(
            &b[64..80],
            &"2001:db8::11".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(
            &b[80..96],
            &"2001:db8::12".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(decode(&b).unwrap().message, m);
        let none = Message {
            successor: None,
            ..m
        };
        assert!(encode(&none)[80..96].iter().all(|x| *x == 0));
        assert_eq!(decode(&encode(&none)).unwrap().message, none);

        let signed = encode_authenticated(&m, &stamp(), &a);
        assert_eq!(signed.len(), AUTH_MESSAGE6_LEN);
        assert_eq!(frame_len(&signed[..HEADER_LEN]), Ok(AUTH_MESSAGE6_LEN));
        assert_eq!(
            &signed[..11],
            &{
                let mut h = b[..11].to_vec();
                h[7] = AUTH_MESSAGE6_LEN as u8;
                h[10] |= FLAG_AUTH;
                h
            }[..]
        );
        assert_eq!(
            open(&signed, Some(&a)).unwrap(),
            Decoded {
                message: m,
                stamp: Some(stamp())
            }
        );
        for i in 0..signed.len() {
            let mut bad = signed.clone();
            bad[i] ^= 0x10;
            assert!(
                open(&bad, Some(&a)).is_err(),
                "byte {i} flipped was accepted"
            );
        }
    }

    #[test]
    fn family_and_length_must_agree() {
        for (m, family, declared) in [
            (sample(), FAMILY_IPV6, 48),
            (sample6(), FAMILY_IPV4, 96),
            (sample6(), 4, 96),
        ] {
            let mut b = encode(&m);
            b[11] = family;
            assert_eq!(decode(&b), Err(WireError::BadFamily { family, declared }));
        }
    }

    #[test]
    fn a_mixed_message_travels_in_the_ipv6_form() {
        let m = Message {
            successor: Some("2001:db8::12".parse().unwrap()),
            ..sample()
        };
        let b = encode(&m);
        assert_eq!((b.len(), b[11]), (MESSAGE6_LEN, FAMILY_IPV6));
        assert_eq!(
            &b[48..64],
            &Ipv4Addr::new(192, 0, 2, 234).to_ipv6_mapped().octets()
        );
        assert_eq!(decode(&b).unwrap().message, m);
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
        assert_eq!(seal(&m, &none, None), encode(&m));
        assert_eq!(
            seal(&m, &none, Some(&a)),
            encode_authenticated(&m, &none, &a)
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
                let mut b = good.clone();
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
        let mut future = signed.clone();
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
            let mut b = encode_authenticated(&sample(), &stamp(), &a);
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
                if ![10, 26, 27].contains(&i) {
                    prop_assert_eq!(encode(&d.message), b);
                }
            }
        }

        #[test]
        fn any_ipv6_message_round_trips(prio in 1u8..=254, seq in any::<u64>(), node in any::<u128>(), successor in proptest::option::of(any::<u128>())) {
            let v6 = |a: u128| IpAddr::V6(Ipv6Addr::from(a)).to_canonical();
            let m = Message { priority: Priority(prio), seq, node: v6(node), successor: successor.map(v6).filter(|s| !s.is_unspecified()), ..sample6() };
            prop_assert_eq!(decode(&encode(&m)).unwrap(), Decoded { message: m, stamp: None });
        }

        #[test]
        fn any_valid_message_round_trips(prio in 1u8..=254, boot in any::<u64>(), seq in any::<u64>(), node in any::<u32>(), pre in any::<bool>()) {
            let m = Message { priority: Priority(prio), boot: BootId(boot), seq, node: IpAddr::from(node.to_be_bytes()), preempt_request: pre, ..sample() };
            prop_assert_eq!(decode(&encode(&m)).unwrap(), Decoded { message: m, stamp: None });
        }
    }
}
