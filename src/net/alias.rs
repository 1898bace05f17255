//! Adding and removing the floating IP as an interface alias with `ifconfig`, as the seed
//! prescribes. Each OS's exact argument vector is built by a pure function (tested on
//! Linux for both OSes); commands always run from an argument vector, never a shell.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::{NetError, Os};
use crate::config::Netmask;

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: &'static str,
    pub args: Vec<String>,
}

impl Invocation {
    fn new(program: &'static str, args: &[&str]) -> Invocation {
        Invocation { program, args: args.iter().map(|s| s.to_string()).collect() }
    }

    pub fn display(&self) -> String {
        std::iter::once(self.program.to_string()).chain(self.args.iter().cloned()).collect::<Vec<_>>().join(" ")
    }

    /// Runs it, turning a failure into an error that quotes the command and its stderr.
    pub fn run(&self) -> Result<(), NetError> {
        let out = Command::new(self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| NetError::Command { command: self.display(), detail: e.to_string() })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(NetError::Command { command: self.display(), detail: format!("{}: {}", out.status, stderr.trim()) })
    }
}

/// The Linux alias label for the floating IP: `<iface>:<last octet>` (kernel limit 15 bytes).
pub fn linux_label(iface: &str, vip: Ipv4Addr) -> Result<String, NetError> {
    let label = format!("{iface}:{}", vip.octets()[3]);
    if label.len() > 15 {
        return Err(NetError::Unsupported(format!(
            "alias label {label} exceeds the kernel's 15 characters; use a shorter interface name"
        )));
    }
    Ok(label)
}

pub fn add(os: Os, iface: &str, vip: Ipv4Addr, mask: Netmask) -> Result<Invocation, NetError> {
    let (ip, mask) = (vip.to_string(), mask.to_string());
    Ok(match os {
        Os::Linux => Invocation::new("ifconfig", &[&linux_label(iface, vip)?, &ip, "netmask", &mask, "up"]),
        Os::MacOs => Invocation::new("ifconfig", &[iface, "alias", &ip, "netmask", &mask]),
    })
}

/// Removes `vip`, which the kernel reports under `label` (`eth0:234` for our alias).
pub fn remove(os: Os, iface: &str, label: &str, vip: Ipv4Addr, mask: Netmask) -> Invocation {
    match os {
        // `ifconfig eth0:234 down` deletes the alias; on an unlabeled copy the same command
        // would take the whole interface down, so that case goes through iproute2.
        Os::Linux if label.contains(':') => Invocation::new("ifconfig", &[label, "down"]),
        Os::Linux => Invocation::new("ip", &["-4", "addr", "del", &format!("{vip}/{}", mask.prefix_len()), "dev", iface]),
        Os::MacOs => Invocation::new("ifconfig", &[iface, "-alias", &vip.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask() -> Netmask {
        Netmask::new(Ipv4Addr::new(255, 255, 255, 0)).unwrap()
    }
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 3, 234);

    #[test]
    fn linux_commands() {
        let a = add(Os::Linux, "eth0", VIP, mask()).unwrap();
        assert_eq!(a.display(), "ifconfig eth0:234 192.168.3.234 netmask 255.255.255.0 up");
        assert_eq!(remove(Os::Linux, "eth0", "eth0:234", VIP, mask()).display(), "ifconfig eth0:234 down");
        assert_eq!(
            remove(Os::Linux, "eth0", "eth0", VIP, mask()).display(),
            "ip -4 addr del 192.168.3.234/24 dev eth0"
        );
    }

    #[test]
    fn macos_commands() {
        let a = add(Os::MacOs, "en1", VIP, mask()).unwrap();
        assert_eq!(a.program, "ifconfig");
        assert_eq!(a.args, ["en1", "alias", "192.168.3.234", "netmask", "255.255.255.0"]);
        assert_eq!(remove(Os::MacOs, "en1", "en1", VIP, mask()).args, ["en1", "-alias", "192.168.3.234"]);
    }

    #[test]
    fn label_length_is_checked() {
        assert_eq!(linux_label("enp0s31f6", VIP).unwrap(), "enp0s31f6:234");
        assert!(linux_label("averylongname12", VIP).is_err());
    }

    #[test]
    fn failing_command_quotes_itself() {
        let err = Invocation::new("false", &["x"]).run().unwrap_err().to_string();
        assert!(err.starts_with("`false x` failed"), "{err}");
        let err = Invocation::new("/nonexistent/floatip-test", &[]).run().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/floatip-test"), "{err}");
    }
}
