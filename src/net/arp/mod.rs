//! ARP: gratuitous announcements after a take-over and RFC 5227 probes before one.
//!
//! Frames are built and parsed by pure functions; sending them needs a raw `AF_PACKET`
//! socket, which only Linux has. On macOS the kernel announces an alias when it is added,
//! and "does the address answer" falls back to `ping` (see [`crate::net::host`]).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::vocabulary::{Mac, ProbeOutcome};

pub const FRAME_LEN: usize = 42;
const BROADCAST: Mac = [0xff; 6];
const ETHERTYPE_ARP: u16 = 0x0806;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

fn frame(dst: Mac, op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&sha);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&op.to_be_bytes());
    f[22..28].copy_from_slice(&sha);
    f[28..32].copy_from_slice(&spa.octets());
    f[32..38].copy_from_slice(&tha);
    f[38..42].copy_from_slice(&tpa.octets());
    f
}

/// Gratuitous ARP, request form: "who has VIP? tell VIP" from our MAC (RFC 5227 announcement).
pub fn garp_request(mac: Mac, vip: Ipv4Addr) -> [u8; FRAME_LEN] {
    frame(BROADCAST, OP_REQUEST, mac, vip, [0; 6], vip)
}

/// Gratuitous ARP, reply form, for hosts that only update their cache from replies.
pub fn garp_reply(mac: Mac, vip: Ipv4Addr) -> [u8; FRAME_LEN] {
    frame(BROADCAST, OP_REPLY, mac, vip, mac, vip)
}

/// RFC 5227 probe: sender address 0.0.0.0 so no host updates its cache from it.
pub fn probe(mac: Mac, vip: Ipv4Addr) -> [u8; FRAME_LEN] {
    frame(
        BROADCAST,
        OP_REQUEST,
        mac,
        Ipv4Addr::UNSPECIFIED,
        [0; 6],
        vip,
    )
}

/// If `f` shows another host using one of `vips` (a reply from it, or its own
/// announcement), the MAC of that host.
pub fn claimant(f: &[u8], vips: &[Ipv4Addr], ours: Mac) -> Option<Mac> {
    if f.len() < FRAME_LEN || f[12..14] != ETHERTYPE_ARP.to_be_bytes() || f[16..18] != [0x08, 0x00]
    {
        return None;
    }
    let op = u16::from_be_bytes([f[20], f[21]]);
    let spa = Ipv4Addr::new(f[28], f[29], f[30], f[31]);
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&f[22..28]);
    ((op == OP_REPLY || op == OP_REQUEST) && vips.contains(&spa) && sha != ours).then_some(sha)
}

/// Total time a take-over probe listens for an answer (two probes, half each).
/// LAN answers arrive in well under a millisecond; this budget keeps take-over fast.
pub const PROBE_WAIT: Duration = Duration::from_millis(10);
/// The probe after a hand-over: the old holder said it removed the address, so this only
/// catches a replayed or mistaken hand-over, and the client waits for it.
pub const HANDOVER_PROBE_WAIT: Duration = Duration::from_millis(2);
/// Frames of a gratuitous ARP burst: both forms, this many times.
pub const GARP_REPEATS: usize = 3;

/// A raw ARP socket kept open for the daemon's lifetime.
#[cfg(target_os = "linux")]
pub struct Arp(crate::net::packet_socket::PacketSocket);

#[cfg(target_os = "linux")]
impl Arp {
    pub fn open(iface: &str) -> Result<Arp, crate::net::NetError> {
        crate::net::packet_socket::PacketSocket::open(iface, ETHERTYPE_ARP).map(Arp)
    }

    /// Announces that `vip` is now at `mac`: request and reply forms, a few times.
    pub fn announce(&self, mac: Mac, vip: Ipv4Addr) -> Result<(), crate::net::NetError> {
        for _ in 0..GARP_REPEATS {
            for f in [garp_request(mac, vip), garp_reply(mac, vip)] {
                self.0.send("send gratuitous ARP", &f)?;
            }
        }
        Ok(())
    }

    /// RFC 5227-style probe of every address in `vips` at once: two probes each over
    /// `wait`; any host claiming one of them makes it in use.
    pub fn probe(
        &self,
        mac: Mac,
        vips: &[Ipv4Addr],
        wait: Duration,
    ) -> Result<ProbeOutcome, crate::net::NetError> {
        let probes: Vec<Vec<u8>> = vips.iter().map(|v| probe(mac, *v).to_vec()).collect();
        let seen = self.0.probe(&probes, wait, |f| claimant(f, vips, mac))?;
        Ok(seen.map_or(ProbeOutcome::Free, ProbeOutcome::InUse))
    }
}

/// Without raw sockets: the kernel announces aliases on add, and a probe is a `ping`.
#[cfg(not(target_os = "linux"))]
pub struct Arp;

#[cfg(not(target_os = "linux"))]
impl Arp {
    pub fn open(_iface: &str) -> Result<Arp, crate::net::NetError> {
        Ok(Arp)
    }

    pub fn announce(&self, _mac: Mac, _vip: Ipv4Addr) -> Result<(), crate::net::NetError> {
        Ok(())
    }

    pub fn probe(
        &self,
        _mac: Mac,
        vips: &[Ipv4Addr],
        _wait: Duration,
    ) -> Result<ProbeOutcome, crate::net::NetError> {
        let ips: Vec<std::net::IpAddr> = vips.iter().map(|v| (*v).into()).collect();
        crate::net::ping::any_answers(crate::net::Os::current(), &ips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x0b];
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 234);

    /// The start every frame of ours shares: broadcast from MAC, ARP, Ethernet/IPv4
    /// address sizes 6 and 4.
    const HEAD: &str = "ffffffffffff02005e00010b0806000108000604";

    fn hex(f: &[u8]) -> String {
        f.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn garp_request_bytes() {
        assert_eq!(
            hex(&garp_request(MAC, VIP)),
            [
                HEAD,
                "0001",
                "02005e00010b",
                "c00002ea",
                "000000000000",
                "c00002ea",
            ]
            .concat()
        );
    }

    #[test]
    fn garp_reply_bytes() {
        assert_eq!(
            hex(&garp_reply(MAC, VIP)),
            [
                HEAD,
                "0002",
                "02005e00010b",
                "c00002ea",
                "02005e00010b",
                "c00002ea",
            ]
            .concat()
        );
    }

    #[test]
    fn probe_bytes() {
        assert_eq!(
            hex(&probe(MAC, VIP)),
            [
                HEAD,
                "0001",
                "02005e00010b",
                "00000000",
                "000000000000",
                "c00002ea",
            ]
            .concat()
        );
    }

    #[test]
    fn claimants() {
        let other = [0x02, 0, 0, 0, 0, 0x0c];
        assert_eq!(claimant(&garp_reply(other, VIP), &[VIP], MAC), Some(other));
        assert_eq!(
            claimant(&garp_request(other, VIP), &[VIP], MAC),
            Some(other)
        );
        // our own frames, probes (sender 0.0.0.0), other addresses, and junk do not count
        assert_eq!(claimant(&garp_reply(MAC, VIP), &[VIP], MAC), None);
        assert_eq!(claimant(&probe(other, VIP), &[VIP], MAC), None);
        assert_eq!(
            claimant(&garp_reply(other, Ipv4Addr::new(192, 0, 2, 1)), &[VIP], MAC),
            None
        );
        assert_eq!(claimant(&[0u8; 10], &[VIP], MAC), None);
        let mut not_arp = garp_reply(other, VIP);
        not_arp[13] = 0;
        assert_eq!(claimant(&not_arp, &[VIP], MAC), None);
    }
}
