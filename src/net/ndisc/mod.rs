//! IPv6 neighbour discovery for floating addresses (RFC 4861, RFC 4862): a duplicate
//! address detection probe before a take-over and unsolicited Neighbor Advertisements
//! after one, the IPv6 counterparts of the ARP probe and gratuitous ARP.
//!
//! Frames are built and parsed by pure functions and sent whole through the same raw
//! `AF_PACKET` socket ARP uses: a probe must come from the unspecified address `::`,
//! which a raw ICMPv6 socket cannot send from (the kernel fills in a source address), so
//! the checksum is computed here. macOS, without packet sockets, probes with `ping6` and
//! leaves announcing to the kernel.

use std::net::Ipv6Addr;
use std::time::Duration;

use crate::vocabulary::{Mac, ProbeOutcome};

const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETH_LEN: usize = 14;
const IPV6_LEN: usize = 40;
const ICMPV6: u8 = 58;
/// RFC 4861: neighbour discovery is only valid with hop limit 255 (never routed).
const HOP_LIMIT: u8 = 255;
const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// The override flag: receivers replace the link-layer address they have cached.
const OVERRIDE: u8 = 0x20;
const TARGET_LINK_LAYER_ADDRESS: u8 = 2;
/// ICMPv6 Neighbor Solicitation without options: type, code, checksum, reserved, target.
pub const SOLICITATION_LEN: usize = ETH_LEN + IPV6_LEN + 24;
/// Neighbor Advertisement with the target link-layer address option.
pub const ADVERTISEMENT_LEN: usize = ETH_LEN + IPV6_LEN + 32;
/// ff02::1, every node on the link.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast group of `ip` (ff02::1:ffXX:XXXX), which every holder of
/// `ip` has joined.
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    let low = u16::from_be_bytes([o[14], o[15]]);
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), low)
}

/// The Ethernet address of IPv6 multicast group `group` (33:33 and its last 32 bits).
fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The ICMPv6 checksum over the pseudo-header (RFC 8200 8.1) and `message`, whose own
/// checksum field is zero.
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut pseudo = Vec::with_capacity(40 + message.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, ICMPV6]);
    pseudo.extend_from_slice(message);
    let mut sum: u32 = pseudo
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame carrying `message` (ICMPv6, checksum filled in) from `src` to `dst`.
fn frame(mac: Mac, src: Ipv6Addr, dst: Ipv6Addr, mut message: Vec<u8>) -> Vec<u8> {
    let sum = checksum(src, dst, &message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let payload = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut f = Vec::with_capacity(ETH_LEN + IPV6_LEN + message.len());
    f.extend_from_slice(&multicast_mac(dst));
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no traffic class, no flow label
    f.extend_from_slice(&payload.to_be_bytes());
    f.extend_from_slice(&[ICMPV6, HOP_LIMIT]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&message);
    f
}

/// RFC 4862 duplicate address detection probe: "who has `target`?" from `::` to its
/// solicited-node group, so no host learns anything from it and a holder answers to all
/// nodes.
pub fn solicitation(mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![NEIGHBOR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    frame(mac, Ipv6Addr::UNSPECIFIED, solicited_node(target), m)
}

/// Unsolicited Neighbor Advertisement with the override flag: "`target` is at `mac`" to
/// every node, so caches that hold the old holder's MAC switch now.
pub fn advertisement(mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![NEIGHBOR_ADVERTISEMENT, 0, 0, 0, OVERRIDE, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[TARGET_LINK_LAYER_ADDRESS, 1]);
    m.extend_from_slice(&mac);
    frame(mac, target, ALL_NODES, m)
}

/// If `f` is a Neighbor Advertisement for one of `targets` from another host, that host's
/// MAC: an answer to our probe, or another holder's own announcement.
pub fn claimant(f: &[u8], targets: &[Ipv6Addr], ours: Mac) -> Option<Mac> {
    let icmp = f.get(ETH_LEN + IPV6_LEN..ETH_LEN + IPV6_LEN + 24)?;
    let ip = &f[ETH_LEN..ETH_LEN + IPV6_LEN];
    if f[12..14] != ETHERTYPE_IPV6.to_be_bytes()
        || ip[6] != ICMPV6
        || ip[7] != HOP_LIMIT
        || icmp[0] != NEIGHBOR_ADVERTISEMENT
    {
        return None;
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(&icmp[8..24]);
    let mut sender = [0u8; 6];
    sender.copy_from_slice(&f[6..12]);
    (targets.contains(&Ipv6Addr::from(target)) && sender != ours).then_some(sender)
}

/// Frames of an unsolicited advertisement burst, as for gratuitous ARP.
pub const NA_REPEATS: usize = crate::net::arp::GARP_REPEATS;

/// A raw packet socket for IPv6 frames, kept open for the daemon's lifetime.
#[cfg(target_os = "linux")]
pub struct Ndisc(crate::net::packet_socket::PacketSocket);

/// Classic BPF: accept a frame only if it is IPv6 (EtherType at 12), ICMPv6 right after
/// the fixed header (next header at 20) and a Neighbor Advertisement (type at 54).
#[cfg(target_os = "linux")]
const ADVERTISEMENTS_ONLY: [socket2::SockFilter; 8] = {
    use socket2::SockFilter;
    const LOAD_HALF: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const LOAD_BYTE: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const JUMP_IF: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    [
        SockFilter::new(LOAD_HALF, 0, 0, 12),
        SockFilter::new(JUMP_IF, 0, 5, ETHERTYPE_IPV6 as u32),
        SockFilter::new(LOAD_BYTE, 0, 0, (ETH_LEN + 6) as u32),
        SockFilter::new(JUMP_IF, 0, 3, ICMPV6 as u32),
        SockFilter::new(LOAD_BYTE, 0, 0, (ETH_LEN + IPV6_LEN) as u32),
        SockFilter::new(JUMP_IF, 0, 1, NEIGHBOR_ADVERTISEMENT as u32),
        SockFilter::new(RETURN, 0, 0, 256),
        SockFilter::new(RETURN, 0, 0, 0),
    ]
};

#[cfg(target_os = "linux")]
impl Ndisc {
    pub fn open(iface: &str) -> Result<Ndisc, crate::net::NetError> {
        crate::net::packet_socket::PacketSocket::open(iface, ETHERTYPE_IPV6)?
            .keep_only(&ADVERTISEMENTS_ONLY)
            .map(Ndisc)
    }

    /// Announces that `ip` is now at `mac`, a few times.
    pub fn announce(&self, mac: Mac, ip: Ipv6Addr) -> Result<(), crate::net::NetError> {
        let na = advertisement(mac, ip);
        for _ in 0..NA_REPEATS {
            self.0.send("send neighbor advertisement", &na)?;
        }
        Ok(())
    }

    /// Duplicate address detection for every address in `targets` at once, two rounds
    /// over `wait`; any advertisement for one of them from another host makes it in use.
    pub fn probe(
        &self,
        mac: Mac,
        targets: &[Ipv6Addr],
        wait: Duration,
    ) -> Result<ProbeOutcome, crate::net::NetError> {
        let probes: Vec<Vec<u8>> = targets.iter().map(|t| solicitation(mac, *t)).collect();
        let seen = self.0.probe(&probes, wait, |f| claimant(f, targets, mac))?;
        Ok(seen.map_or(ProbeOutcome::Free, ProbeOutcome::InUse))
    }
}

/// Without packet sockets: the kernel announces what it adds, and a probe is a `ping6`.
#[cfg(not(target_os = "linux"))]
pub struct Ndisc;

#[cfg(not(target_os = "linux"))]
impl Ndisc {
    pub fn open(_iface: &str) -> Result<Ndisc, crate::net::NetError> {
        Ok(Ndisc)
    }

    pub fn announce(&self, _mac: Mac, _ip: Ipv6Addr) -> Result<(), crate::net::NetError> {
        Ok(())
    }

    pub fn probe(
        &self,
        _mac: Mac,
        targets: &[Ipv6Addr],
        _wait: Duration,
    ) -> Result<ProbeOutcome, crate::net::NetError> {
        let ips: Vec<std::net::IpAddr> = targets.iter().map(|t| (*t).into()).collect();
        crate::net::ping::any_answers(crate::net::Os::current(), &ips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x0b];
    const TARGET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x234);

    fn hex(f: &[u8]) -> String {
        f.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn solicited_node_groups() {
        assert_eq!(solicited_node(TARGET).to_string(), "ff02::1:ff00:234");
        let ip: Ipv6Addr = "2001:db8::abcd:ef12:3456".parse().unwrap();
        assert_eq!(solicited_node(ip).to_string(), "ff02::1:ff12:3456");
        assert_eq!(
            multicast_mac(solicited_node(ip)),
            [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]
        );
    }

    /// A message with its checksum filled in sums to zero (RFC 1071), and the fixtures'
    /// checksums were computed independently of this code.
    #[test]
    fn checksums_verify() {
        for f in [solicitation(MAC, TARGET), advertisement(MAC, TARGET)] {
            let ip = &f[ETH_LEN..ETH_LEN + IPV6_LEN];
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
            assert_eq!(
                checksum(src, dst, &f[ETH_LEN + IPV6_LEN..]),
                0,
                "{}",
                hex(&f)
            );
        }
    }

    #[test]
    fn solicitation_bytes() {
        let f = solicitation(MAC, TARGET);
        assert_eq!(f.len(), SOLICITATION_LEN);
        assert_eq!(
            hex(&f),
            [
                "3333ff000234", // to the solicited-node group's MAC
                "02005e00010b", // from ours
                "86dd",         // IPv6
                "60000000",
                "0018",
                "3a",
                "ff",                               // payload 24, ICMPv6, hop limit 255
                "00000000000000000000000000000000", // from ::
                "ff0200000000000000000001ff000234", // to ff02::1:ff00:234
                "87",
                "00",
                "4887",
                "00000000",                         // solicitation, checksum, reserved
                "20010db8000000000000000000000234", // target
            ]
            .concat()
        );
    }

    #[test]
    fn advertisement_bytes() {
        let f = advertisement(MAC, TARGET);
        assert_eq!(f.len(), ADVERTISEMENT_LEN);
        assert_eq!(
            hex(&f),
            [
                "333300000001", // to all nodes
                "02005e00010b",
                "86dd",
                "60000000",
                "0020",
                "3a",
                "ff",                               // payload 32
                "20010db8000000000000000000000234", // from the address itself
                "ff020000000000000000000000000001",
                "88",
                "00",
                "95ba",
                "20000000", // advertisement, override flag
                "20010db8000000000000000000000234",
                "0201",
                "02005e00010b", // target link-layer address: ours
            ]
            .concat()
        );
    }

    #[test]
    fn claimants() {
        let other = [0x02, 0, 0, 0, 0, 0x0c];
        let theirs = advertisement(other, TARGET);
        assert_eq!(claimant(&theirs, &[TARGET], MAC), Some(other));
        // our own announcements, probes, other targets, other hop limits and junk do not count
        assert_eq!(claimant(&advertisement(MAC, TARGET), &[TARGET], MAC), None);
        assert_eq!(claimant(&solicitation(other, TARGET), &[TARGET], MAC), None);
        let elsewhere: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(claimant(&theirs, &[elsewhere], MAC), None);
        let mut routed = theirs.clone();
        routed[ETH_LEN + 7] = 64;
        assert_eq!(claimant(&routed, &[TARGET], MAC), None);
        assert_eq!(claimant(&theirs[..60], &[TARGET], MAC), None);
        assert_eq!(claimant(&[0u8; 10], &[TARGET], MAC), None);
    }
}
