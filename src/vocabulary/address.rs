use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Netmask;

/// One floating address of the group: IPv4 with the group's netmask, or IPv6 with its
/// prefix length. A group holds one or more, always together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floating {
    V4(Ipv4Addr, Netmask),
    V6(Ipv6Addr, u8),
}

impl Floating {
    pub fn ip(&self) -> IpAddr {
        match self {
            Floating::V4(ip, _) => IpAddr::V4(*ip),
            Floating::V6(ip, _) => IpAddr::V6(*ip),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match self {
            Floating::V4(_, mask) => mask.prefix_len(),
            Floating::V6(_, prefix) => *prefix,
        }
    }
}

/// `192.0.2.234/24`, `2001:db8::234/64`.
impl std::fmt::Display for Floating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip(), self.prefix_len())
    }
}

/// fe80::/10, which no floating address may be and which is no LAN prefix.
pub fn is_link_local6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Whether `a` and `b` share their first `prefix` bits.
pub fn same_prefix(a: Ipv6Addr, b: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    u128::from(a) & mask == u128::from(b) & mask
}

/// The first `prefix` bits of `ip`, the rest zero.
pub fn network6(ip: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    Ipv6Addr::from(u128::from(ip) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let a: Ipv6Addr = "2001:db8::234".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::11".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1::11".parse().unwrap();
        assert!(same_prefix(a, b, 64));
        assert!(!same_prefix(a, c, 64));
        assert!(same_prefix(a, c, 32));
        assert!(same_prefix(a, c, 0));
        assert!(is_link_local6("fe80::1".parse().unwrap()));
        assert!(is_link_local6("febf::1".parse().unwrap()));
        assert!(!is_link_local6("fec0::1".parse().unwrap()));
        assert!(!is_link_local6(a));
        assert!(!same_prefix(a, b, 128));
        assert_eq!(network6(a, 64).to_string(), "2001:db8::");
        let v6 = Floating::V6(a, 64);
        assert_eq!(v6.to_string(), "2001:db8::234/64");
        let v4 = Floating::V4(Ipv4Addr::new(192, 0, 2, 234), Netmask::default());
        assert_eq!(v4.to_string(), "192.0.2.234/24");
    }
}
