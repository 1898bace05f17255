use std::net::{Ipv4Addr, Ipv6Addr};

use super::Mac;

/// A network interface as the OS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// IPv4 addresses with their netmasks, primary first.
    pub addrs: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// IPv6 addresses with their prefix lengths, link-local ones included.
    pub addrs6: Vec<(Ipv6Addr, u8)>,
    pub up: bool,
    /// Administratively up and with carrier.
    pub running: bool,
    pub loopback: bool,
    pub mac: Option<Mac>,
}

/// An interface name that is not on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interface {name} not found; available: {available}")]
pub struct NoInterface {
    pub name: String,
    /// The names that are there, comma-separated, or `none`.
    pub available: String,
}

impl Interface {
    /// The interface called `name` among `all`.
    pub fn find<'a>(all: &'a [Interface], name: &str) -> Result<&'a Interface, NoInterface> {
        all.iter()
            .find(|i| i.name == name)
            .ok_or_else(|| NoInterface {
                name: name.to_string(),
                available: Interface::names(all),
            })
    }

    /// `eth0, wlan0`, or `none`, for error messages.
    pub fn names(all: &[Interface]) -> String {
        let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }
}
