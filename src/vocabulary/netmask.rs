use std::net::Ipv4Addr;

/// An IPv4 netmask known to be contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netmask(Ipv4Addr);

impl Netmask {
    /// `None` when the ones are not contiguous (e.g. 255.0.255.0).
    pub fn new(mask: Ipv4Addr) -> Option<Netmask> {
        let bits = u32::from(mask);
        (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(Netmask(mask))
    }
    pub fn addr(self) -> Ipv4Addr {
        self.0
    }
    pub fn prefix_len(self) -> u8 {
        u32::from(self.0).leading_ones() as u8
    }
    pub fn network(self, ip: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(ip) & u32::from(self.0))
    }
    pub fn broadcast(self, ip: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(ip) | !u32::from(self.0))
    }
    pub fn same_subnet(self, a: Ipv4Addr, b: Ipv4Addr) -> bool {
        self.network(a) == self.network(b)
    }
}

impl Default for Netmask {
    fn default() -> Self {
        Netmask(Ipv4Addr::new(255, 255, 255, 0))
    }
}

impl std::fmt::Display for Netmask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
