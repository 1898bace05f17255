//! Interface discovery: names, IPv4 and IPv6 addresses, link flags and MAC, from `getifaddrs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

use super::NetError;
use crate::vocabulary::Interface;

/// One address as the kernel labels it (Linux alias labels look like `eth0:234`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledAddr {
    pub label: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// The base device of an alias label: `eth0:234` → `eth0`.
pub fn base_name(label: &str) -> &str {
    label.split(':').next().unwrap_or(label)
}

/// All interfaces in kernel order, aliases folded into their device.
pub fn discover() -> Result<Vec<Interface>, NetError> {
    Ok(snapshot()?.0)
}

/// Interfaces plus every address with its label, from one `getifaddrs` call.
pub fn snapshot() -> Result<(Vec<Interface>, Vec<LabeledAddr>), NetError> {
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    let mut labeled = Vec::new();
    for ifa in getifaddrs().map_err(NetError::Discover)? {
        let name = base_name(&ifa.interface_name).to_string();
        let entry = by_name.entry(name.clone()).or_insert_with(|| {
            order.push(name.clone());
            Interface {
                name: name.clone(),
                addrs: Vec::new(),
                addrs6: Vec::new(),
                up: false,
                running: false,
                loopback: false,
                mac: None,
            }
        });
        if ifa.interface_name == name {
            entry.up = ifa.flags.contains(InterfaceFlags::IFF_UP);
            entry.running = entry.up && ifa.flags.contains(InterfaceFlags::IFF_RUNNING);
            entry.loopback = ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        }
        let Some(address) = ifa.address else { continue };
        if let Some(sin) = address.as_sockaddr_in() {
            let addr = sin.ip();
            let mask = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map_or(Ipv4Addr::new(255, 255, 255, 0), |m| m.ip());
            entry.addrs.push((addr, mask));
            labeled.push(LabeledAddr {
                label: ifa.interface_name.clone(),
                addr: IpAddr::V4(addr),
                prefix: u32::from(mask).leading_ones() as u8,
            });
        } else if let Some(sin6) = address.as_sockaddr_in6() {
            let addr = sin6.ip();
            let prefix = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map_or(64, |m| u128::from(m.ip()).leading_ones() as u8);
            entry.addrs6.push((addr, prefix));
            labeled.push(LabeledAddr {
                label: ifa.interface_name.clone(),
                addr: IpAddr::V6(addr),
                prefix,
            });
        } else if let Some(mac) = address.as_link_addr().and_then(|l| l.addr()) {
            if mac != [0; 6] {
                entry.mac = Some(mac);
            }
        }
    }
    let interfaces = order
        .into_iter()
        .filter_map(|n| by_name.remove(&n))
        .collect();
    Ok((interfaces, labeled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_labels_fold_into_their_device() {
        assert_eq!(base_name("eth0:234"), "eth0");
        assert_eq!(base_name("eth0"), "eth0");
    }

    #[test]
    fn loopback_is_found_without_root() {
        let ifs = discover().expect("getifaddrs works unprivileged");
        let lo = ifs
            .iter()
            .find(|i| i.loopback)
            .expect("a loopback interface");
        assert!(lo.addrs.iter().any(|(a, _)| a.is_loopback()));
    }
}
