//! How a floating address is added and removed: an IPv4 address as an interface alias
//! with `ifconfig`, as the seed prescribes; an IPv6 address on Linux straight through the
//! kernel ([`netlink`], which also skips duplicate address detection, as `ip … nodad`
//! would), on macOS with `ifconfig … inet6 … alias`. Each OS's exact argument vector is
//! built by a pure function (tested on Linux for both OSes); commands always run from an
//! argument vector, never a shell.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use super::netlink::{self, Op};
use super::{NetError, Os, Tool};
use crate::vocabulary::{Floating, Netmask};

/// A hung `ifconfig` or `ip` is killed after this: the action fails (a failed add puts the
/// node in FAULT) instead of stalling the daemon's loop until the watchdog kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// A system program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: Tool,
    pub args: Vec<String>,
}

impl Invocation {
    fn new(program: Tool, args: &[&str]) -> Invocation {
        Invocation {
            program,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn display(&self) -> String {
        std::iter::once(self.program.name().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The full argument vector, the program at its absolute path `path`.
    pub fn argv(&self, path: &Path) -> Vec<String> {
        std::iter::once(path.display().to_string())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// Runs it from the system directories, bounded by [`COMMAND_TIMEOUT`].
    pub fn run(&self) -> Result<(), NetError> {
        self.run_at(&self.program.locate()?, COMMAND_TIMEOUT)
    }

    /// Runs it as `path`; a failure or overrun is an error that quotes the command and its output.
    pub fn run_at(&self, path: &Path, timeout: Duration) -> Result<(), NetError> {
        let ran = crate::exec::run(&self.argv(path), &[], timeout);
        if ran.success() {
            return Ok(());
        }
        Err(NetError::Command {
            command: self.display(),
            detail: ran.summary(),
        })
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

/// One address change: a system command, or an IPv6 one on Linux, a netlink request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Command(Invocation),
    Netlink(netlink::Request),
}

impl Change {
    /// What it does, for logs and errors: the command line, or the request in `ip`'s words.
    pub fn display(&self) -> String {
        match self {
            Change::Command(cmd) => cmd.display(),
            Change::Netlink(request) => request.to_string(),
        }
    }
}

pub fn add(os: Os, iface: &str, address: &Floating) -> Result<Change, NetError> {
    match *address {
        Floating::V4(vip, mask) => add4(os, iface, vip, mask).map(Change::Command),
        Floating::V6(vip, prefix) => Ok(add6(os, iface, vip, prefix)),
    }
}

fn add4(os: Os, iface: &str, vip: Ipv4Addr, mask: Netmask) -> Result<Invocation, NetError> {
    let (ip, mask) = (vip.to_string(), mask.to_string());
    Ok(match os {
        Os::Linux => Invocation::new(
            Tool::Ifconfig,
            &[&linux_label(iface, vip)?, &ip, "netmask", &mask, "up"],
        ),
        Os::MacOs => Invocation::new(Tool::Ifconfig, &[iface, "alias", &ip, "netmask", &mask]),
    })
}

/// Usable at once: on Linux the request skips the kernel's duplicate address detection (a
/// second of tentative state), since floatip probed the address itself before adding it.
fn add6(os: Os, iface: &str, vip: Ipv6Addr, prefix: u8) -> Change {
    match os {
        Os::Linux => Change::Netlink(netlink::Request::new(Op::Add, iface, vip, prefix)),
        Os::MacOs => Change::Command(Invocation::new(
            Tool::Ifconfig,
            &[
                iface,
                "inet6",
                &vip.to_string(),
                "prefixlen",
                &prefix.to_string(),
                "alias",
            ],
        )),
    }
}

/// Removes `address`, which the kernel reports under `label` (`eth0:234` for our IPv4
/// alias); an IPv6 address is removed with the prefix length it carries.
pub fn remove(os: Os, iface: &str, label: &str, address: &Floating) -> Change {
    let command = |args: &[&str]| Change::Command(Invocation::new(Tool::Ifconfig, args));
    match (*address, os) {
        // `ifconfig eth0:234 down` deletes the alias; on an unlabeled copy the same command
        // would take the whole interface down, so that case goes through iproute2.
        (Floating::V4(..), Os::Linux) if label.contains(':') => command(&[label, "down"]),
        (Floating::V4(..), Os::Linux) => Change::Command(Invocation::new(
            Tool::Ip,
            &["-4", "addr", "del", &address.to_string(), "dev", iface],
        )),
        (Floating::V6(vip, prefix), Os::Linux) => {
            Change::Netlink(netlink::Request::new(Op::Remove, iface, vip, prefix))
        }
        (Floating::V4(vip, _), Os::MacOs) => command(&[iface, "-alias", &vip.to_string()]),
        (Floating::V6(vip, _), Os::MacOs) => command(&[iface, "inet6", &vip.to_string(), "-alias"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 3, 234);
    const V6_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x234);
    const V6: Floating = Floating::V6(V6_IP, 64);

    fn v4() -> Floating {
        Floating::V4(VIP, Netmask::default())
    }

    #[test]
    fn linux_commands() {
        let a = add(Os::Linux, "eth0", &v4()).unwrap();
        assert_eq!(
            a.display(),
            "ifconfig eth0:234 192.168.3.234 netmask 255.255.255.0 up"
        );
        assert_eq!(
            remove(Os::Linux, "eth0", "eth0:234", &v4()).display(),
            "ifconfig eth0:234 down"
        );
        assert_eq!(
            remove(Os::Linux, "eth0", "eth0", &v4()).display(),
            "ip -4 addr del 192.168.3.234/24 dev eth0"
        );
    }

    /// The command a change runs; the test fails if it is a netlink request.
    fn command(change: Change) -> Invocation {
        match change {
            Change::Command(cmd) => cmd,
            Change::Netlink(request) => panic!("{request}: not a command"),
        }
    }

    #[test]
    fn macos_commands() {
        let a = command(add(Os::MacOs, "en1", &v4()).unwrap());
        assert_eq!(a.program, Tool::Ifconfig);
        assert_eq!(
            a.args,
            ["en1", "alias", "192.168.3.234", "netmask", "255.255.255.0"]
        );
        let r = command(remove(Os::MacOs, "en1", "en1", &v4()));
        assert_eq!(r.args, ["en1", "-alias", "192.168.3.234"]);
        assert_eq!(r.program, Tool::Ifconfig, "no iproute2 on macOS");
    }

    #[test]
    fn ipv6_on_linux_goes_over_netlink_skipping_duplicate_address_detection() {
        assert_eq!(
            add(Os::Linux, "eth0", &V6).unwrap(),
            Change::Netlink(netlink::Request::new(Op::Add, "eth0", V6_IP, 64))
        );
        assert_eq!(
            add(Os::Linux, "eth0", &V6).unwrap().display(),
            "netlink: add 2001:db8::234/64 dev eth0 nodad"
        );
        assert_eq!(
            remove(Os::Linux, "eth0", "eth0", &Floating::V6(V6_IP, 48)),
            Change::Netlink(netlink::Request::new(Op::Remove, "eth0", V6_IP, 48)),
            "removed with the prefix the copy carries"
        );
    }

    #[test]
    fn ipv6_on_macos_runs_ifconfig() {
        let mac = command(add(Os::MacOs, "en1", &V6).unwrap());
        assert_eq!(mac.program, Tool::Ifconfig);
        assert_eq!(
            mac.args,
            ["en1", "inet6", "2001:db8::234", "prefixlen", "64", "alias"]
        );
        assert_eq!(
            command(remove(Os::MacOs, "en1", "en1", &V6)).args,
            ["en1", "inet6", "2001:db8::234", "-alias"]
        );
    }

    #[test]
    fn argv_starts_with_the_absolute_path() {
        let a = command(add(Os::Linux, "eth0", &v4()).unwrap());
        assert_eq!(
            a.argv(Path::new("/usr/sbin/ifconfig"))[..2],
            ["/usr/sbin/ifconfig", "eth0:234"]
        );
        let r = command(remove(Os::Linux, "eth0", "eth0", &v4()));
        assert_eq!(r.program, Tool::Ip);
        assert_eq!(r.argv(Path::new("/sbin/ip"))[0], "/sbin/ip");
    }

    #[test]
    fn label_length_is_checked() {
        assert_eq!(linux_label("enp0s31f6", VIP).unwrap(), "enp0s31f6:234");
        assert!(linux_label("averylongname12", VIP).is_err());
    }

    #[test]
    fn failing_command_quotes_itself() {
        let t = Duration::from_secs(5);
        let err = Invocation::new(Tool::Ifconfig, &["x"])
            .run_at(Path::new("/bin/false"), t)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "`ifconfig x` failed: exit 1");
        let err = Invocation::new(Tool::Ip, &[])
            .run_at(Path::new("/nonexistent/floatip-test"), t)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/floatip-test"), "{err}");
    }

    #[test]
    fn a_hung_command_is_killed_and_fails() {
        let t0 = std::time::Instant::now();
        let hung = Invocation::new(Tool::Ifconfig, &["30"]);
        let err = hung
            .run_at(Path::new("/bin/sleep"), Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "`ifconfig 30` failed: timed out after 200 ms, killed");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }
}
