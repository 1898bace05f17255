//! `floating_ip.track` (service checks) and `floating_ip.notify` (state-change hooks):
//! read, checked and defaulted here, so every error names its key path
//! (`floating_ip.track[1].rise`).

use std::time::Duration;

use serde_json::Value;

use super::reader::{kind, Reader, MAX_MS};
use super::ConfigError;

const KNOWN_CHECK_KEYS: &[&str] = &[
    "name",
    "tcp",
    "http",
    "exec",
    "interval_in_ms",
    "timeout_in_ms",
    "rise",
    "fall",
    "weight",
];
const KNOWN_NOTIFY_KEYS: &[&str] = &["master", "backup", "fault", "any", "timeout_in_ms"];

pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(1000);
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_millis(1000);
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 3;
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_millis(10_000);

/// One service check (`floating_ip.track[i]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Unique among the checks; defaults to the target (`tcp 127.0.0.1:8000`).
    pub name: String,
    pub target: Target,
    /// From the start of one run to the start of the next.
    pub interval: Duration,
    /// A run that takes longer fails (an `exec` is killed).
    pub timeout: Duration,
    /// Consecutive successes that make a failed check healthy again.
    pub rise: u32,
    /// Consecutive failures that make a healthy check fail.
    pub fall: u32,
    /// `None`: failing puts the node in FAULT. `Some(w)`: failing lowers its priority by `w`.
    pub weight: Option<u8>,
}

impl Check {
    /// A TCP check of 127.0.0.1:8000 every 100 ms, rise 2, fall 3, for tests.
    #[cfg(test)]
    pub fn example(name: &str, weight: Option<u8>) -> Check {
        Check {
            name: name.into(),
            target: Target::Tcp {
                host: "127.0.0.1".into(),
                port: 8000,
            },
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(50),
            rise: 2,
            fall: 3,
            weight,
        }
    }
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A TCP connect succeeds.
    Tcp { host: String, port: u16 },
    /// `GET path` over plain HTTP/1.0 answers 2xx or 3xx.
    Http {
        host: String,
        port: u16,
        path: String,
    },
    /// The program (absolute path, no shell) exits 0.
    Exec(Vec<String>),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Tcp { .. } => "tcp",
            Target::Http { .. } => "http",
            Target::Exec(_) => "exec",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Http { host, port, path } => write!(f, "http://{host}:{port}{path}"),
            Target::Exec(argv) => f.write_str(&argv.join(" ")),
        }
    }
}

/// Hooks run, one at a time and in order, after each state change (`floating_ip.notify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub master: Option<Vec<String>>,
    pub backup: Option<Vec<String>>,
    pub fault: Option<Vec<String>>,
    /// Runs on every change with the new state and the reason appended as arguments.
    pub any: Option<Vec<String>>,
    /// A hook still running after this is killed.
    pub timeout: Duration,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            master: None,
            backup: None,
            fault: None,
            any: None,
            timeout: DEFAULT_NOTIFY_TIMEOUT,
        }
    }
}

impl Notify {
    pub fn is_empty(&self) -> bool {
        self.master.is_none() && self.backup.is_none() && self.fault.is_none() && self.any.is_none()
    }
}

/// The `track` and `notify` lines of `floatip check`.
pub(super) fn describe(track: &[Check], notify: &Notify) -> String {
    let mut s = String::new();
    if track.is_empty() {
        s += "track:                  none (only the host is followed)\n";
    }
    for c in track {
        let effect = c
            .weight
            .map_or("FAULT".to_string(), |w| format!("priority -{w}"));
        s += &format!(
            "track:                  {:?}: {} {} every {} ms, timeout {} ms, rise {} fall {}; failing means {effect}\n",
            c.name,
            c.target.kind(),
            c.target,
            c.interval.as_millis(),
            c.timeout.as_millis(),
            c.rise,
            c.fall
        );
    }
    for (what, hook) in [
        ("master", &notify.master),
        ("backup", &notify.backup),
        ("fault", &notify.fault),
        ("any", &notify.any),
    ] {
        if let Some(argv) = hook {
            s += &format!("notify.{what}:{:pad$}{argv:?}\n", "", pad = 16 - what.len());
        }
    }
    if !notify.is_empty() {
        s += &format!("notify.timeout_in_ms:   {}\n", notify.timeout.as_millis());
    }
    s
}

/// Reads `floating_ip.track` from the section reader `r`.
pub(super) fn parse_track(
    r: &Reader,
    warnings: &mut Vec<String>,
) -> Result<Vec<Check>, ConfigError> {
    let items = match r.map.get("track") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(r.err(
                "track",
                format!(
                    "expected a list of checks (- tcp: 127.0.0.1:8000), got {}",
                    kind(other)
                ),
            ))
        }
    };
    let mut checks: Vec<Check> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("{}.track[{i}]", r.prefix);
        let Value::Object(map) = item else {
            return Err(ConfigError::Key {
                file: r.file.to_string(),
                key: prefix,
                reason: format!(
                    "expected a mapping with one of tcp, http or exec, got {}",
                    kind(item)
                ),
            });
        };
        let c = Reader {
            file: r.file,
            prefix: &prefix,
            map,
        };
        let check = parse_check(&c)?;
        if let Some(j) = checks.iter().position(|o| o.name == check.name) {
            let key = if map.contains_key("name") {
                "name"
            } else {
                check.target.kind()
            };
            return Err(c.err(
                key,
                format!(
                    "check name {:?} is already used by {}.track[{j}]; set a distinct name",
                    check.name, r.prefix
                ),
            ));
        }
        warnings.extend(c.unknown_keys(KNOWN_CHECK_KEYS));
        checks.push(check);
    }
    Ok(checks)
}

fn parse_check(c: &Reader) -> Result<Check, ConfigError> {
    let present: Vec<&str> = ["tcp", "http", "exec"]
        .into_iter()
        .filter(|k| c.map.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    let target = match present.as_slice() {
        [] => {
            return Err(ConfigError::Key {
                file: c.file.to_string(),
                key: c.prefix.to_string(),
                reason: "needs one of tcp, http or exec".into(),
            })
        }
        ["tcp"] => {
            let s = c.string("tcp")?.unwrap_or_default();
            let (host, port) = host_port(&s).map_err(|why| {
                c.err(
                    "tcp",
                    format!("{s:?}: {why}; write host:port, e.g. 127.0.0.1:8000"),
                )
            })?;
            Target::Tcp { host, port }
        }
        ["http"] => {
            let s = c.string("http")?.unwrap_or_default();
            parse_http_url(&s).map_err(|why| c.err("http", format!("{s:?}: {why}")))?
        }
        [_exec] => Target::Exec(argv(c, "exec")?.unwrap_or_default()),
        [first, second, ..] => {
            return Err(c.err(
                second,
                format!("set only one of tcp, http or exec per check (also has {first})"),
            ))
        }
    };
    let ms = Duration::from_millis;
    let interval = c
        .int("interval_in_ms", 10, MAX_MS)?
        .map_or(DEFAULT_CHECK_INTERVAL, ms);
    let timeout = c
        .int("timeout_in_ms", 1, MAX_MS)?
        .map_or(DEFAULT_CHECK_TIMEOUT.min(interval), ms);
    let rise = c.int("rise", 1, 100)?.map_or(DEFAULT_RISE, |v| v as u32);
    let fall = c.int("fall", 1, 100)?.map_or(DEFAULT_FALL, |v| v as u32);
    let weight = c.int("weight", 1, 253)?.map(|v| v as u8);
    let name = c
        .string("name")?
        .unwrap_or_else(|| format!("{} {target}", target.kind()));
    Ok(Check {
        name,
        target,
        interval,
        timeout,
        rise,
        fall,
        weight,
    })
}

/// Reads `floating_ip.notify` from the section reader `r`.
pub(super) fn parse_notify(r: &Reader, warnings: &mut Vec<String>) -> Result<Notify, ConfigError> {
    let map = match r.map.get("notify") {
        None | Some(Value::Null) => return Ok(Notify::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(r.err(
                "notify",
                format!(
                    "expected a mapping (master, backup, fault, any), got {}",
                    kind(other)
                ),
            ))
        }
    };
    let prefix = format!("{}.notify", r.prefix);
    let n = Reader {
        file: r.file,
        prefix: &prefix,
        map,
    };
    let notify = Notify {
        master: argv(&n, "master")?,
        backup: argv(&n, "backup")?,
        fault: argv(&n, "fault")?,
        any: argv(&n, "any")?,
        timeout: n
            .int("timeout_in_ms", 1, MAX_MS)?
            .map_or(DEFAULT_NOTIFY_TIMEOUT, Duration::from_millis),
    };
    warnings.extend(n.unknown_keys(KNOWN_NOTIFY_KEYS));
    Ok(notify)
}

/// An argv list: non-empty strings, the program an absolute path (no shell, no `$PATH`).
fn argv(r: &Reader, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let list = match r.map.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(Value::String(s)) => {
            return Err(r.err(
                key,
                format!("expected a list of arguments, got the string {s:?}; write [\"/path/to/program\", \"arg\"] (no shell is used)"),
            ))
        }
        Some(other) => return Err(r.err(key, format!("expected a list of arguments, got {}", kind(other)))),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        match v {
            Value::String(s) if !s.is_empty() && !s.contains('\0') => out.push(s.clone()),
            Value::String(_) => return Err(r.err(&format!("{key}[{i}]"), "must not be empty")),
            Value::Number(n) => out.push(n.to_string()),
            other => {
                return Err(r.err(
                    &format!("{key}[{i}]"),
                    format!("expected a string, got {}", kind(other)),
                ))
            }
        }
    }
    match out.first() {
        None => Err(r.err(key, "must name a program: [\"/path/to/program\", ...]")),
        Some(p) if !p.starts_with('/') => Err(r.err(
            &format!("{key}[0]"),
            format!("{p:?} must be an absolute path (no shell and no $PATH lookup are used), e.g. /usr/bin/{p}"),
        )),
        Some(_) => Ok(Some(out)),
    }
}

/// `host:port`; the host is a name or an IPv4 address.
fn host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or("no port")?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("port {port:?} is not 1..=65535"))?;
    if host.is_empty() {
        return Err("no host".into());
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err(format!("host {host:?} is not a host name or IPv4 address"));
    }
    Ok((host.to_string(), port))
}

/// `http://host[:port][/path]`: plain HTTP only.
fn parse_http_url(s: &str) -> Result<Target, String> {
    if s.starts_with("https://") {
        return Err(
            "https is not supported: check the service's plain-HTTP port, or use an exec check"
                .into(),
        );
    }
    let rest = s.strip_prefix("http://").ok_or("must start with http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("the path must not contain spaces or control characters".into());
    }
    let (host, port) = if authority.contains(':') {
        host_port(authority)?
    } else {
        host_port(&format!("{authority}:80"))?
    };
    Ok(Target::Http {
        host,
        port,
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::RawSection;
    use super::*;

    fn parse(tail: &str) -> Result<RawSection, ConfigError> {
        RawSection::parse(
            &format!("floating_ip:\n  enabled: true\n{tail}"),
            "gateway.yml",
        )
    }

    fn key_error(tail: &str) -> (String, String) {
        match parse(tail) {
            Err(ConfigError::Key { key, reason, .. }) => (key, reason),
            other => panic!("expected a key error for {tail:?}, got {other:?}"),
        }
    }

    #[test]
    fn no_track_no_notify() {
        let raw = parse("").unwrap();
        assert!(raw.track.is_empty());
        assert_eq!(raw.notify, Notify::default());
        assert!(raw.notify.is_empty());
    }

    #[test]
    fn checks_read_with_defaults() {
        let raw = parse(
            "  track:\n    - tcp: 127.0.0.1:8000\n    - name: gateway-http\n      http: http://127.0.0.1:8000/health\n      interval_in_ms: 200\n      timeout_in_ms: 150\n      rise: 3\n      fall: 2\n      weight: 60\n    - exec: [/usr/local/bin/check, --quick, 5]\n      interval_in_ms: 500\n    - http: http://localhost\n",
        )
        .unwrap();
        assert!(raw.warnings.is_empty(), "{:?}", raw.warnings);
        assert_eq!(
            raw.track[0],
            Check {
                name: "tcp 127.0.0.1:8000".into(),
                target: Target::Tcp {
                    host: "127.0.0.1".into(),
                    port: 8000
                },
                interval: DEFAULT_CHECK_INTERVAL,
                timeout: DEFAULT_CHECK_TIMEOUT,
                rise: DEFAULT_RISE,
                fall: DEFAULT_FALL,
                weight: None,
            }
        );
        assert_eq!(
            raw.track[1],
            Check {
                name: "gateway-http".into(),
                target: Target::Http {
                    host: "127.0.0.1".into(),
                    port: 8000,
                    path: "/health".into()
                },
                interval: Duration::from_millis(200),
                timeout: Duration::from_millis(150),
                rise: 3,
                fall: 2,
                weight: Some(60),
            }
        );
        assert_eq!(
            raw.track[2].target,
            Target::Exec(vec![
                "/usr/local/bin/check".into(),
                "--quick".into(),
                "5".into()
            ])
        );
        assert_eq!(raw.track[2].name, "exec /usr/local/bin/check --quick 5");
        assert_eq!(
            raw.track[2].timeout,
            Duration::from_millis(500),
            "timeout defaults to at most the interval"
        );
        assert_eq!(
            raw.track[3].target,
            Target::Http {
                host: "localhost".into(),
                port: 80,
                path: "/".into()
            }
        );
        assert_eq!(raw.track[3].name, "http http://localhost:80/");
    }

    #[test]
    fn notify_read_with_defaults() {
        let raw = parse(
            "  notify:\n    master: [/usr/bin/logger, became master]\n    any: [/bin/sh, -c, 'echo $FLOATIP_STATE >> /tmp/x']\n    timeout_in_ms: 2000\n",
        )
        .unwrap();
        assert_eq!(
            raw.notify.master,
            Some(vec![
                "/usr/bin/logger".to_string(),
                "became master".to_string()
            ])
        );
        assert_eq!(raw.notify.backup, None);
        assert_eq!(raw.notify.fault, None);
        assert_eq!(raw.notify.any.as_ref().map(|a| a.len()), Some(3));
        assert_eq!(raw.notify.timeout, Duration::from_millis(2000));
        let raw = parse("  notify:\n    fault: [/bin/true]\n").unwrap();
        assert_eq!(raw.notify.timeout, DEFAULT_NOTIFY_TIMEOUT);
    }

    #[test]
    fn unknown_check_and_notify_keys_are_reported() {
        let raw = parse(
            "  track:\n    - tcp: a:1\n      falls: 2\n  notify:\n    on_master: [/bin/true]\n",
        )
        .unwrap();
        assert_eq!(
            raw.warnings,
            vec![
                "gateway.yml: unknown key floating_ip.track[0].falls (did you mean floating_ip.track[0].fall?)".to_string(),
                "gateway.yml: unknown key floating_ip.notify.on_master (did you mean floating_ip.notify.master?)".to_string(),
            ]
        );
    }

    #[test]
    fn every_error_names_its_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("  track: 5\n", "floating_ip.track", "a list of checks"),
            (
                "  track: {tcp: 'a:1'}\n",
                "floating_ip.track",
                "a list of checks",
            ),
            (
                "  track:\n    - tcp: a:1\n    - 7\n",
                "floating_ip.track[1]",
                "a mapping",
            ),
            (
                "  track:\n    - name: x\n",
                "floating_ip.track[0]",
                "one of tcp, http or exec",
            ),
            (
                "  track:\n    - tcp: a:1\n      http: http://a/\n",
                "floating_ip.track[0].http",
                "only one of",
            ),
            (
                "  track:\n    - tcp: 8000\n",
                "floating_ip.track[0].tcp",
                "a number",
            ),
            (
                "  track:\n    - tcp: localhost\n",
                "floating_ip.track[0].tcp",
                "no port",
            ),
            (
                "  track:\n    - tcp: ':80'\n",
                "floating_ip.track[0].tcp",
                "no host",
            ),
            (
                "  track:\n    - tcp: a:0\n",
                "floating_ip.track[0].tcp",
                "not 1..=65535",
            ),
            (
                "  track:\n    - tcp: a:70000\n",
                "floating_ip.track[0].tcp",
                "not 1..=65535",
            ),
            (
                "  track:\n    - tcp: 'a b:80'\n",
                "floating_ip.track[0].tcp",
                "not a host name",
            ),
            (
                "  track:\n    - tcp: ''\n",
                "floating_ip.track[0].tcp",
                "empty",
            ),
            (
                "  track:\n    - http: https://a/\n",
                "floating_ip.track[0].http",
                "https is not supported",
            ),
            (
                "  track:\n    - http: a:80/x\n",
                "floating_ip.track[0].http",
                "http://",
            ),
            (
                "  track:\n    - http: 'http://a/x y'\n",
                "floating_ip.track[0].http",
                "spaces",
            ),
            (
                "  track:\n    - http: 'http://:80/'\n",
                "floating_ip.track[0].http",
                "no host",
            ),
            (
                "  track:\n    - http: 'http://a:x/'\n",
                "floating_ip.track[0].http",
                "port",
            ),
            (
                "  track:\n    - exec: /bin/true\n",
                "floating_ip.track[0].exec",
                "got the string",
            ),
            (
                "  track:\n    - exec: []\n",
                "floating_ip.track[0].exec",
                "must name a program",
            ),
            (
                "  track:\n    - exec: [true]\n",
                "floating_ip.track[0].exec[0]",
                "a boolean",
            ),
            (
                "  track:\n    - exec: [check.sh]\n",
                "floating_ip.track[0].exec[0]",
                "absolute path",
            ),
            (
                "  track:\n    - exec: [/bin/x, '']\n",
                "floating_ip.track[0].exec[1]",
                "empty",
            ),
            (
                "  track:\n    - exec: [/bin/x, [a]]\n",
                "floating_ip.track[0].exec[1]",
                "a list",
            ),
            (
                "  track:\n    - tcp: a:1\n      interval_in_ms: 5\n",
                "floating_ip.track[0].interval_in_ms",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      interval_in_ms: 9999999\n",
                "floating_ip.track[0].interval_in_ms",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      timeout_in_ms: 0\n",
                "floating_ip.track[0].timeout_in_ms",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      timeout_in_ms: fast\n",
                "floating_ip.track[0].timeout_in_ms",
                "a string",
            ),
            (
                "  track:\n    - tcp: a:1\n    - tcp: a:2\n      rise: 0\n",
                "floating_ip.track[1].rise",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      rise: 101\n",
                "floating_ip.track[0].rise",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      fall: 0\n",
                "floating_ip.track[0].fall",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      fall: -1\n",
                "floating_ip.track[0].fall",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      weight: 0\n",
                "floating_ip.track[0].weight",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      weight: 254\n",
                "floating_ip.track[0].weight",
                "out of range",
            ),
            (
                "  track:\n    - tcp: a:1\n      name: ''\n",
                "floating_ip.track[0].name",
                "empty",
            ),
            (
                "  track:\n    - tcp: a:1\n      name: [x]\n",
                "floating_ip.track[0].name",
                "a list",
            ),
            (
                "  track:\n    - tcp: a:1\n      name: x\n    - tcp: a:2\n      name: x\n",
                "floating_ip.track[1].name",
                "already used by floating_ip.track[0]",
            ),
            (
                "  track:\n    - tcp: a:1\n    - tcp: a:1\n",
                "floating_ip.track[1].tcp",
                "already used by floating_ip.track[0]",
            ),
            ("  notify: [/bin/true]\n", "floating_ip.notify", "a mapping"),
            (
                "  notify:\n    master: /bin/true\n",
                "floating_ip.notify.master",
                "got the string",
            ),
            (
                "  notify:\n    backup: 5\n",
                "floating_ip.notify.backup",
                "a number",
            ),
            (
                "  notify:\n    fault: []\n",
                "floating_ip.notify.fault",
                "must name a program",
            ),
            (
                "  notify:\n    any: [notify.sh]\n",
                "floating_ip.notify.any[0]",
                "absolute path",
            ),
            (
                "  notify:\n    any: [/bin/x, {a: 1}]\n",
                "floating_ip.notify.any[1]",
                "a mapping",
            ),
            (
                "  notify:\n    timeout_in_ms: 0\n",
                "floating_ip.notify.timeout_in_ms",
                "out of range",
            ),
            (
                "  notify:\n    timeout_in_ms: 99999999\n",
                "floating_ip.notify.timeout_in_ms",
                "out of range",
            ),
        ];
        for (tail, want_key, want_reason) in cases {
            let (key, reason) = key_error(tail);
            assert_eq!(&key, want_key, "for {tail:?}: {reason}");
            assert!(reason.contains(want_reason), "for {tail:?}: {reason}");
        }
    }

    #[test]
    fn targets_display() {
        assert_eq!(
            Target::Tcp {
                host: "a".into(),
                port: 1
            }
            .to_string(),
            "a:1"
        );
        assert_eq!(
            Target::Http {
                host: "a".into(),
                port: 8000,
                path: "/h".into()
            }
            .to_string(),
            "http://a:8000/h"
        );
        assert_eq!(
            Target::Exec(vec!["/bin/x".into(), "-q".into()]).to_string(),
            "/bin/x -q"
        );
    }
}
