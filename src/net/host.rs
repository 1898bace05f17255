//! Everything the daemon does to this host, behind one small trait so the daemon's loop
//! can be exercised with a fake.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::interfaces::{base_name, snapshot};
use super::{alias, arp, NetError, Os};
use crate::vocabulary::{Interface, Mac, Netmask, ProbeOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub link_up: bool,
    pub address_present: bool,
}

pub trait Host {
    /// Link state and whether the floating IP is on the interface.
    fn observe(&self) -> Result<Observation, NetError>;
    /// Adds the floating IP (idempotent) and checks that it appeared.
    fn add_address(&self) -> Result<(), NetError>;
    /// Removes every copy of the floating IP from the interface (idempotent); true if one was there.
    fn remove_address(&self) -> Result<bool, NetError>;
    /// Does another host answer for the floating IP? Milliseconds, not seconds.
    fn probe(&self, wait: Duration) -> Result<ProbeOutcome, NetError>;
    /// Gratuitous ARP so clients follow the move now.
    fn announce(&self) -> Result<(), NetError>;
    fn mac(&self) -> Mac;
}

/// The real host, through `ifconfig`, `getifaddrs` and raw ARP.
pub struct SystemHost {
    arp: arp::Arp,
    os: Os,
    iface: String,
    vip: Ipv4Addr,
    mask: Netmask,
    mac: Mac,
}

impl SystemHost {
    /// Drives `vip`/`mask` on `interface`.
    pub fn new(interface: &str, vip: Ipv4Addr, mask: Netmask) -> Result<SystemHost, NetError> {
        let (ifs, _) = snapshot()?;
        let iface = Interface::find(&ifs, interface)?;
        Ok(SystemHost {
            arp: arp::Arp::open(&iface.name)?,
            os: Os::current(),
            iface: iface.name.clone(),
            vip,
            mask,
            mac: iface.mac.unwrap_or([0; 6]),
        })
    }

    /// Labels under which the floating IP currently sits on our interface.
    fn copies(&self) -> Result<Vec<String>, NetError> {
        let (_, addrs) = snapshot()?;
        Ok(addrs
            .into_iter()
            .filter(|a| a.addr == self.vip && base_name(&a.label) == self.iface)
            .map(|a| a.label)
            .collect())
    }
}

impl Host for SystemHost {
    fn observe(&self) -> Result<Observation, NetError> {
        let (ifs, addrs) = snapshot()?;
        let link_up = ifs.iter().any(|i| i.name == self.iface && i.running);
        let address_present = addrs
            .iter()
            .any(|a| a.addr == self.vip && base_name(&a.label) == self.iface);
        Ok(Observation {
            link_up,
            address_present,
        })
    }

    fn add_address(&self) -> Result<(), NetError> {
        if !self.copies()?.is_empty() {
            return Ok(());
        }
        let cmd = alias::add(self.os, &self.iface, self.vip, self.mask)?;
        cmd.run()?;
        if self.copies()?.is_empty() {
            return Err(NetError::NotApplied {
                vip: self.vip,
                iface: self.iface.clone(),
                state: "absent",
                command: cmd.display(),
            });
        }
        Ok(())
    }

    /// Tries every copy even when one fails, and reports every failure.
    fn remove_address(&self) -> Result<bool, NetError> {
        let labels = self.copies()?;
        let mut failures = Vec::new();
        for label in &labels {
            let cmd = alias::remove(self.os, &self.iface, label, self.vip, self.mask);
            if let Err(e) = cmd.run() {
                failures.push(e);
            } else if self.copies()?.contains(label) {
                failures.push(NetError::NotApplied {
                    vip: self.vip,
                    iface: self.iface.clone(),
                    state: "present",
                    command: cmd.display(),
                });
            }
        }
        match failures.len() {
            0 => Ok(!labels.is_empty()),
            1 => Err(failures.remove(0)),
            _ => Err(NetError::Several(failures)),
        }
    }

    fn probe(&self, wait: Duration) -> Result<ProbeOutcome, NetError> {
        self.arp.probe(self.mac, self.vip, wait)
    }

    fn announce(&self) -> Result<(), NetError> {
        self.arp.announce(self.mac, self.vip)
    }

    fn mac(&self) -> Mac {
        self.mac
    }
}
