use std::net::Ipv4Addr;

use super::Mac;

/// A network interface as the OS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// IPv4 addresses with their netmasks, primary first.
    pub addrs: Vec<(Ipv4Addr, Ipv4Addr)>,
    pub up: bool,
    /// Administratively up and with carrier.
    pub running: bool,
    pub loopback: bool,
    pub mac: Option<Mac>,
}
