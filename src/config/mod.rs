//! `gateway.yml` → a fully resolved, typed [`Config`], or an error naming the key and the file.
//!
//! Reading is split in two pure steps: [`raw`] extracts the `floating_ip` section into
//! typed optional values (checking types and ranges), [`resolve`] applies the seed's
//! defaults against the host's interfaces (passed in, so it is testable without a host).

mod etcd;
mod raw;
mod reader;
mod resolve;
mod track;
mod trust;

pub use resolve::DEFAULT_STATUS_SOCKET;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::state::{Me, Timing};
use crate::vocabulary::{BootId, Floating, Netmask, Priority, Segment};

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

/// Heartbeat timings and port (`floating_ip.echo.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    pub port: u16,
    pub dial_timeout: Duration,
    /// Silence from the holder for this long starts a take-over (the detection time).
    pub timeout: Duration,
    pub interval: Duration,
}

/// The Prometheus endpoint (`floating_ip.metrics.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub listen: SocketAddr,
    /// Set when `listen` may be a non-loopback address.
    pub allow_remote: bool,
}

/// The resolved configuration of an enabled floating IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: PathBuf,
    pub interface: String,
    /// This host's own address on `interface`; identifies the node to its peers.
    pub node_addr: IpAddr,
    /// The floating address the heartbeat dials and names: the first of `addresses` in
    /// the heartbeat's family (`node_addr`'s).
    pub vip: IpAddr,
    /// Where the heartbeat runs: who is heard, where announces go.
    pub segment: Segment,
    /// Every floating address of the group, in the order written; held together.
    pub addresses: Vec<Floating>,
    /// The netmask of the IPv4 floating addresses.
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
    /// The Prometheus endpoint; `None` serves none.
    pub metrics: Option<Metrics>,
    /// Who decides the holder (`floating_ip.election`, `floating_ip.etcd`).
    pub election: Election,
    /// What was defaulted rather than set, for `floatip check`.
    pub auto_detected: Vec<&'static str>,
}

impl Config {
    /// A valid configuration for tests: node 192.0.2.11, floating IP 192.0.2.234.
    #[cfg(test)]
    pub fn example() -> Config {
        Config {
            source: "/etc/floatip/gateway.yml".into(),
            interface: "eth0".into(),
            node_addr: IpAddr::from([192, 0, 2, 11]),
            vip: IpAddr::from([192, 0, 2, 234]),
            segment: Segment::V4 {
                node: [192, 0, 2, 11].into(),
                netmask: Netmask::default(),
            },
            addresses: vec![Floating::V4([192, 0, 2, 234].into(), Netmask::default())],
            netmask: Netmask::default(),
            echo: Echo {
                port: 61111,
                dial_timeout: Duration::from_secs(1),
                timeout: Duration::from_millis(300),
                interval: Duration::from_millis(100),
            },
            priority: Priority(100),
            preempt: false,
            preempt_delay: Duration::ZERO,
            garp_refresh: None,
            status_socket: "/tmp/x".into(),
            auth: None,
            track: vec![],
            notify: Default::default(),
            metrics: None,
            election: Election::Lan,
            auto_detected: vec![],
        }
    }

    /// Keys whose change a running daemon cannot apply in place (SIGHUP): they are fixed
    /// into its sockets and threads. Everything else is applied live.
    pub fn needs_restart_for(&self, new: &Config) -> Vec<&'static str> {
        let metrics = |c: &Config| c.metrics.as_ref().map(|m| m.listen);
        changed(&[
            ("ip", self.addresses != new.addresses),
            ("interface", self.interface != new.interface),
            ("netmask", self.netmask != new.netmask),
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
            ("metrics.listen", metrics(self) != metrics(new)),
            ("election", self.election != new.election),
        ])
    }

    /// Keys a reload applies to the running daemon, of those that differ in `new`.
    pub fn applied_live(&self, new: &Config) -> Vec<&'static str> {
        changed(&[
            ("priority", self.priority != new.priority),
            ("preempt", self.preempt != new.preempt),
            (
                "preempt_delay_in_ms",
                self.preempt_delay != new.preempt_delay,
            ),
            ("echo.timeout_in_ms", self.echo.timeout != new.echo.timeout),
            ("garp_refresh_in_ms", self.garp_refresh != new.garp_refresh),
            ("auth", self.auth != new.auth),
            ("track", self.track != new.track),
            ("notify", self.notify != new.notify),
        ])
    }

    /// `new` with the keys that need a restart kept as they run now: what a reload applies.
    pub fn reloaded(&self, new: Config) -> Config {
        Config {
            source: self.source.clone(),
            interface: self.interface.clone(),
            node_addr: self.node_addr,
            vip: self.vip,
            segment: self.segment.clone(),
            addresses: self.addresses.clone(),
            netmask: self.netmask,
            echo: Echo {
                timeout: new.echo.timeout,
                ..self.echo.clone()
            },
            status_socket: self.status_socket.clone(),
            metrics: self.metrics.clone(),
            election: self.election.clone(),
            ..new
        }
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
        s += &format!(
            "ip:                     {}{}\n",
            self.address_list(),
            auto("ip")
        );
        if self.addresses.iter().any(|a| matches!(a, Floating::V4(..))) {
            s += &format!(
                "netmask:                {}{}\n",
                self.netmask,
                auto("netmask")
            );
        }
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
        let metrics = self.metrics.as_ref().map_or("off".to_string(), |m| {
            format!("http://{}/metrics", m.listen)
        });
        s += &format!("metrics:                {metrics}\n");
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

    /// The floating addresses as an operator writes them: IPv4 bare (its mask is
    /// `netmask`), IPv6 with its prefix.
    pub fn written_addresses(&self) -> Vec<String> {
        self.addresses
            .iter()
            .map(|a| match a {
                Floating::V4(ip, _) => ip.to_string(),
                Floating::V6(..) => a.to_string(),
            })
            .collect()
    }

    /// [`Config::written_addresses`] on one line: `192.0.2.234, 2001:db8::234/64`.
    pub fn address_list(&self) -> String {
        self.written_addresses().join(", ")
    }

    /// This node as the state machine knows it, in its run `boot`.
    pub fn me(&self, boot: BootId) -> Me {
        Me {
            node: self.node_addr,
            boot,
            priority: self.priority,
        }
    }

    /// The durations the state machine runs on.
    pub fn timing(&self) -> Timing {
        Timing {
            interval: self.echo.interval,
            timeout: self.echo.timeout,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            garp_refresh: self.garp_refresh,
            confirm_claims: self.auth.is_none(),
        }
    }
}

fn changed(keys: &[(&'static str, bool)]) -> Vec<&'static str> {
    keys.iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| *key)
        .collect()
}

/// What a configuration file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Disabled,
    Enabled(Box<Config>),
}

impl Loaded {
    /// The configuration; a disabled floating IP is an error here (a reload cannot stop it).
    pub fn enabled(self, path: &Path) -> Result<Config, ConfigError> {
        match self {
            Loaded::Enabled(c) => Ok(*c),
            Loaded::Disabled => Err(ConfigError::Key {
                file: path.display().to_string(),
                key: "floating_ip.enabled".into(),
                reason: "is false".into(),
            }),
        }
    }
}

/// Every way a configuration can be wrong; each names the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read")]
    Unreadable {
        file: String,
        #[source]
        error: std::io::Error,
    },
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
    /// Keys `floatip check` does not know, one line each.
    #[error("{}", .0.join("; "))]
    UnknownKeys(Vec<String>),
}

/// Reads and resolves `path` against the host's interfaces, and checks that only root (or
/// floatip's user) controls what it runs. Returns the unknown keys found, one line each.
pub fn load(
    path: &Path,
    interfaces: &[crate::vocabulary::Interface],
) -> Result<(Loaded, Vec<String>), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Unreadable {
        file: file.clone(),
        error,
    })?;
    let raw = RawSection::parse(&text, &file)?;
    let loaded = resolve(&raw, path, interfaces)?;
    if let Loaded::Enabled(config) = &loaded {
        trust::check(config, raw.auth.inline_key())?;
    }
    Ok((loaded, raw.warnings))
}
