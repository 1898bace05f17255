use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{is_link_local6, network6, same_prefix, Netmask};

/// Where IPv6 announces go: a transient (T flag set, RFC 4291 §2.7) link-local-scope
/// group. Transient groups need no IANA assignment and mean something only on their
/// link, so this one can clash with no registered service (the `ff02::` ones are IANA's)
/// and no router forwards it off the segment.
pub const ANNOUNCE_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0xf10a, 0x7);

/// The LAN segment a group's heartbeat runs on: who may speak to us, where announces go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// The node's IPv4 subnet; announces are broadcast to it.
    V4 { node: Ipv4Addr, netmask: Netmask },
    /// An IPv6 link: link-local senders or ones on the interface's own prefixes;
    /// announces go to [`ANNOUNCE_GROUP6`].
    V6 { prefixes: Vec<(Ipv6Addr, u8)> },
}

impl Segment {
    /// Whether `ip` is a host of this segment.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Segment::V4 { node, netmask }, IpAddr::V4(ip)) => netmask.same_subnet(ip, *node),
            (Segment::V6 { prefixes }, IpAddr::V6(ip)) => {
                is_link_local6(ip) || prefixes.iter().any(|(a, p)| same_prefix(ip, *a, *p))
            }
            _ => false,
        }
    }

    /// The destination of announces: the subnet's broadcast address or the IPv6 group.
    pub fn announce_to(&self) -> IpAddr {
        match self {
            Segment::V4 { node, netmask } => IpAddr::V4(netmask.broadcast(*node)),
            Segment::V6 { .. } => IpAddr::V6(ANNOUNCE_GROUP6),
        }
    }
}

/// `192.0.2.0/24`, `fe80::/10, 2001:db8::/64`: for the log line of a refused sender.
impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::V4 { node, netmask } => {
                write!(f, "{}/{}", netmask.network(*node), netmask.prefix_len())
            }
            Segment::V6 { prefixes } => {
                write!(f, "fe80::/10")?;
                prefixes
                    .iter()
                    .try_for_each(|(a, p)| write!(f, ", {}/{p}", network6(*a, *p)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_is_on_the_segment() {
        let v4 = Segment::V4 {
            node: Ipv4Addr::new(192, 0, 2, 11),
            netmask: Netmask::default(),
        };
        assert!(v4.contains("192.0.2.12".parse().unwrap()));
        assert!(!v4.contains("198.51.100.7".parse().unwrap()));
        assert!(!v4.contains("fe80::1".parse().unwrap()));
        assert_eq!(v4.announce_to(), "192.0.2.255".parse::<IpAddr>().unwrap());
        assert_eq!(v4.to_string(), "192.0.2.0/24");

        let v6 = Segment::V6 {
            prefixes: vec![("2001:db8::11".parse().unwrap(), 64)],
        };
        assert!(v6.contains("2001:db8::12".parse().unwrap()));
        assert!(v6.contains("fe80::2".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1::12".parse().unwrap()));
        assert!(!v6.contains("192.0.2.12".parse().unwrap()));
        assert!(v6.announce_to().is_multicast());
        assert_eq!(v6.announce_to().to_string(), "ff12::f10a:7");
        assert_eq!(v6.to_string(), "fe80::/10, 2001:db8::/64");
    }
}
