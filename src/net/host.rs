//! Everything the daemon does to this host, behind one small trait so the daemon's loop
//! can be exercised with a fake. A group's addresses are one unit here: held together,
//! probed together, announced together, removed together.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::alias::{self, Change, Invocation};
use super::interfaces::{base_name, snapshot, LabeledAddr};
use super::{arp, ndisc, NetError, Os};
use crate::vocabulary::{Floating, Interface, Mac, ProbeOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub link_up: bool,
    /// How many of the group's addresses are on the interface.
    pub present: usize,
    /// How many addresses the group has.
    pub addresses: usize,
}

impl Observation {
    /// What the state machine is told: a holder has the address only when it has every
    /// one (a missing one is restored); anyone else has it when it has any (removed).
    pub fn address_present(&self, holding: bool) -> bool {
        if holding {
            self.present == self.addresses
        } else {
            self.present > 0
        }
    }
}

pub trait Host {
    /// Link state and how many floating addresses are on the interface.
    fn observe(&self) -> Result<Observation, NetError>;
    /// Adds every floating address (idempotent) and checks that they appeared; on a
    /// failure, removes the ones this call added.
    fn add_address(&self) -> Result<(), NetError>;
    /// Removes every copy of every floating address from the interface (idempotent); true
    /// if one was there.
    fn remove_address(&self) -> Result<bool, NetError>;
    /// Does another host answer for any floating address? Milliseconds, not seconds.
    fn probe(&self, wait: Duration) -> Result<ProbeOutcome, NetError>;
    /// Gratuitous ARP and unsolicited neighbour advertisements, so clients follow the move now.
    fn announce(&self) -> Result<(), NetError>;
    fn mac(&self) -> Mac;
}

/// The real host, through `ifconfig`/`ip`, netlink, `getifaddrs`, raw ARP and neighbour
/// discovery.
pub struct SystemHost {
    arp: arp::Arp,
    /// Open only when the group has an IPv6 address.
    ndisc: Option<ndisc::Ndisc>,
    os: Os,
    iface: String,
    addresses: Vec<Floating>,
    mac: Mac,
}

impl SystemHost {
    /// Drives `addresses` on `interface`.
    pub fn new(interface: &str, addresses: &[Floating]) -> Result<SystemHost, NetError> {
        let (ifs, _) = snapshot()?;
        let iface = Interface::find(&ifs, interface)?;
        let has_v6 = addresses.iter().any(|a| matches!(a, Floating::V6(..)));
        Ok(SystemHost {
            arp: arp::Arp::open(&iface.name)?,
            ndisc: has_v6
                .then(|| ndisc::Ndisc::open(&iface.name))
                .transpose()?,
            os: Os::current(),
            iface: iface.name.clone(),
            addresses: addresses.to_vec(),
            mac: iface.mac.unwrap_or([0; 6]),
        })
    }

    /// Copies of `address` on our interface, as the kernel lists them.
    fn copies_in(&self, all: &[LabeledAddr], address: &Floating) -> Vec<LabeledAddr> {
        all.iter()
            .filter(|a| a.addr == address.ip() && base_name(&a.label) == self.iface)
            .cloned()
            .collect()
    }

    fn copies(&self, address: &Floating) -> Result<Vec<LabeledAddr>, NetError> {
        Ok(self.copies_in(&snapshot()?.1, address))
    }

    /// The IPv4 and the IPv6 addresses, each family probed and announced on its socket.
    fn by_family(&self) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for a in &self.addresses {
            match a.ip() {
                IpAddr::V4(ip) => v4.push(ip),
                IpAddr::V6(ip) => v6.push(ip),
            }
        }
        (v4, v6)
    }

    /// Adds `address` unless it is there; true if this call added it.
    fn add_one(&self, address: &Floating) -> Result<bool, NetError> {
        match alias::add(self.os, &self.iface, address)? {
            // The kernel's answer says whether it was there and that it is now.
            Change::Netlink(request) => request.send(),
            Change::Command(cmd) => self.add_by_command(address, &cmd),
        }
    }

    /// A command says only that it ran: the interface is looked at before and after.
    fn add_by_command(&self, address: &Floating, cmd: &Invocation) -> Result<bool, NetError> {
        if !self.copies(address)?.is_empty() {
            return Ok(false);
        }
        cmd.run()?;
        if self.copies(address)?.is_empty() {
            return Err(NetError::NotApplied {
                vip: address.ip(),
                iface: self.iface.clone(),
                state: "absent",
                command: cmd.display(),
            });
        }
        Ok(true)
    }

    /// Removes every copy of `address`, going on past failures; true if one was there.
    fn remove_one(
        &self,
        address: &Floating,
        failures: &mut Vec<NetError>,
    ) -> Result<bool, NetError> {
        let copies = self.copies(address)?;
        for copy in &copies {
            // An IPv6 copy is removed with the prefix it carries, which may be an old one.
            let carried = match *address {
                Floating::V6(ip, _) => Floating::V6(ip, copy.prefix),
                v4 => v4,
            };
            let removed = match alias::remove(self.os, &self.iface, &copy.label, &carried) {
                Change::Netlink(request) => request.send().map(drop),
                Change::Command(cmd) => self.remove_by_command(address, &copy.label, &cmd),
            };
            if let Err(e) = removed {
                failures.push(e);
            }
        }
        Ok(!copies.is_empty())
    }

    /// Runs `cmd` and checks that the copy under `label` is gone.
    fn remove_by_command(
        &self,
        address: &Floating,
        label: &str,
        cmd: &Invocation,
    ) -> Result<(), NetError> {
        cmd.run()?;
        if self.copies(address)?.iter().any(|c| c.label == label) {
            return Err(NetError::NotApplied {
                vip: address.ip(),
                iface: self.iface.clone(),
                state: "present",
                command: cmd.display(),
            });
        }
        Ok(())
    }
}

/// Adds every address with `add` (true: it added one, false: it was there); when one
/// fails, takes the ones it added away again with `remove`. Every failure is reported.
fn add_together(
    addresses: &[Floating],
    add: impl Fn(&Floating) -> Result<bool, NetError> + Sync,
    remove: impl Fn(&Floating, &mut Vec<NetError>) -> Result<bool, NetError>,
) -> Result<(), NetError> {
    let results = each_at_once(addresses, add);
    let mut failures = Vec::new();
    let mut added = Vec::new();
    for (address, result) in addresses.iter().zip(results) {
        match result {
            Ok(true) => added.push(*address),
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    for address in &added {
        if let Err(undo) = remove(address, &mut failures) {
            failures.push(undo);
        }
    }
    joined(failures)
}

/// `f` of each address, on threads of their own when there are several.
fn each_at_once<T: Send>(addresses: &[Floating], f: impl Fn(&Floating) -> T + Sync) -> Vec<T> {
    if let [one] = addresses {
        return vec![f(one)];
    }
    std::thread::scope(|s| {
        let running: Vec<_> = addresses.iter().map(|a| s.spawn(|| f(a))).collect();
        running
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// One error for one failure, [`NetError::Several`] for more.
fn joined(mut failures: Vec<NetError>) -> Result<(), NetError> {
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        _ => Err(NetError::Several(failures)),
    }
}

impl Host for SystemHost {
    fn observe(&self) -> Result<Observation, NetError> {
        let (ifs, addrs) = snapshot()?;
        let link_up = ifs.iter().any(|i| i.name == self.iface && i.running);
        let present = self
            .addresses
            .iter()
            .filter(|a| !self.copies_in(&addrs, a).is_empty())
            .count();
        Ok(Observation {
            link_up,
            present,
            addresses: self.addresses.len(),
        })
    }

    /// Nothing half-added: when one address cannot be added, the ones added with it are
    /// removed again and the error names the one that failed. The changes run side by
    /// side, so a dual-stack take-over costs one command's time, not two.
    fn add_address(&self) -> Result<(), NetError> {
        add_together(
            &self.addresses,
            |a| self.add_one(a),
            |a, failures| self.remove_one(a, failures),
        )
    }

    /// Tries every copy of every address even when one fails, side by side, and reports
    /// every failure. A netlink request takes the kernel a fraction of a millisecond, a
    /// command milliseconds: the requests go once the commands are done, so every address
    /// stops answering at about the same moment and no client loses its address early.
    fn remove_address(&self) -> Result<bool, NetError> {
        let (requests, commands): (Vec<Floating>, Vec<Floating>) =
            self.addresses.iter().partition(|a| {
                let change = alias::remove(self.os, &self.iface, &self.iface, a);
                matches!(change, Change::Netlink(_))
            });
        let remove = |a: &Floating| {
            let mut failures = Vec::new();
            let removed = self.remove_one(a, &mut failures);
            (removed, failures)
        };
        let mut results = each_at_once(&commands, remove);
        results.extend(each_at_once(&requests, remove));
        let mut failures = Vec::new();
        let mut removed = false;
        for (result, mut more) in results {
            match result {
                Ok(r) => removed |= r,
                Err(e) => failures.push(e),
            }
            failures.append(&mut more);
        }
        joined(failures).map(|()| removed)
    }

    /// Both families at once (each has its own socket), so a dual-stack take-over waits
    /// for one probe, not two.
    fn probe(&self, wait: Duration) -> Result<ProbeOutcome, NetError> {
        let (v4, v6) = self.by_family();
        let arp = || match v4.is_empty() {
            true => Ok(ProbeOutcome::Free),
            false => self.arp.probe(self.mac, &v4, wait),
        };
        let Some(nd) = self.ndisc.as_ref().filter(|_| !v6.is_empty()) else {
            return arp();
        };
        let (four, six) = std::thread::scope(|s| {
            let six = s.spawn(|| nd.probe(self.mac, &v6, wait));
            let four = arp();
            let six = six.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (four, six)
        });
        match (four?, six?) {
            (ProbeOutcome::InUse(mac), _) | (_, ProbeOutcome::InUse(mac)) => {
                Ok(ProbeOutcome::InUse(mac))
            }
            _ => Ok(ProbeOutcome::Free),
        }
    }

    fn announce(&self) -> Result<(), NetError> {
        let (v4, v6) = self.by_family();
        for ip in v4 {
            self.arp.announce(self.mac, ip)?;
        }
        if let Some(nd) = &self.ndisc {
            for ip in v6 {
                nd.announce(self.mac, ip)?;
            }
        }
        Ok(())
    }

    fn mac(&self) -> Mac {
        self.mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn addresses() -> Vec<Floating> {
        vec![
            Floating::V4("192.0.2.234".parse().unwrap(), Default::default()),
            Floating::V6("2001:db8::234".parse().unwrap(), 64),
            Floating::V4("192.0.2.235".parse().unwrap(), Default::default()),
        ]
    }

    fn failed(what: &str) -> NetError {
        NetError::Unsupported(what.into())
    }

    /// One failing add: the ones this call added are removed, the one already there is
    /// left alone (it was not ours to undo), and the error says what failed.
    #[test]
    fn nothing_half_added() {
        let removed = Mutex::new(Vec::new());
        let all = addresses();
        let result = add_together(
            &all,
            |a| match a {
                Floating::V6(..) => Err(failed("netlink: add failed")),
                Floating::V4(ip, _) => Ok(ip.octets()[3] == 234),
            },
            |a, _| {
                removed.lock().unwrap().push(a.ip().to_string());
                Ok(true)
            },
        );
        assert_eq!(result.unwrap_err().to_string(), "netlink: add failed");
        assert_eq!(*removed.lock().unwrap(), ["192.0.2.234"]);
    }

    #[test]
    fn a_failed_undo_is_reported_too() {
        let all = addresses();
        let result = add_together(
            &all,
            |a| match a {
                Floating::V6(..) => Err(failed("add failed")),
                Floating::V4(..) => Ok(true),
            },
            |a, failures| {
                failures.push(failed(&format!("cannot remove {}", a.ip())));
                Ok(true)
            },
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "add failed; cannot remove 192.0.2.234; cannot remove 192.0.2.235"
        );
        let fine = add_together(&all, |_| Ok(true), |_, _| panic!("nothing to undo"));
        assert!(fine.is_ok());
    }

    #[test]
    fn a_holder_needs_every_address_anyone_else_none() {
        let seen = |present| Observation {
            link_up: true,
            present,
            addresses: 2,
        };
        assert!(seen(2).address_present(true));
        assert!(!seen(1).address_present(true), "a missing one is restored");
        assert!(seen(1).address_present(false), "a stray one is removed");
        assert!(!seen(0).address_present(false));
    }
}
