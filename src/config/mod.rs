//! `gateway.yml` → a fully resolved, typed [`Config`], or an error naming the key and the file.
//!
//! Reading is split in two pure steps: [`raw`] extracts the `floating_ip` section into
//! typed optional values (checking types and ranges), [`resolve`] applies the seed's
//! defaults against the host's interfaces (passed in, so it is testable without a host).

mod etcd;
mod raw;
mod resolve;
mod track;
mod trust;

pub use resolve::DEFAULT_STATUS_SOCKET;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use etcd::{Election, Endpoint, Etcd, Secret, Tls, User, KEY_PREFIX};
pub use raw::{RawAuth, RawSection};
pub use resolve::resolve;
pub use track::{Check, Notify, Target};

/// Where `floatip` looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/floatip/gateway.yml";
/// Default heartbeat port of the original gateway.
pub const DEFAULT_ECHO_PORT: u16 = 61111;
/// Last octet of the default floating IP (`x.y.z.234`).
pub const DEFAULT_VIP_LAST_OCTET: u8 = 234;

/// A VRRP-style priority, 1..=254; higher wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub u8);

impl Priority {
    pub const DEFAULT: Priority = Priority(100);
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An IPv4 netmask known to be contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netmask(Ipv4Addr);

impl Netmask {
    /// `None` when the ones are not contiguous (e.g. 255.0.255.0).
    pub fn new(mask: Ipv4Addr) -> Option<Netmask> {
        let bits = u32::from(mask);
        (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(Netmask(mask))
    }
    pub fn addr(self) -> Ipv4Addr {
        self.0
    }
    pub fn prefix_len(self) -> u8 {
        u32::from(self.0).leading_ones() as u8
    }
    pub fn network(self, ip: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(ip) & u32::from(self.0))
    }
    pub fn broadcast(self, ip: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(ip) | !u32::from(self.0))
    }
    pub fn same_subnet(self, a: Ipv4Addr, b: Ipv4Addr) -> bool {
        self.network(a) == self.network(b)
    }
}

impl Default for Netmask {
    fn default() -> Self {
        Netmask(Ipv4Addr::new(255, 255, 255, 0))
    }
}

impl std::fmt::Display for Netmask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Heartbeat timings and port (`floating_ip.echo.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    pub port: u16,
    pub dial_timeout: Duration,
    /// Silence from the holder for this long starts a take-over (the detection time).
    pub timeout: Duration,
    pub interval: Duration,
}

/// The resolved configuration of an enabled floating IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: PathBuf,
    pub interface: String,
    /// This host's own address on `interface`; identifies the node to its peers.
    pub node_addr: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub netmask: Netmask,
    pub echo: Echo,
    pub priority: Priority,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub garp_refresh: Option<Duration>,
    /// Unix socket where `floatip status` finds the daemon.
    pub status_socket: PathBuf,
    /// The group's heartbeat key (`floating_ip.auth`); `None` runs unauthenticated.
    pub auth: Option<crate::auth::Auth>,
    /// Service checks (`floating_ip.track`); empty: only the host is followed.
    pub track: Vec<Check>,
    /// State-change hooks (`floating_ip.notify`).
    pub notify: Notify,
    /// Who decides the holder (`floating_ip.election`, `floating_ip.etcd`).
    pub election: Election,
    /// What was defaulted rather than set, for `floatip check`.
    pub auto_detected: Vec<&'static str>,
}

impl Config {
    pub fn broadcast(&self) -> Ipv4Addr {
        self.netmask.broadcast(self.node_addr)
    }

    /// Keys whose change a running daemon cannot apply in place (SIGHUP): they are fixed
    /// into its sockets, threads or identity. Only the detection timeout, preemption and
    /// the ARP refresh can change under a running daemon.
    pub fn needs_restart_for(&self, new: &Config) -> Vec<&'static str> {
        let checks: [(&'static str, bool); 12] = [
            ("ip", self.vip != new.vip),
            ("interface", self.interface != new.interface),
            ("netmask", self.netmask != new.netmask),
            ("priority", self.priority != new.priority),
            ("echo.port", self.echo.port != new.echo.port),
            (
                "echo.interval_in_ms",
                self.echo.interval != new.echo.interval,
            ),
            (
                "echo.dial_timeout_in_ms",
                self.echo.dial_timeout != new.echo.dial_timeout,
            ),
            ("status_socket", self.status_socket != new.status_socket),
            ("auth", self.auth != new.auth),
            ("track", self.track != new.track),
            ("notify", self.notify != new.notify),
            ("election", self.election != new.election),
        ];
        checks
            .iter()
            .filter(|(_, changed)| *changed)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Human-readable, fully resolved configuration (for `floatip check`).
    pub fn describe(&self) -> String {
        let auto = |key: &str| {
            if self.auto_detected.contains(&key) {
                "  (auto-detected)"
            } else {
                ""
            }
        };
        let ms = |d: Duration| d.as_millis();
        let mut s = String::new();
        s += &format!("config file:            {}\n", self.source.display());
        s += &format!(
            "interface:              {}{}\n",
            self.interface,
            auto("interface")
        );
        s += &format!("node address:           {}\n", self.node_addr);
        s += &format!("ip:                     {}{}\n", self.vip, auto("ip"));
        s += &format!(
            "netmask:                {}{}\n",
            self.netmask,
            auto("netmask")
        );
        s += &format!("priority:               {}\n", self.priority);
        s += &format!("preempt:                {}\n", self.preempt);
        s += &format!("preempt_delay_in_ms:    {}\n", ms(self.preempt_delay));
        s += &format!("echo.port:              {}\n", self.echo.port);
        s += &format!("echo.interval_in_ms:    {}\n", ms(self.echo.interval));
        s += &format!("echo.timeout_in_ms:     {}\n", ms(self.echo.timeout));
        s += &format!("echo.dial_timeout_in_ms: {}\n", ms(self.echo.dial_timeout));
        let refresh = self
            .garp_refresh
            .map_or("off".to_string(), |d| ms(d).to_string());
        s += &format!("garp_refresh_in_ms:     {refresh}\n");
        s += &format!("status_socket:          {}\n", self.status_socket.display());
        s += &match &self.auth {
            None => format!(
                "auth:                   off; unauthenticated: any host that can reach {} port {} can move the address; set floating_ip.auth.key_file\n",
                self.interface, self.echo.port
            ),
            Some(a) => format!(
                "auth:                   key {}{}, max_clock_skew_in_ms {}\n",
                a.key.fingerprint(),
                a.previous_key.as_ref().map_or(String::new(), |p| format!(" (also accepting {})", p.fingerprint())),
                ms(a.max_skew)
            ),
        };
        s += &track::describe(&self.track, &self.notify);
        if let Election::Etcd(etcd) = &self.election {
            s += &etcd.describe();
        }
        s
    }
}

/// What a configuration file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Disabled,
    Enabled(Box<Config>),
}

/// Every way a configuration can be wrong; each names the file and, where there is one, the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{file}: cannot read: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: not valid YAML: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: {key}: {reason}")]
    Key {
        file: String,
        key: String,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Environment { file: String, reason: String },
}

/// Reads and resolves `path` against the host's interfaces, and checks that only root (or
/// floatip's user) controls what it runs. Returns the unknown keys found, one line each.
pub fn load(
    path: &Path,
    interfaces: &[crate::net::Interface],
) -> Result<(Loaded, Vec<String>), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    let raw = RawSection::parse(&text, &file)?;
    let loaded = resolve(&raw, path, interfaces)?;
    if let Loaded::Enabled(config) = &loaded {
        trust::check(config, &raw.auth)?;
    }
    Ok((loaded, raw.warnings))
}
