//! `floating_ip.election` and `floating_ip.etcd`: which election decides the holder and,
//! for etcd, how to reach it. Files named here are read at load time, so a daemon never
//! half-starts on a missing certificate.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::reader::{kind, Reader, MAX_MS};
use super::ConfigError;

const KNOWN_ETCD_KEYS: &[&str] = &[
    "endpoints",
    "key",
    "lease_ttl_in_ms",
    "keepalive_in_ms",
    "ca_file",
    "cert_file",
    "key_file",
    "username",
    "password_file",
];

/// Every election key lives under this prefix, so one etcd role can be granted to floatip.
pub const KEY_PREFIX: &str = "/floatip/";
const DEFAULT_TTL_MS: u64 = 2000;
/// etcd grants leases in whole seconds.
const TTL_GRANULARITY_MS: u64 = 1000;
const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;
const MAX_CERT_FILE_LEN: u64 = 1024 * 1024;

/// Who decides which node holds the address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Election {
    /// The heartbeat protocol among the group's nodes.
    #[default]
    Lan,
    /// A key under a lease in etcd: only its holder may hold the address.
    Etcd(Box<Etcd>),
}

/// The resolved `floating_ip.etcd` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Etcd {
    pub endpoints: Vec<Endpoint>,
    /// The election key, under [`KEY_PREFIX`].
    pub key: String,
    /// The lease's time to live, a whole number of seconds.
    pub lease_ttl: Duration,
    /// How often the holder renews the lease; at most a third of the TTL.
    pub keepalive: Duration,
    pub tls: Option<Tls>,
    pub user: Option<User>,
}

/// An etcd client URL: `http://host:port` or `https://host:port`, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub secure: bool,
    /// A host name, an IPv4 address or a bracketed IPv6 address.
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(url: &str) -> Result<Endpoint, String> {
        let (secure, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("{url:?} must start with http:// or https://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(format!(
                "{url:?} has no port (etcd's client port is usually 2379)"
            ));
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{url:?} has a bad port {port:?}"))?;
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => {
                !host.is_empty()
                    && host.len() <= 253
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            }
        };
        if !host_ok {
            return Err(format!(
                "{url:?} has a bad host {host:?} (a name, an IPv4 address or [IPv6])"
            ));
        }
        Ok(Endpoint {
            secure,
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// A file's contents that never appear in `Debug` output or logs, wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// TLS towards etcd: the CA that signs its certificates and, for client authentication,
/// this node's certificate and key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: Secret,
    pub identity: Option<(Secret, Secret)>,
}

/// etcd authentication by user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: Secret,
}

/// `floating_ip.election` and `floating_ip.etcd` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawElection {
    pub etcd_chosen: bool,
    pub endpoints: Vec<String>,
    pub key: Option<String>,
    pub lease_ttl_ms: Option<u64>,
    pub keepalive_ms: Option<u64>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    /// Whether an `etcd` mapping was present at all.
    pub etcd_section: bool,
}

/// Reads `floating_ip.election` and `floating_ip.etcd` from the section `r` reads.
pub(super) fn parse(r: &Reader, warnings: &mut Vec<String>) -> Result<RawElection, ConfigError> {
    let etcd_chosen = match r.string("election")?.as_deref() {
        None | Some("lan") => false,
        Some("etcd") => true,
        Some(other) => {
            return Err(r.err(
                "election",
                format!("{other:?} is not an election; use lan or etcd"),
            ))
        }
    };
    let map: &Map<String, Value> = match r.map.get("etcd") {
        None | Some(Value::Null) => {
            return Ok(RawElection {
                etcd_chosen,
                ..RawElection::default()
            })
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(r.err("etcd", format!("expected a mapping, got {}", kind(other))))
        }
    };
    let e = Reader {
        file: r.file,
        prefix: "floating_ip.etcd",
        map,
    };
    warnings.extend(e.unknown_keys(KNOWN_ETCD_KEYS));
    let endpoints = match map.get("endpoints") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => vec![one.trim().to_string()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(e.err(
                    "endpoints",
                    format!("expected a list of URLs, got {} in it", kind(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(e.err(
                "endpoints",
                format!("expected a list of URLs, got {}", kind(other)),
            ))
        }
    };
    Ok(RawElection {
        etcd_chosen,
        endpoints,
        key: e.string("key")?,
        lease_ttl_ms: e.int("lease_ttl_in_ms", TTL_GRANULARITY_MS, MAX_MS)?,
        keepalive_ms: e.int("keepalive_in_ms", 1, MAX_MS)?,
        ca_file: e.string("ca_file")?,
        cert_file: e.string("cert_file")?,
        key_file: e.string("key_file")?,
        username: e.string("username")?,
        password_file: e.string("password_file")?,
        etcd_section: true,
    })
}

/// Checks `raw` and reads the files it names (relative to `dir`, the config file's folder).
pub(super) fn resolve(
    raw: &RawElection,
    vip: IpAddr,
    dir: &Path,
    file: &str,
) -> Result<Election, ConfigError> {
    let err = |key: &str, reason: String| ConfigError::Key {
        file: file.to_string(),
        key: format!("floating_ip.{key}"),
        reason,
    };
    if !raw.etcd_chosen {
        if raw.etcd_section {
            return Err(err(
                "etcd",
                "is set but floating_ip.election is lan; set election: etcd or remove it".into(),
            ));
        }
        return Ok(Election::Lan);
    }
    if raw.endpoints.is_empty() {
        return Err(err(
            "etcd.endpoints",
            "missing: election etcd needs at least one URL, e.g. [http://192.0.2.13:2379]".into(),
        ));
    }
    let endpoints = raw
        .endpoints
        .iter()
        .map(|url| {
            url.parse::<Endpoint>()
                .map_err(|why| err("etcd.endpoints", why))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let key = raw
        .key
        .clone()
        .unwrap_or_else(|| format!("{KEY_PREFIX}{vip}"));
    if !key.starts_with(KEY_PREFIX) || key.len() == KEY_PREFIX.len() {
        return Err(err(
            "etcd.key",
            format!("{key:?} must be a key under {KEY_PREFIX}, e.g. {KEY_PREFIX}{vip}"),
        ));
    }

    let ttl_ms = raw.lease_ttl_ms.unwrap_or(DEFAULT_TTL_MS);
    if ttl_ms % TTL_GRANULARITY_MS != 0 {
        return Err(err(
            "etcd.lease_ttl_in_ms",
            format!("{ttl_ms} is not a whole number of seconds (etcd grants leases in seconds)"),
        ));
    }
    let keepalive_ms = raw.keepalive_ms.unwrap_or(ttl_ms / 3);
    if ttl_ms < 3 * keepalive_ms {
        return Err(err(
            "etcd.lease_ttl_in_ms",
            format!("{ttl_ms} must be at least three times etcd.keepalive_in_ms ({keepalive_ms})"),
        ));
    }

    let any_secure = endpoints.iter().any(|e| e.secure);
    let tls = match (&raw.ca_file, &raw.cert_file, &raw.key_file) {
        (None, None, None) if any_secure => {
            return Err(err(
                "etcd.ca_file",
                "missing: https endpoints need the CA that signs etcd's certificates".into(),
            ))
        }
        (None, None, None) => None,
        (None, _, _) => {
            return Err(err(
                "etcd.ca_file",
                "missing: cert_file and key_file need the CA too".into(),
            ))
        }
        (Some(_), Some(_), None) => {
            return Err(err(
                "etcd.key_file",
                "missing: cert_file needs its key_file".into(),
            ))
        }
        (Some(_), None, Some(_)) => {
            return Err(err(
                "etcd.cert_file",
                "missing: key_file needs its cert_file".into(),
            ))
        }
        (Some(ca), cert, key) => {
            if let Some(plain) = endpoints.iter().find(|e| !e.secure) {
                return Err(err(
                    "etcd.endpoints",
                    format!("{plain} is not https, but TLS files are set"),
                ));
            }
            let ca = read_certificate(&dir.join(ca)).map_err(|why| err("etcd.ca_file", why))?;
            let identity = match (cert, key) {
                (Some(cert), Some(key)) => Some((
                    read_certificate(&dir.join(cert)).map_err(|why| err("etcd.cert_file", why))?,
                    read_secret(&dir.join(key), "the client key")
                        .map_err(|why| err("etcd.key_file", why))?,
                )),
                _ => None,
            };
            Some(Tls { ca, identity })
        }
    };

    let user = match (&raw.username, &raw.password_file) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(err(
                "etcd.password_file",
                "missing: username needs a password_file".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                "etcd.username",
                "missing: password_file needs a username".into(),
            ))
        }
        (Some(name), Some(path)) => Some(User {
            name: name.clone(),
            password: read_secret(&dir.join(path), "etcd's password")
                .map_err(|why| err("etcd.password_file", why))?,
        }),
    };

    Ok(Election::Etcd(Box::new(Etcd {
        endpoints,
        key,
        lease_ttl: Duration::from_millis(ttl_ms),
        keepalive: Duration::from_millis(keepalive_ms),
        tls,
        user,
    })))
}

/// A PEM certificate: public, but nobody else may swap it (a swapped CA lets anyone pose as etcd).
fn read_certificate(path: &Path) -> Result<Secret, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if let Some(why) = super::trust::distrust(
        path,
        meta.permissions().mode(),
        meta.uid(),
        nix::unistd::geteuid().as_raw(),
    ) {
        return Err(format!("refused: {why}"));
    }
    if !meta.is_file() || meta.len() > MAX_CERT_FILE_LEN {
        return Err(format!("{shown} is not a certificate file (not a regular file of at most {MAX_CERT_FILE_LEN} bytes)"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    pem_checked(path, Zeroizing::new(bytes))
}

fn read_secret(path: &Path, what: &str) -> Result<Secret, String> {
    let bytes =
        crate::auth::read_secret_file(path, MAX_SECRET_FILE_LEN, &format!("it holds {what}"))?;
    if bytes.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret(bytes))
}

fn pem_checked(path: &Path, bytes: Zeroizing<Vec<u8>>) -> Result<Secret, String> {
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!(
            "{} is not PEM (no -----BEGIN line)",
            path.display()
        ));
    }
    Ok(Secret(bytes))
}

impl Etcd {
    /// Lines for `floatip check`.
    pub fn describe(&self) -> String {
        let endpoints: Vec<String> = self.endpoints.iter().map(Endpoint::to_string).collect();
        let mut s = String::new();
        s += "election:               etcd\n";
        s += &format!("etcd.endpoints:         {}\n", endpoints.join(", "));
        s += &format!("etcd.key:               {}\n", self.key);
        s += &format!("etcd.lease_ttl_in_ms:   {}\n", self.lease_ttl.as_millis());
        s += &format!("etcd.keepalive_in_ms:   {}\n", self.keepalive.as_millis());
        s += &format!(
            "etcd.tls:               {}\n",
            match &self.tls {
                None => "off",
                Some(Tls { identity: None, .. }) => "server verified",
                Some(_) => "server verified, client certificate",
            }
        );
        s += &format!(
            "etcd.username:          {}\n",
            self.user.as_ref().map_or("none", |u| u.name.as_str())
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const VIP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 234));

    fn load(yaml_tail: &str, dir: &Path) -> Result<Election, ConfigError> {
        let raw = super::super::RawSection::parse(
            &format!("floating_ip:\n  enabled: true\n{yaml_tail}"),
            "gateway.yml",
        )?;
        assert!(raw.warnings.is_empty(), "{:?}", raw.warnings);
        resolve(&raw.election, VIP, dir, "gateway.yml")
    }

    fn etcd(yaml_tail: &str) -> Etcd {
        match load(yaml_tail, Path::new("/nonexistent")) {
            Ok(Election::Etcd(e)) => *e,
            other => panic!("{yaml_tail:?}: expected etcd, got {other:?}"),
        }
    }

    fn error(yaml_tail: &str, dir: &Path) -> (String, String) {
        match load(yaml_tail, dir) {
            Err(e @ ConfigError::Key { .. }) => {
                let line = e.to_string();
                assert!(!line.contains('\n'), "{line}");
                let ConfigError::Key { key, reason, .. } = e else {
                    unreachable!()
                };
                (key, reason)
            }
            other => panic!("{yaml_tail:?}: expected a key error, got {other:?}"),
        }
    }

    #[test]
    fn lan_is_the_default() {
        assert_eq!(load("", Path::new("/")).unwrap(), Election::Lan);
        assert_eq!(
            load("  election: lan\n", Path::new("/")).unwrap(),
            Election::Lan
        );
    }

    #[test]
    fn etcd_defaults() {
        let e = etcd("  election: etcd\n  etcd:\n    endpoints: [http://192.0.2.13:2379]\n");
        assert_eq!(
            e.endpoints,
            vec![Endpoint {
                secure: false,
                host: "192.0.2.13".into(),
                port: 2379
            }]
        );
        assert_eq!(e.key, "/floatip/192.0.2.234");
        assert_eq!(e.lease_ttl, Duration::from_secs(2));
        assert_eq!(e.keepalive, Duration::from_millis(666));
        assert_eq!((e.tls, e.user), (None, None));
    }

    #[test]
    fn etcd_explicit() {
        let e = etcd(
            "  election: etcd\n  etcd:\n    endpoints: ['http://etcd-1.example:2379', 'http://[2001:db8::1]:2379/']\n    key: /floatip/db\n    lease_ttl_in_ms: 5000\n    keepalive_in_ms: 1000\n",
        );
        assert_eq!(e.endpoints[0].to_string(), "http://etcd-1.example:2379");
        assert_eq!(e.endpoints[1].to_string(), "http://[2001:db8::1]:2379");
        assert_eq!(e.key, "/floatip/db");
        assert_eq!(
            (e.lease_ttl, e.keepalive),
            (Duration::from_secs(5), Duration::from_secs(1))
        );
    }

    #[test]
    fn bad_etcd_settings_name_the_key() {
        let base = "  election: etcd\n  etcd:\n    endpoints: [http://192.0.2.13:2379]\n";
        let cases: &[(&str, &str, &str)] = &[
            ("  election: raft\n", "floating_ip.election", "lan or etcd"),
            (
                "  etcd:\n    endpoints: [http://192.0.2.13:2379]\n",
                "floating_ip.etcd",
                "election is lan",
            ),
            (
                "  election: etcd\n",
                "floating_ip.etcd.endpoints",
                "missing",
            ),
            (
                "  election: etcd\n  etcd: 5\n",
                "floating_ip.etcd",
                "a mapping",
            ),
            (
                "  election: etcd\n  etcd:\n    endpoints: [192.0.2.13:2379]\n",
                "floating_ip.etcd.endpoints",
                "http://",
            ),
            (
                "  election: etcd\n  etcd:\n    endpoints: [http://192.0.2.13]\n",
                "floating_ip.etcd.endpoints",
                "no port",
            ),
            (
                "  election: etcd\n  etcd:\n    endpoints: ['http://192.0.2.13:99999']\n",
                "floating_ip.etcd.endpoints",
                "bad port",
            ),
            (
                "  election: etcd\n  etcd:\n    endpoints: ['http://a b:2379']\n",
                "floating_ip.etcd.endpoints",
                "bad host",
            ),
            (
                "  election: etcd\n  etcd:\n    endpoints: ['http://u@h:2379/v3']\n",
                "floating_ip.etcd.endpoints",
                "bad port",
            ),
            (
                "  election: etcd\n  etcd:\n    endpoints: [1]\n",
                "floating_ip.etcd.endpoints",
                "a number",
            ),
            (
                "  election: etcd\n  etcd:\n    endpoints: [https://192.0.2.13:2379]\n",
                "floating_ip.etcd.ca_file",
                "https",
            ),
            (
                &format!("{base}    key: /other/x\n"),
                "floating_ip.etcd.key",
                "under /floatip/",
            ),
            (
                &format!("{base}    key: /floatip/\n"),
                "floating_ip.etcd.key",
                "under /floatip/",
            ),
            (
                &format!("{base}    lease_ttl_in_ms: 1500\n"),
                "floating_ip.etcd.lease_ttl_in_ms",
                "whole number of seconds",
            ),
            (
                &format!("{base}    lease_ttl_in_ms: 500\n"),
                "floating_ip.etcd.lease_ttl_in_ms",
                "out of range",
            ),
            (
                &format!("{base}    lease_ttl_in_ms: 2000\n    keepalive_in_ms: 1000\n"),
                "floating_ip.etcd.lease_ttl_in_ms",
                "three times",
            ),
            (
                &format!("{base}    username: floatip\n"),
                "floating_ip.etcd.password_file",
                "missing",
            ),
            (
                &format!("{base}    password_file: p\n"),
                "floating_ip.etcd.username",
                "missing",
            ),
            (
                &format!("{base}    cert_file: c\n"),
                "floating_ip.etcd.ca_file",
                "missing",
            ),
        ];
        for (tail, want_key, want_reason) in cases {
            let (key, reason) = error(tail, Path::new("/nonexistent"));
            assert_eq!(&key, want_key, "{tail:?}: {reason}");
            assert!(reason.contains(want_reason), "{tail:?}: {reason}");
        }
    }

    #[test]
    fn tls_and_password_files_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("floatip-etcd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            std::fs::write(dir.join(name), text).unwrap();
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode))
                .unwrap();
        };
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        write("ca.pem", pem, 0o644);
        write("client.pem", pem, 0o644);
        write(
            "client.key",
            "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n",
            0o600,
        );
        write("open.key", "x", 0o644);
        write("writable.pem", pem, 0o666);
        write("not.pem", "hello", 0o644);
        write("password", "s3cret\n", 0o600);
        let tls = "  election: etcd\n  etcd:\n    endpoints: [https://192.0.2.13:2379]\n    ca_file: ca.pem\n";
        let full = format!("{tls}    cert_file: client.pem\n    key_file: client.key\n    username: floatip\n    password_file: password\n");
        let Election::Etcd(e) = load(&full, &dir).unwrap() else {
            panic!("not etcd")
        };
        let tls_read = e.tls.as_ref().unwrap();
        assert_eq!(tls_read.ca.bytes(), pem.as_bytes());
        assert!(tls_read.identity.is_some());
        assert_eq!(e.user.as_ref().unwrap().password.bytes(), b"s3cret");
        assert!(
            !format!("{e:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );

        for (tail, want_key, want_reason) in [
            (
                format!("{tls}    cert_file: client.pem\n    key_file: open.key\n"),
                "floating_ip.etcd.key_file",
                "chmod 600",
            ),
            (
                format!("{tls}    cert_file: client.pem\n    key_file: gone.key\n"),
                "floating_ip.etcd.key_file",
                "cannot read",
            ),
            (
                tls.replace("ca.pem", "writable.pem"),
                "floating_ip.etcd.ca_file",
                "chmod go-w",
            ),
            (
                tls.replace("ca.pem", "not.pem"),
                "floating_ip.etcd.ca_file",
                "not PEM",
            ),
            (
                tls.replace("ca.pem", "missing.pem"),
                "floating_ip.etcd.ca_file",
                "cannot read",
            ),
            (
                tls.replace("https", "http"),
                "floating_ip.etcd.endpoints",
                "not https",
            ),
            (
                format!("{tls}    username: u\n    password_file: open.key\n"),
                "floating_ip.etcd.password_file",
                "chmod 600",
            ),
        ] {
            let (key, reason) = error(&tail, &dir);
            assert_eq!(key, want_key, "{tail:?}: {reason}");
            assert!(reason.contains(want_reason), "{tail:?}: {reason}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
