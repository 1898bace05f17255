//! Applies the seed's defaults to a [`RawSection`] against the host's interfaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Config, ConfigError, Echo, Loaded, RawSection};
use super::{DEFAULT_ECHO_PORT, DEFAULT_VIP_LAST_OCTET};
use crate::auth::{read_key_file, Auth, Key};
use crate::vocabulary::{
    is_link_local6, network6, same_prefix, Floating, Interface, Netmask, Priority, Segment,
};

pub const DEFAULT_STATUS_SOCKET: &str = "/run/floatip/floatip.sock";
/// Prefix length of an IPv6 floating address written without one.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// `a, b/64`: the addresses as written, for error messages.
fn list(ips: &[(IpAddr, Option<u8>)]) -> String {
    let each: Vec<String> = ips
        .iter()
        .map(|(ip, p)| p.map_or(ip.to_string(), |p| format!("{ip}/{p}")))
        .collect();
    each.join(", ")
}

/// An IPv4 floating address must sit in the node's subnet, and be neither its network nor
/// its broadcast address.
fn on_subnet4(vip: Ipv4Addr, node: Ipv4Addr, netmask: Netmask, iface: &str) -> Result<(), String> {
    if !netmask.same_subnet(vip, node) {
        return Err(format!(
            "{vip} is outside {iface}'s subnet {}/{}",
            netmask.network(node),
            netmask.prefix_len()
        ));
    }
    if netmask.prefix_len() < 31 && (vip == netmask.network(vip) || vip == netmask.broadcast(vip)) {
        return Err(format!(
            "{vip} is the network or broadcast address of its subnet"
        ));
    }
    Ok(())
}

/// An IPv6 floating address must be on one of the interface's own (not link-local) IPv6
/// prefixes; copies of the floating addresses themselves are not the interface's own.
fn on_prefix6(vip: Ipv6Addr, iface: &Interface, floating: &[Floating]) -> Result<(), String> {
    let own = own6(iface, floating);
    if own.is_empty() {
        return Err(format!(
            "{vip}: {} has no IPv6 address of its own beyond link-local; add one on the floating address's prefix",
            iface.name
        ));
    }
    if own.iter().any(|(a, p)| same_prefix(vip, *a, *p)) {
        return Ok(());
    }
    let prefixes: Vec<String> = own
        .iter()
        .map(|(a, p)| format!("{}/{p}", network6(*a, *p)))
        .collect();
    Err(format!(
        "{vip} is outside {}'s IPv6 prefixes {}",
        iface.name,
        prefixes.join(", ")
    ))
}

/// The node's place on the LAN, in the heartbeat's family.
struct Lan {
    node_addr: IpAddr,
    vip: IpAddr,
    segment: Segment,
    /// The IPv4 addresses' netmask (the default in an IPv6-only group, which has none).
    netmask: Netmask,
    addresses: Vec<Floating>,
}

type KeyErr<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// The seed's case: the node's own IPv4 address identifies it and announces are broadcast;
/// IPv6 addresses in the list ride along.
fn over_ipv4(
    raw: &RawSection,
    iface: &Interface,
    key_err: KeyErr<'_>,
    auto: &mut Vec<&'static str>,
) -> Result<Lan, ConfigError> {
    let floating4: Vec<Ipv4Addr> = raw
        .ip
        .iter()
        .filter_map(|(ip, _)| match ip {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect();

    // The node's own address: never a floating IP itself (a stale copy may still be there).
    let is_default_vip = |a: &Ipv4Addr| a.octets()[3] == DEFAULT_VIP_LAST_OCTET;
    let own = iface
        .addrs
        .iter()
        .find(|(a, _)| !floating4.contains(a) && (!floating4.is_empty() || !is_default_vip(a)))
        .or_else(|| iface.addrs.iter().find(|(a, _)| !floating4.contains(a)))
        .copied();
    let Some((node_addr, own_mask)) = own else {
        return Err(
            match floating4
                .iter()
                .find(|ip| iface.addrs.iter().any(|(a, _)| a == *ip))
            {
                Some(ip) => key_err(
                    "ip",
                    format!(
                        "{ip} is {}'s own address; choose an unused address",
                        iface.name
                    ),
                ),
                None => key_err(
                    "interface",
                    format!("{} has no IPv4 address of its own", iface.name),
                ),
            },
        );
    };

    let netmask = match raw.netmask {
        Some(m) => Netmask::new(m)
            .ok_or_else(|| key_err("netmask", format!("{m} is not a contiguous netmask")))?,
        None => {
            auto.push("netmask");
            Netmask::new(own_mask).unwrap_or_default()
        }
    };

    let addresses: Vec<Floating> = if raw.ip.is_empty() {
        auto.push("ip");
        let [a, b, c, _] = node_addr.octets();
        let vip = Ipv4Addr::new(a, b, c, DEFAULT_VIP_LAST_OCTET);
        vec![Floating::V4(vip, netmask)]
    } else {
        raw.ip
            .iter()
            .map(|(ip, prefix)| match ip {
                IpAddr::V4(v4) => Floating::V4(*v4, netmask),
                IpAddr::V6(v6) => Floating::V6(*v6, prefix.unwrap_or(DEFAULT_IPV6_PREFIX)),
            })
            .collect()
    };
    for address in &addresses {
        match *address {
            Floating::V4(vip, _) => on_subnet4(vip, node_addr, netmask, &iface.name)
                .map_err(|why| key_err("ip", why))?,
            Floating::V6(vip, _) => {
                on_prefix6(vip, iface, &addresses).map_err(|why| key_err("ip", why))?
            }
        }
    }
    let vip = addresses
        .iter()
        .find_map(|a| match a {
            Floating::V4(ip, _) => Some(*ip),
            Floating::V6(..) => None,
        })
        .unwrap_or(node_addr);
    Ok(Lan {
        node_addr: IpAddr::V4(node_addr),
        vip: IpAddr::V4(vip),
        segment: Segment::V4 {
            node: node_addr,
            netmask,
        },
        netmask,
        addresses,
    })
}

/// Every floating address is IPv6: the node's own IPv6 address on the first one's prefix
/// identifies it, the heartbeat dials that first one, announces go to the IPv6 group.
fn over_ipv6(raw: &RawSection, iface: &Interface, key_err: KeyErr<'_>) -> Result<Lan, ConfigError> {
    if let Some(mask) = raw.netmask {
        return Err(key_err(
            "netmask",
            format!("{mask} applies to IPv4 addresses only and floating_ip.ip has none; write an IPv6 prefix as 2001:db8::234/64"),
        ));
    }
    let addresses: Vec<Floating> = raw
        .ip
        .iter()
        .filter_map(|(ip, prefix)| match ip {
            IpAddr::V6(v6) => Some(Floating::V6(*v6, prefix.unwrap_or(DEFAULT_IPV6_PREFIX))),
            IpAddr::V4(_) => None,
        })
        .collect();
    let Some(Floating::V6(vip, _)) = addresses.first().copied() else {
        return Err(key_err(
            "ip",
            format!("{} has no IPv6 address", list(&raw.ip)),
        ));
    };
    for address in &addresses {
        if let Floating::V6(ip, _) = address {
            on_prefix6(*ip, iface, &addresses).map_err(|why| key_err("ip", why))?;
        }
    }
    let own = own6(iface, &addresses);
    // on_prefix6 found one on vip's prefix.
    let node = own
        .iter()
        .find(|(a, p)| same_prefix(vip, *a, *p))
        .map_or(vip, |(a, _)| *a);
    Ok(Lan {
        node_addr: IpAddr::V6(node),
        vip: IpAddr::V6(vip),
        segment: Segment::V6 { prefixes: own },
        netmask: Netmask::default(),
        addresses,
    })
}

/// The interface's own IPv6 addresses beyond link-local, copies of `floating` excluded.
fn own6(iface: &Interface, floating: &[Floating]) -> Vec<(Ipv6Addr, u8)> {
    let is_floating = |a: &Ipv6Addr| floating.iter().any(|f| f.ip() == IpAddr::V6(*a));
    iface
        .addrs6
        .iter()
        .filter(|(a, _)| !is_link_local6(*a) && !is_floating(a))
        .copied()
        .collect()
}

/// Resolves `raw` (read from `path`) into a [`Loaded`] config; pure apart from its inputs.
pub fn resolve(
    raw: &RawSection,
    path: &Path,
    interfaces: &[Interface],
) -> Result<Loaded, ConfigError> {
    if !raw.enabled {
        return Ok(Loaded::Disabled);
    }
    let file = path.display().to_string();
    let key_err = |key: &str, reason: String| ConfigError::Key {
        file: file.clone(),
        key: format!("floating_ip.{key}"),
        reason,
    };
    let mut auto = Vec::new();

    let iface = match &raw.interface {
        Some(name) => Interface::find(interfaces, name).map_err(|e| {
            key_err(
                "interface",
                format!("{name} not found; available: {}", e.available),
            )
        })?,
        None => {
            auto.push("interface");
            let usable = |i: &&Interface| !i.loopback && !i.addrs.is_empty();
            let usable6 = |i: &&Interface| !i.loopback && !own6(i, &[]).is_empty();
            interfaces.iter().find(usable).or_else(|| interfaces.iter().find(usable6)).ok_or_else(|| {
                ConfigError::Environment {
                    file: file.clone(),
                    reason: format!(
                        "no interface has a non-loopback IPv4 address or an IPv6 one beyond link-local (available: {}); set floating_ip.interface",
                        Interface::names(interfaces)
                    ),
                }
            })?
        }
    };

    // The heartbeat runs over IPv6 when every floating address is IPv6, else over IPv4.
    let ipv6_only = !raw.ip.is_empty() && raw.ip.iter().all(|(ip, _)| ip.is_ipv6());
    if raw.ip.is_empty() && iface.addrs.is_empty() && !own6(iface, &[]).is_empty() {
        return Err(key_err(
            "ip",
            format!(
                "{} has only IPv6 addresses and the default x.y.z.{DEFAULT_VIP_LAST_OCTET} is IPv4; set floating_ip.ip to an address on its prefix, e.g. 2001:db8::{DEFAULT_VIP_LAST_OCTET}/64",
                iface.name
            ),
        ));
    }
    let lan = if ipv6_only {
        over_ipv6(raw, iface, &key_err)?
    } else {
        over_ipv4(raw, iface, &key_err, &mut auto)?
    };
    let Lan {
        node_addr,
        vip,
        segment,
        netmask,
        addresses,
    } = lan;

    let ms = Duration::from_millis;
    let interval = ms(raw.interval_ms.unwrap_or(1000));
    let timeout = ms(raw.timeout_ms.unwrap_or(10_000));
    if timeout < 2 * interval {
        return Err(key_err(
            "echo.timeout_in_ms",
            format!(
                "{} must be at least twice echo.interval_in_ms ({})",
                timeout.as_millis(),
                interval.as_millis()
            ),
        ));
    }

    Ok(Loaded::Enabled(Box::new(Config {
        source: path.to_path_buf(),
        interface: iface.name.clone(),
        node_addr,
        vip,
        segment,
        addresses,
        netmask,
        echo: Echo {
            port: raw.echo_port.unwrap_or(DEFAULT_ECHO_PORT),
            dial_timeout: ms(raw.dial_timeout_ms.unwrap_or(10_000)),
            timeout,
            interval,
        },
        priority: raw.priority.map(Priority).unwrap_or(Priority::DEFAULT),
        preempt: raw.preempt.unwrap_or(false),
        preempt_delay: ms(raw.preempt_delay_ms.unwrap_or(0)),
        garp_refresh: raw.garp_refresh_ms.filter(|&v| v > 0).map(ms),
        status_socket: PathBuf::from(
            raw.status_socket
                .as_deref()
                .unwrap_or(DEFAULT_STATUS_SOCKET),
        ),
        auth: resolve_auth(&raw.auth, path, &file)?,
        track: raw.track.clone(),
        notify: raw.notify.clone(),
        metrics: raw.metrics.clone(),
        election: super::etcd::resolve(
            &raw.election,
            vip,
            path.parent().unwrap_or(Path::new(".")),
            &file,
        )?,
        auto_detected: auto,
    })))
}

/// Reads the keys `floating_ip.auth` names; key files relative to the config file's folder.
fn resolve_auth(
    raw: &super::RawAuth,
    path: &Path,
    file: &str,
) -> Result<Option<Auth>, ConfigError> {
    let key_err = |key: &str, reason: String| ConfigError::Key {
        file: file.to_string(),
        key: format!("floating_ip.auth.{key}"),
        reason,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let read = |file_key: &str,
                inline_key: &str,
                from_file: &Option<String>,
                inline: &Option<String>|
     -> Result<Option<Key>, ConfigError> {
        match (from_file, inline) {
            (Some(f), _) => read_key_file(&dir.join(f))
                .map(Some)
                .map_err(|why| key_err(file_key, why)),
            (None, Some(k)) => Key::new(k.as_bytes().to_vec()).map(Some).map_err(|why| {
                key_err(
                    inline_key,
                    format!("the key {why}; generate one with: head -c 32 /dev/urandom | base64"),
                )
            }),
            (None, None) => Ok(None),
        }
    };
    let Some(key) = read("key_file", "key", &raw.key_file, &raw.key)? else {
        return Ok(None);
    };
    let previous_key = read(
        "previous_key_file",
        "previous_key",
        &raw.previous_key_file,
        &raw.previous_key,
    )?;
    let max_skew = raw
        .max_clock_skew_ms
        .map_or(crate::auth::DEFAULT_MAX_SKEW, Duration::from_millis);
    Ok(Some(Auth {
        key,
        previous_key,
        max_skew,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, addrs: &[(&str, &str)]) -> Interface {
        Interface {
            name: name.into(),
            addrs: addrs
                .iter()
                .map(|(a, m)| (a.parse().unwrap(), m.parse().unwrap()))
                .collect(),
            addrs6: vec![],
            up: true,
            running: true,
            loopback: name == "lo",
            mac: Some([2, 0, 0, 0, 0, 1]),
        }
    }

    fn host() -> Vec<Interface> {
        let mut eth0 = iface("eth0", &[("192.168.3.35", "255.255.255.0")]);
        eth0.addrs6 = vec![
            ("fe80::1".parse().unwrap(), 64),
            ("2001:db8:3::35".parse().unwrap(), 64),
        ];
        vec![
            iface("lo", &[("127.0.0.1", "255.0.0.0")]),
            eth0,
            iface("eth1", &[("10.1.0.7", "255.255.0.0")]),
        ]
    }

    fn enabled(yaml_tail: &str) -> Result<Config, ConfigError> {
        let raw = RawSection::parse(
            &format!("floating_ip:\n  enabled: true\n{yaml_tail}"),
            "/etc/floatip/gateway.yml",
        )?;
        match resolve(&raw, Path::new("/etc/floatip/gateway.yml"), &host())? {
            Loaded::Enabled(c) => Ok(*c),
            Loaded::Disabled => panic!("disabled"),
        }
    }

    fn key_of(err: ConfigError) -> String {
        match err {
            ConfigError::Key { key, .. } => key,
            other => panic!("expected key error, got {other:?}"),
        }
    }

    #[test]
    fn seed_defaults() {
        let c = enabled("").unwrap();
        assert_eq!(c.interface, "eth0");
        assert_eq!(c.node_addr, Ipv4Addr::new(192, 168, 3, 35));
        assert_eq!(c.vip, Ipv4Addr::new(192, 168, 3, 234));
        assert_eq!(c.netmask.addr(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.echo.port, 61111);
        assert_eq!(c.echo.dial_timeout, Duration::from_secs(10));
        assert_eq!(c.echo.timeout, Duration::from_secs(10));
        assert_eq!(c.echo.interval, Duration::from_secs(1));
        assert_eq!(c.priority, Priority(100));
        assert!(!c.preempt);
        assert_eq!(c.preempt_delay, Duration::ZERO);
        assert_eq!(c.garp_refresh, None);
        assert_eq!(c.status_socket, PathBuf::from(DEFAULT_STATUS_SOCKET));
        assert_eq!(c.auto_detected, vec!["interface", "netmask", "ip"]);
        assert_eq!(c.segment.announce_to(), Ipv4Addr::new(192, 168, 3, 255));
    }

    #[test]
    fn check_says_what_an_unauthenticated_group_trusts() {
        let text = enabled("  echo:\n    port: 7000\n").unwrap().describe();
        let line = text.lines().find(|l| l.starts_with("auth:")).unwrap();
        assert!(
            line.ends_with("off; unauthenticated: any host that can reach eth0 port 7000 can move the address; set floating_ip.auth.key_file"),
            "{line}"
        );
    }

    #[test]
    fn reload_applies_priority_keys_and_checks_but_not_identity() {
        let old = enabled("").unwrap();
        let live = enabled(
            "  echo:\n    timeout_in_ms: 20000\n  preempt: true\n  priority: 7\n  garp_refresh_in_ms: 5000\n",
        )
        .unwrap();
        assert!(old.needs_restart_for(&live).is_empty());
        assert_eq!(
            old.applied_live(&live),
            vec![
                "priority",
                "preempt",
                "echo.timeout_in_ms",
                "garp_refresh_in_ms"
            ]
        );
        let moved = enabled("  ip: 192.168.3.200\n  priority: 7\n  echo:\n    port: 7000\n    interval_in_ms: 500\n  metrics:\n    listen: 127.0.0.1:9797\n").unwrap();
        assert_eq!(
            old.needs_restart_for(&moved),
            vec!["ip", "echo.port", "echo.interval_in_ms", "metrics.listen"]
        );
        // What a reload runs: the new priority, the old address, port and interval.
        let running = old.reloaded(moved.clone());
        assert_eq!(running.priority.0, 7);
        assert_eq!((running.vip, &running.echo), (old.vip, &old.echo));
        assert_eq!(running.metrics, None);
        assert!(running.needs_restart_for(&old).is_empty());
    }

    #[test]
    fn metrics_are_off_by_default_and_loopback_unless_allowed() {
        assert_eq!(enabled("").unwrap().metrics, None);
        let on = enabled("  metrics:\n    listen: 127.0.0.1:9797\n").unwrap();
        assert_eq!(
            on.metrics.map(|m| m.listen.to_string()),
            Some("127.0.0.1:9797".into())
        );
        let remote = "  metrics:\n    listen: 192.0.2.11:9797\n";
        let e = enabled(remote).unwrap_err().to_string();
        assert_eq!(e, "/etc/floatip/gateway.yml: floating_ip.metrics.listen: 192.0.2.11:9797 is not a loopback address; set floating_ip.metrics.allow_remote: true to serve it beyond this host");
        let allowed = enabled("  metrics:\n    listen: 192.0.2.11:9797\n    allow_remote: true\n");
        assert!(allowed.unwrap().metrics.is_some_and(|m| m.allow_remote));
        let e = enabled("  metrics:\n    listen: localhost\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "/etc/floatip/gateway.yml: floating_ip.metrics.listen: \"localhost\" is not"
            ),
            "{e}"
        );
        let e = enabled("  metrics: 9797\n").unwrap_err().to_string();
        assert!(e.contains("floating_ip.metrics: expected a mapping"), "{e}");
    }

    #[test]
    fn disabled_needs_no_interface() {
        let raw = RawSection::parse("floating_ip:\n  enabled: false\n", "f").unwrap();
        assert_eq!(
            resolve(&raw, Path::new("f"), &[]).unwrap(),
            Loaded::Disabled
        );
    }

    #[test]
    fn explicit_values_win() {
        let c = enabled("  interface: eth1\n  ip: 10.1.200.9\n  netmask: 255.255.0.0\n  garp_refresh_in_ms: 0\n").unwrap();
        assert_eq!(c.interface, "eth1");
        assert_eq!(c.node_addr, Ipv4Addr::new(10, 1, 0, 7));
        assert_eq!(c.vip, Ipv4Addr::new(10, 1, 200, 9));
        assert_eq!(c.netmask.prefix_len(), 16);
        assert!(c.auto_detected.is_empty());
        assert_eq!(c.garp_refresh, None);
    }

    #[test]
    fn netmask_falls_back_to_class_c_when_interface_mask_is_odd() {
        let raw = RawSection::parse("floating_ip:\n  enabled: true\n", "f").unwrap();
        let ifs = vec![iface("eth0", &[("192.0.2.11", "255.0.255.0")])];
        let Loaded::Enabled(c) = resolve(&raw, Path::new("f"), &ifs).unwrap() else {
            panic!()
        };
        assert_eq!(c.netmask, Netmask::default());
    }

    #[test]
    fn stale_vip_on_the_interface_is_not_the_node_address() {
        let raw = RawSection::parse("floating_ip:\n  enabled: true\n", "f").unwrap();
        let ifs = vec![iface(
            "eth0",
            &[
                ("192.0.2.234", "255.255.255.0"),
                ("192.0.2.11", "255.255.255.0"),
            ],
        )];
        let Loaded::Enabled(c) = resolve(&raw, Path::new("f"), &ifs).unwrap() else {
            panic!()
        };
        assert_eq!(c.node_addr, Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(c.vip, Ipv4Addr::new(192, 0, 2, 234));
    }

    #[test]
    fn unknown_interface_lists_available() {
        let err = enabled("  interface: eth9\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/floatip/gateway.yml: floating_ip.interface: eth9 not found; available: lo, eth0, eth1"
        );
    }

    #[test]
    fn no_usable_interface() {
        let raw = RawSection::parse("floating_ip:\n  enabled: true\n", "f").unwrap();
        let err = resolve(
            &raw,
            Path::new("f"),
            &[iface("lo", &[("127.0.0.1", "255.0.0.0")])],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("set floating_ip.interface"),
            "{err}"
        );
    }

    #[test]
    fn bad_addresses_name_the_key() {
        for (tail, key, reason) in [
            (
                "  ip: 192.168.4.234\n",
                "floating_ip.ip",
                "outside eth0's subnet 192.168.3.0/24",
            ),
            ("  ip: 192.168.3.35\n", "floating_ip.ip", "own address"),
            ("  ip: 192.168.3.255\n", "floating_ip.ip", "broadcast"),
            ("  ip: 192.168.3.0\n", "floating_ip.ip", "network"),
            (
                "  netmask: 255.0.255.0\n",
                "floating_ip.netmask",
                "contiguous",
            ),
            (
                "  echo:\n    interval_in_ms: 1000\n    timeout_in_ms: 1500\n",
                "floating_ip.echo.timeout_in_ms",
                "twice",
            ),
        ] {
            let err = enabled(tail).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(reason), "{tail:?}: {msg}");
            assert_eq!(key_of(err), key, "{tail:?}");
        }
    }

    #[test]
    fn several_addresses_ipv6_with_a_default_prefix() {
        let c =
            enabled("  ip: [192.168.3.234, 2001:db8:3::234, \"2001:db8:3::235/80\"]\n").unwrap();
        assert_eq!(c.vip, Ipv4Addr::new(192, 168, 3, 234));
        let shown: Vec<String> = c.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "192.168.3.234/24",
                "2001:db8:3::234/64",
                "2001:db8:3::235/80"
            ]
        );
        assert_eq!(
            c.address_list(),
            "192.168.3.234, 2001:db8:3::234/64, 2001:db8:3::235/80"
        );
        let line = c.describe();
        assert!(
            line.contains(
                "ip:                     192.168.3.234, 2001:db8:3::234/64, 2001:db8:3::235/80\n"
            ),
            "{line}"
        );
        // The list is part of the group's identity: a reload cannot change it.
        let single = enabled("  ip: 192.168.3.234\n").unwrap();
        assert_eq!(single.needs_restart_for(&c), vec!["ip"]);
        assert_eq!(single.address_list(), "192.168.3.234");
    }

    #[test]
    fn bad_address_lists_are_one_line_naming_the_key() {
        for (tail, key, reason) in [
            (
                "  ip: 2001:db8:4::234\n",
                "floating_ip.ip",
                "2001:db8:4::234 is outside eth0's IPv6 prefixes 2001:db8:3::/64",
            ),
            (
                "  ip: [192.168.3.234, 2001:db8:4::234]\n",
                "floating_ip.ip",
                "2001:db8:4::234 is outside eth0's IPv6 prefixes 2001:db8:3::/64",
            ),
            (
                "  ip: [192.168.3.234, 192.168.4.234]\n",
                "floating_ip.ip",
                "192.168.4.234 is outside eth0's subnet 192.168.3.0/24",
            ),
            (
                "  ip: 2001:db8:3::234/64\n  netmask: 255.255.255.0\n",
                "floating_ip.netmask",
                "255.255.255.0 applies to IPv4 addresses only and floating_ip.ip has none",
            ),
            (
                "  interface: eth1\n  ip: [10.1.0.234, 2001:db8:3::234]\n",
                "floating_ip.ip",
                "2001:db8:3::234: eth1 has no IPv6 address of its own beyond link-local",
            ),
        ] {
            let err = enabled(tail).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(reason), "{tail:?}: {msg}");
            assert!(!msg.contains('\n'), "{msg}");
            assert_eq!(key_of(err), key, "{tail:?}");
        }
    }

    fn ipv6_only_host() -> Vec<Interface> {
        let mut eth0 = iface("eth0", &[]);
        eth0.addrs6 = vec![
            ("fe80::1".parse().unwrap(), 64),
            ("2001:db8:3::234".parse().unwrap(), 64),
            ("2001:db8:3::35".parse().unwrap(), 64),
        ];
        vec![iface("lo", &[("127.0.0.1", "255.0.0.0")]), eth0]
    }

    fn on_ipv6_only_host(yaml_tail: &str) -> Result<Config, ConfigError> {
        let raw = RawSection::parse(
            &format!("floating_ip:\n  enabled: true\n{yaml_tail}"),
            "/etc/floatip/gateway.yml",
        )?;
        match resolve(
            &raw,
            Path::new("/etc/floatip/gateway.yml"),
            &ipv6_only_host(),
        )? {
            Loaded::Enabled(c) => Ok(*c),
            Loaded::Disabled => panic!("disabled"),
        }
    }

    #[test]
    fn an_ipv6_only_group_runs_its_heartbeat_over_ipv6() {
        let c = on_ipv6_only_host("  ip: [2001:db8:3::234, 2001:db8:3::235/64]\n").unwrap();
        assert_eq!(c.interface, "eth0");
        // The stale copy of the floating address is not the node's own address.
        assert_eq!(c.node_addr, "2001:db8:3::35".parse::<IpAddr>().unwrap());
        assert_eq!(c.vip, "2001:db8:3::234".parse::<IpAddr>().unwrap());
        assert_eq!(
            c.segment,
            Segment::V6 {
                prefixes: vec![("2001:db8:3::35".parse().unwrap(), 64)]
            }
        );
        assert!(c.segment.announce_to().is_multicast());
        let check = c.describe();
        assert!(
            check.contains("node address:           2001:db8:3::35\n"),
            "{check}"
        );
        assert!(!check.contains("netmask:"), "{check}");
        // With IPv4 on the interface too, an IPv6-only list still runs over IPv6.
        let c = enabled("  ip: 2001:db8:3::234\n").unwrap();
        assert_eq!(c.node_addr, "2001:db8:3::35".parse::<IpAddr>().unwrap());
        // A dual-stack list keeps the IPv4 heartbeat.
        let c = enabled("  ip: [2001:db8:3::234, 192.168.3.234]\n").unwrap();
        assert_eq!(c.vip, Ipv4Addr::new(192, 168, 3, 234));
    }

    #[test]
    fn an_ipv6_only_interface_needs_the_ip_key() {
        let err = on_ipv6_only_host("").unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            msg,
            "/etc/floatip/gateway.yml: floating_ip.ip: eth0 has only IPv6 addresses and the default x.y.z.234 is IPv4; set floating_ip.ip to an address on its prefix, e.g. 2001:db8::234/64"
        );
        assert_eq!(key_of(err), "floating_ip.ip");
        let err = on_ipv6_only_host("  ip: 192.0.2.234\n").unwrap_err();
        assert_eq!(key_of(err), "floating_ip.interface");
        let err = on_ipv6_only_host("  ip: 2001:db8:4::234\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("outside eth0's IPv6 prefixes 2001:db8:3::/64"),
            "{err}"
        );
    }

    #[test]
    fn interface_without_own_address() {
        let raw =
            RawSection::parse("floating_ip:\n  enabled: true\n  interface: eth0\n", "f").unwrap();
        let ifs = vec![iface("eth0", &[])];
        assert_eq!(
            key_of(resolve(&raw, Path::new("f"), &ifs).unwrap_err()),
            "floating_ip.interface"
        );
    }

    #[test]
    fn netmask_helpers() {
        assert!(Netmask::new(Ipv4Addr::new(255, 255, 255, 128)).is_some());
        assert!(Netmask::new(Ipv4Addr::new(0, 0, 0, 0)).is_some());
        assert!(Netmask::new(Ipv4Addr::new(255, 255, 255, 255)).is_some());
        assert!(Netmask::new(Ipv4Addr::new(255, 255, 0, 255)).is_none());
        let m = Netmask::new(Ipv4Addr::new(255, 255, 255, 0)).unwrap();
        assert_eq!(
            m.broadcast(Ipv4Addr::new(192, 0, 2, 11)),
            Ipv4Addr::new(192, 0, 2, 255)
        );
        assert_eq!(
            m.network(Ipv4Addr::new(192, 0, 2, 11)),
            Ipv4Addr::new(192, 0, 2, 0)
        );
    }
}
