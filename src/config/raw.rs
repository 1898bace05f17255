//! The `floating_ip` section as typed optional values, each checked for type and range.
//!
//! The YAML is read into a generic tree first so that every error can name the exact
//! key (`floating_ip.echo.port`), which a derived deserializer cannot.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::Value;

use super::reader::{kind, Reader, MAX_MS};
use super::ConfigError;

/// Keys of `floating_ip`, as written in the file (user-facing spelling).
const KNOWN_KEYS: &[&str] = &[
    "enabled",
    "interface",
    "ip",
    "netmask",
    "priority",
    "preempt",
    "preempt_delay_in_ms",
    "echo",
    "echo_port",
    "garp_refresh_in_ms",
    "status_socket",
    "auth",
    "track",
    "notify",
    "metrics",
    "election",
    "etcd",
];
const KNOWN_METRICS_KEYS: &[&str] = &["listen", "allow_remote"];
const KNOWN_AUTH_KEYS: &[&str] = &[
    "key_file",
    "key",
    "previous_key_file",
    "previous_key",
    "max_clock_skew_in_ms",
];
const KNOWN_ECHO_KEYS: &[&str] = &[
    "port",
    "dial_timeout_in_ms",
    "timeout_in_ms",
    "interval_in_ms",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSection {
    pub enabled: bool,
    pub interface: Option<String>,
    /// `floating_ip.ip`: each address with the prefix written after it, if any; empty
    /// when unset (the default `x.y.z.234`).
    pub ip: Vec<(IpAddr, Option<u8>)>,
    pub netmask: Option<Ipv4Addr>,
    pub priority: Option<u8>,
    pub preempt: Option<bool>,
    pub preempt_delay_ms: Option<u64>,
    pub echo_port: Option<u16>,
    pub dial_timeout_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub interval_ms: Option<u64>,
    pub garp_refresh_ms: Option<u64>,
    pub status_socket: Option<String>,
    pub auth: RawAuth,
    /// `floating_ip.track`: the service checks, defaults applied.
    pub track: Vec<super::Check>,
    /// `floating_ip.notify`: hooks run on state changes.
    pub notify: super::Notify,
    /// `floating_ip.metrics`: the Prometheus endpoint, off when absent.
    pub metrics: Option<super::Metrics>,
    /// `floating_ip.election` and `floating_ip.etcd`.
    pub election: super::etcd::RawElection,
    /// Unknown keys inside `floating_ip`, one line each with the closest known key:
    /// `floatip check` fails on them, `floatip run` logs them and goes on.
    pub warnings: Vec<String>,
}

/// `floating_ip.auth`: where the group's key comes from (read by `resolve`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawAuth {
    pub key_file: Option<String>,
    pub key: Option<String>,
    pub previous_key_file: Option<String>,
    pub previous_key: Option<String>,
    pub max_clock_skew_ms: Option<u64>,
}

impl RawAuth {
    /// The key (`key` or `previous_key`) written into the config itself rather than a file.
    pub fn inline_key(&self) -> Option<&'static str> {
        [("key", &self.key), ("previous_key", &self.previous_key)]
            .into_iter()
            .find(|(_, k)| k.is_some())
            .map(|(name, _)| name)
    }
}

/// Interface names go into command lines: allow only what kernels allow and shells don't interpret.
pub fn valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl RawSection {
    /// Parses a whole `gateway.yml`; only `floating_ip` is read, other sections are ignored.
    pub fn parse(text: &str, file: &str) -> Result<RawSection, ConfigError> {
        let doc: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
                file: file.to_string(),
                reason: first_line(&e.to_string()),
            })?
        };
        let section = match &doc {
            Value::Object(top) => top.get("floating_ip"),
            Value::Null => None,
            other => {
                return Err(ConfigError::Syntax {
                    file: file.to_string(),
                    reason: format!("the top level must be a mapping, got {}", kind(other)),
                })
            }
        };
        let map = match section {
            None | Some(Value::Null) => {
                return Err(ConfigError::Key {
                    file: file.to_string(),
                    key: "floating_ip".into(),
                    reason: "section missing; add `floating_ip: {enabled: true}`".into(),
                })
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(ConfigError::Key {
                    file: file.to_string(),
                    key: "floating_ip".into(),
                    reason: format!("expected a mapping, got {}", kind(other)),
                })
            }
        };
        let r = Reader {
            file,
            prefix: "floating_ip",
            map,
        };
        let mut raw = RawSection {
            enabled: r.bool("enabled")?.unwrap_or(false),
            interface: r.string("interface")?,
            ip: parse_ips(&r)?,
            netmask: r.ipv4("netmask")?,
            priority: r.int("priority", 1, 254)?.map(|p| p as u8),
            preempt: r.bool("preempt")?,
            preempt_delay_ms: r.int("preempt_delay_in_ms", 0, MAX_MS)?,
            garp_refresh_ms: r.int("garp_refresh_in_ms", 0, MAX_MS)?,
            status_socket: r.string("status_socket")?,
            warnings: r.unknown_keys(KNOWN_KEYS),
            ..RawSection::default()
        };
        if let Some(name) = &raw.interface {
            if !valid_interface_name(name) {
                return Err(r.err(
                    "interface",
                    format!("{name:?} is not a valid interface name"),
                ));
            }
        }
        let old_port = r.int("echo_port", 1, 65535)?.map(|p| p as u16);
        match map.get("echo") {
            None | Some(Value::Null) => raw.echo_port = old_port,
            Some(Value::Object(echo)) => {
                let e = Reader {
                    file,
                    prefix: "floating_ip.echo",
                    map: echo,
                };
                let port = e.int("port", 1, 65535)?.map(|p| p as u16);
                if let (Some(new), Some(old)) = (port, old_port) {
                    if new != old {
                        return Err(e.err(
                            "port",
                            format!("{new} contradicts floating_ip.echo_port {old}; keep one"),
                        ));
                    }
                }
                raw.echo_port = port.or(old_port);
                raw.dial_timeout_ms = e.int("dial_timeout_in_ms", 1, MAX_MS)?;
                raw.timeout_ms = e.int("timeout_in_ms", 1, MAX_MS)?;
                raw.interval_ms = e.int("interval_in_ms", 1, MAX_MS)?;
                raw.warnings.extend(e.unknown_keys(KNOWN_ECHO_KEYS));
            }
            Some(other) => {
                return Err(r.err("echo", format!("expected a mapping, got {}", kind(other))))
            }
        }
        match map.get("auth") {
            None | Some(Value::Null) => {}
            Some(Value::Object(auth)) => {
                let a = Reader {
                    file,
                    prefix: "floating_ip.auth",
                    map: auth,
                };
                raw.auth = RawAuth {
                    key_file: a.string("key_file")?,
                    key: a.string("key")?,
                    previous_key_file: a.string("previous_key_file")?,
                    previous_key: a.string("previous_key")?,
                    max_clock_skew_ms: a.int("max_clock_skew_in_ms", 100, MAX_MS)?,
                };
                raw.warnings.extend(a.unknown_keys(KNOWN_AUTH_KEYS));
                let ra = &raw.auth;
                if ra.key_file.is_some() && ra.key.is_some() {
                    return Err(a.err(
                        "key",
                        "set either floating_ip.auth.key_file or floating_ip.auth.key, not both",
                    ));
                }
                if ra.previous_key_file.is_some() && ra.previous_key.is_some() {
                    return Err(a.err(
                        "previous_key",
                        "set either previous_key_file or previous_key, not both",
                    ));
                }
                if ra.key_file.is_none() && ra.key.is_none() {
                    return Err(a.err(
                        "key_file",
                        "missing: the group's key is required when floating_ip.auth is present",
                    ));
                }
            }
            Some(other) => {
                return Err(r.err("auth", format!("expected a mapping, got {}", kind(other))))
            }
        }
        raw.metrics = parse_metrics(&r, &mut raw.warnings)?;
        raw.track = super::track::parse_track(&r, &mut raw.warnings)?;
        raw.notify = super::track::parse_notify(&r, &mut raw.warnings)?;
        raw.election = super::etcd::parse(&r, &mut raw.warnings)?;
        Ok(raw)
    }
}

/// `floating_ip.ip`: one address or a list; IPv6 with an optional `/prefix`. Each must be a
/// unicast address a host may hold, and none may be listed twice.
fn parse_ips(r: &Reader) -> Result<Vec<(IpAddr, Option<u8>)>, ConfigError> {
    let texts: Vec<&str> = match r.map.get("ip") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(r.err("ip", "the list is empty; give at least one address"))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(r.err("ip", format!("expected an address, got {}", kind(other)))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(r.err(
                "ip",
                format!("expected an address or a list of them, got {}", kind(other)),
            ))
        }
    };
    let mut ips: Vec<(IpAddr, Option<u8>)> = Vec::new();
    for text in texts {
        let (ip, prefix) = parse_ip(text.trim()).map_err(|why| r.err("ip", why))?;
        if ips.iter().any(|(seen, _)| *seen == ip) {
            return Err(r.err("ip", format!("{ip} is listed twice")));
        }
        ips.push((ip, prefix));
    }
    Ok(ips)
}

/// `192.0.2.234`, `2001:db8::234` or `2001:db8::234/64`; the reason when it is none of them.
fn parse_ip(text: &str) -> Result<(IpAddr, Option<u8>), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address"))?;
    let prefix = match (ip, prefix) {
        (_, None) => None,
        (IpAddr::V4(_), Some(_)) => {
            return Err(format!(
                "{text}: an IPv4 address takes its mask from floating_ip.netmask; write {addr}"
            ))
        }
        (IpAddr::V6(_), Some(p)) => match p.parse::<u8>() {
            Ok(n) if (1..=128).contains(&n) => Some(n),
            _ => return Err(format!("{text}: prefix /{p} is out of range 1..=128")),
        },
    };
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => crate::vocabulary::is_link_local6(v6),
    };
    if link_local {
        return Err(format!(
            "{ip} is link-local; a floating address must be routable on the LAN's subnet"
        ));
    }
    if ip.is_multicast() {
        return Err(format!(
            "{ip} is multicast; a floating address must be unicast"
        ));
    }
    if ip.is_unspecified() || ip.is_loopback() {
        return Err(format!("{ip} cannot be held by a host; give a LAN address"));
    }
    Ok((ip, prefix))
}

/// `floating_ip.metrics`: off unless `listen` is set; a remote `listen` needs `allow_remote`.
fn parse_metrics(
    r: &Reader,
    warnings: &mut Vec<String>,
) -> Result<Option<super::Metrics>, ConfigError> {
    let map = match r.map.get("metrics") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(r.err(
                "metrics",
                format!("expected a mapping, got {}", kind(other)),
            ))
        }
    };
    let m = Reader {
        file: r.file,
        prefix: "floating_ip.metrics",
        map,
    };
    warnings.extend(m.unknown_keys(KNOWN_METRICS_KEYS));
    let allow_remote = m.bool("allow_remote")?.unwrap_or(false);
    let Some(text) = m.string("listen")? else {
        return Ok(None);
    };
    let listen: SocketAddr = text.parse().map_err(|_| {
        m.err(
            "listen",
            format!("{text:?} is not an address:port such as 127.0.0.1:9797"),
        )
    })?;
    if !listen.ip().is_loopback() && !allow_remote {
        return Err(m.err(
            "listen",
            format!("{listen} is not a loopback address; set floating_ip.metrics.allow_remote: true to serve it beyond this host"),
        ));
    }
    Ok(Some(super::Metrics {
        listen,
        allow_remote,
    }))
}

/// The parser's message as one line, without its advice to programmers.
fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    line.split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(line)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reader::closest;

    fn parse(yaml: &str) -> Result<RawSection, ConfigError> {
        RawSection::parse(yaml, "gateway.yml")
    }

    fn key_error(yaml: &str) -> (String, String) {
        match parse(yaml) {
            Err(ConfigError::Key { key, reason, .. }) => (key, reason),
            other => panic!("expected a key error, got {other:?}"),
        }
    }

    #[test]
    fn zero_config_beside_other_sections() {
        let raw = parse(
            "elasticsearch:\n  - name: prod\n    hosts: [a]\nfloating_ip:\n  enabled: true\n",
        )
        .unwrap();
        assert!(raw.enabled);
        assert_eq!(
            raw,
            RawSection {
                enabled: true,
                ..RawSection::default()
            }
        );
    }

    #[test]
    fn ip_is_one_address_or_a_list() {
        let ips = |yaml: &str| parse(&format!("floating_ip:\n  ip: {yaml}\n")).unwrap().ip;
        let v6: IpAddr = "2001:db8::234".parse().unwrap();
        let v4: IpAddr = "192.0.2.234".parse().unwrap();
        assert_eq!(ips("2001:db8::234"), vec![(v6, None)]);
        assert_eq!(ips("2001:db8::234/80"), vec![(v6, Some(80))]);
        assert_eq!(
            ips("[192.0.2.234, 2001:db8::234/64]"),
            vec![(v4, None), (v6, Some(64))]
        );
        assert_eq!(
            ips("\n    - 192.0.2.234\n    - \"2001:db8::234\""),
            vec![(v4, None), (v6, None)]
        );
    }

    #[test]
    fn all_keys_read() {
        let raw = parse(
            "floating_ip:\n  enabled: true\n  interface: en1\n  ip: 192.168.3.234\n  netmask: 255.255.255.0\n  priority: 150\n  preempt: true\n  preempt_delay_in_ms: 2000\n  garp_refresh_in_ms: 30000\n  status_socket: /tmp/x.sock\n  echo:\n    port: 7000\n    dial_timeout_in_ms: 500\n    timeout_in_ms: 3000\n    interval_in_ms: 100\n",
        )
        .unwrap();
        assert_eq!(raw.interface.as_deref(), Some("en1"));
        assert_eq!(raw.ip, vec![(Ipv4Addr::new(192, 168, 3, 234).into(), None)]);
        assert_eq!(raw.netmask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(raw.priority, Some(150));
        assert_eq!(raw.preempt, Some(true));
        assert_eq!(raw.preempt_delay_ms, Some(2000));
        assert_eq!(raw.garp_refresh_ms, Some(30000));
        assert_eq!(raw.echo_port, Some(7000));
        assert_eq!(raw.dial_timeout_ms, Some(500));
        assert_eq!(raw.timeout_ms, Some(3000));
        assert_eq!(raw.interval_ms, Some(100));
        assert_eq!(raw.status_socket.as_deref(), Some("/tmp/x.sock"));
        assert!(raw.warnings.is_empty());
    }

    #[test]
    fn disabled_by_default() {
        assert!(!parse("floating_ip:\n  ip: 192.0.2.234\n").unwrap().enabled);
    }

    #[test]
    fn yaml_11_booleans_accepted() {
        assert!(parse("floating_ip:\n  enabled: yes\n").unwrap().enabled);
        assert!(!parse("floating_ip:\n  enabled: 'off'\n").unwrap().enabled);
    }

    #[test]
    fn old_echo_port_spelling() {
        assert_eq!(
            parse("floating_ip:\n  echo_port: 7001\n")
                .unwrap()
                .echo_port,
            Some(7001)
        );
        assert_eq!(
            parse("floating_ip:\n  echo_port: 7001\n  echo:\n    port: 7001\n")
                .unwrap()
                .echo_port,
            Some(7001)
        );
        let (key, reason) = key_error("floating_ip:\n  echo_port: 7001\n  echo:\n    port: 7002\n");
        assert_eq!(key, "floating_ip.echo.port");
        assert!(reason.contains("contradicts"), "{reason}");
    }

    #[test]
    fn unknown_keys_name_the_path_and_the_closest_key() {
        let raw = parse(
            "floating_ip:\n  enabled: true\n  preemt: true\n  colour: red\n  echo:\n    intervall_in_ms: 5\n  auth:\n    key_fil: /k\n    key_file: /k\nother:\n  preemt: 1\n",
        )
        .unwrap();
        assert_eq!(
            raw.warnings,
            vec![
                "gateway.yml: unknown key floating_ip.colour (known keys here: enabled, interface, ip, netmask, priority, preempt, preempt_delay_in_ms, echo, echo_port, garp_refresh_in_ms, status_socket, auth, track, notify, metrics, election, etcd)".to_string(),
                "gateway.yml: unknown key floating_ip.preemt (did you mean floating_ip.preempt?)".to_string(),
                "gateway.yml: unknown key floating_ip.echo.intervall_in_ms (did you mean floating_ip.echo.interval_in_ms?)".to_string(),
                "gateway.yml: unknown key floating_ip.auth.key_fil (did you mean floating_ip.auth.key_file?)".to_string(),
            ],
            "sections outside floating_ip are not read"
        );
        assert_eq!(raw.interval_ms, None, "the misspelt key is not applied");
    }

    #[test]
    fn closest_key() {
        assert_eq!(closest("Enabled", KNOWN_KEYS), Some("enabled"));
        assert_eq!(
            closest("intervall_in_ms", KNOWN_ECHO_KEYS),
            Some("interval_in_ms")
        );
        assert_eq!(
            closest("timout_in_ms", KNOWN_ECHO_KEYS),
            Some("timeout_in_ms")
        );
        assert_eq!(closest("xyz", KNOWN_ECHO_KEYS), None);
        assert_eq!(closest("colour", KNOWN_KEYS), None);
    }

    #[test]
    fn errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "floating_ip:\n  enabled: maybe\n",
                "floating_ip.enabled",
                "true or false",
            ),
            (
                "floating_ip:\n  enabled: 1\n",
                "floating_ip.enabled",
                "a number",
            ),
            (
                "floating_ip:\n  echo:\n    port: 70000\n",
                "floating_ip.echo.port",
                "out of range",
            ),
            (
                "floating_ip:\n  echo:\n    port: 0\n",
                "floating_ip.echo.port",
                "out of range",
            ),
            (
                "floating_ip:\n  echo:\n    port: abc\n",
                "floating_ip.echo.port",
                "a string",
            ),
            (
                "floating_ip:\n  echo_port: -1\n",
                "floating_ip.echo_port",
                "out of range",
            ),
            (
                "floating_ip:\n  echo:\n    timeout_in_ms: 0\n",
                "floating_ip.echo.timeout_in_ms",
                "out of range",
            ),
            (
                "floating_ip:\n  echo:\n    interval_in_ms: 1.5\n",
                "floating_ip.echo.interval_in_ms",
                "out of range",
            ),
            (
                "floating_ip:\n  echo:\n    dial_timeout_in_ms: 99999999\n",
                "floating_ip.echo.dial_timeout_in_ms",
                "out of range",
            ),
            ("floating_ip:\n  echo: 5\n", "floating_ip.echo", "a mapping"),
            (
                "floating_ip:\n  ip: 192.168.3.300\n",
                "floating_ip.ip",
                "not an IPv4",
            ),
            (
                "floating_ip:\n  ip: [1]\n",
                "floating_ip.ip",
                "got a number",
            ),
            (
                "floating_ip:\n  ip: []\n",
                "floating_ip.ip",
                "list is empty",
            ),
            (
                "floating_ip:\n  ip: {a: 1}\n",
                "floating_ip.ip",
                "or a list",
            ),
            (
                "floating_ip:\n  ip: 2001:db8::234/129\n",
                "floating_ip.ip",
                "2001:db8::234/129: prefix /129 is out of range 1..=128",
            ),
            (
                "floating_ip:\n  ip: 2001:db8::234/0\n",
                "floating_ip.ip",
                "out of range",
            ),
            (
                "floating_ip:\n  ip: 192.0.2.234/24\n",
                "floating_ip.ip",
                "takes its mask from floating_ip.netmask",
            ),
            (
                "floating_ip:\n  ip: fe80::234\n",
                "floating_ip.ip",
                "fe80::234 is link-local",
            ),
            (
                "floating_ip:\n  ip: ff02::1:ff00:234\n",
                "floating_ip.ip",
                "ff02::1:ff00:234 is multicast",
            ),
            (
                "floating_ip:\n  ip: 224.0.0.18\n",
                "floating_ip.ip",
                "multicast",
            ),
            (
                "floating_ip:\n  ip: [192.0.2.234, 2001:db8::234/64, 2001:db8::234]\n",
                "floating_ip.ip",
                "2001:db8::234 is listed twice",
            ),
            (
                "floating_ip:\n  netmask: fff\n",
                "floating_ip.netmask",
                "not an IPv4",
            ),
            (
                "floating_ip:\n  priority: 0\n",
                "floating_ip.priority",
                "out of range",
            ),
            (
                "floating_ip:\n  priority: 255\n",
                "floating_ip.priority",
                "out of range",
            ),
            (
                "floating_ip:\n  preempt: sometimes\n",
                "floating_ip.preempt",
                "true or false",
            ),
            (
                "floating_ip:\n  interface: 'eth0; rm -rf /'\n",
                "floating_ip.interface",
                "not a valid interface",
            ),
            (
                "floating_ip:\n  interface: '$(reboot)'\n",
                "floating_ip.interface",
                "not a valid interface",
            ),
            (
                "floating_ip:\n  interface: averyveryverylongname0\n",
                "floating_ip.interface",
                "not a valid interface",
            ),
            (
                "floating_ip:\n  interface: ''\n",
                "floating_ip.interface",
                "empty",
            ),
            ("floating_ip: true\n", "floating_ip", "a mapping"),
            ("other: 1\n", "floating_ip", "section missing"),
        ];
        for (yaml, want_key, want_reason) in cases {
            let (key, reason) = key_error(yaml);
            assert_eq!(&key, want_key, "for {yaml:?}");
            assert!(reason.contains(want_reason), "for {yaml:?}: {reason}");
        }
    }

    #[test]
    fn syntax_errors_are_one_line() {
        for yaml in [
            "floating_ip: [1\n",
            "floating_ip:\n  enabled: true\n  enabled: false\n",
            "- a\n- b\n",
        ] {
            match parse(yaml) {
                Err(e @ ConfigError::Syntax { .. }) => {
                    let msg = e.to_string();
                    assert!(!msg.contains('\n'), "{msg}");
                    assert!(msg.starts_with("gateway.yml: "), "{msg}");
                }
                other => panic!("{yaml:?}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn empty_file_is_missing_section() {
        assert!(matches!(parse(""), Err(ConfigError::Key { key, .. }) if key == "floating_ip"));
    }

    #[test]
    fn interface_names() {
        for ok in ["eth0", "en1", "enp0s31f6", "br-lan.10", "wlan_0"] {
            assert!(valid_interface_name(ok), "{ok}");
        }
        for bad in [
            "",
            "eth0:1",
            "a b",
            "eth0;ls",
            "x/y",
            "0123456789abcdef",
            "é",
        ] {
            assert!(!valid_interface_name(bad), "{bad}");
        }
    }
}
