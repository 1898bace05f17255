//! What the bench compares (daemons, settings, scenarios) and what it records.

use std::collections::BTreeMap;
use std::time::Duration;

use floatip_lab::floatip::ms;
use serde::{Deserialize, Serialize};

use super::daemons::Floating;

// ----- what is compared ----------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Daemon {
    /// floatip with its LAN election (the default).
    Floatip,
    /// floatip with `election: etcd`, against a one-member etcd on lab node e1.
    #[serde(rename = "floatip-etcd")]
    FloatipEtcd,
    Keepalived,
    Ucarp,
}

impl Daemon {
    pub const ALL: [Daemon; 4] = [
        Daemon::Floatip,
        Daemon::FloatipEtcd,
        Daemon::Keepalived,
        Daemon::Ucarp,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Floatip => "floatip",
            Daemon::FloatipEtcd => "floatip-etcd",
            Daemon::Keepalived => "keepalived",
            Daemon::Ucarp => "ucarp",
        }
    }
    pub fn color(self) -> &'static str {
        match self {
            Daemon::Floatip => "#2b8a3e",
            Daemon::FloatipEtcd => "#8fd19e",
            Daemon::Keepalived => "#1c7ed6",
            Daemon::Ucarp => "#e8590c",
        }
    }
    /// The lab nodes a run of this daemon needs (n1 and n2 run the daemon).
    pub fn nodes(self) -> &'static [&'static str] {
        match self {
            Daemon::FloatipEtcd => &["n1", "n2", "e1"],
            _ => &["n1", "n2"],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    /// 1 s adverts, 3 s detection.
    OneSec,
    /// 100 ms adverts, 300 ms detection (ucarp cannot: advbase ≥ 1 s).
    Fast,
    /// floatip's fast setting: a 10 ms heartbeat, 50 ms detection (only
    /// floatip goes that low; it is compared with keepalived at 0.1 s).
    #[serde(rename = "10ms")]
    TenMs,
}

impl Setting {
    pub const ALL: [Setting; 3] = [Setting::OneSec, Setting::Fast, Setting::TenMs];
    pub fn name(self) -> &'static str {
        match self {
            Setting::OneSec => "1s",
            Setting::Fast => "fast",
            Setting::TenMs => "10ms",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Setting::OneSec => "1 s adverts, ~3 s detection",
            Setting::Fast => "100 ms adverts, ~300 ms detection",
            Setting::TenMs => "10 ms heartbeat, 50 ms detection (floatip only)",
        }
    }
    pub fn interval(self) -> Duration {
        match self {
            Setting::OneSec => ms(1000),
            Setting::Fast => ms(100),
            Setting::TenMs => ms(10),
        }
    }
    /// The detection budget: floatip's timeout_in_ms, 3 × the advert
    /// interval for VRRP/CARP (plus their skew).
    pub fn detection(self) -> Duration {
        match self {
            Setting::TenMs => ms(50),
            _ => self.interval() * 3,
        }
    }
    /// floatip-etcd's lease: the detection budget in whole seconds (etcd
    /// grants leases in seconds).
    pub fn lease_ttl(self) -> Duration {
        Duration::from_secs(self.detection().as_millis().div_ceil(1000).max(1) as u64)
    }
    /// How long the partition lasts: twice the detection budget plus 1 s,
    /// so that every daemon's backup has taken over well before it heals
    /// (ucarp's and keepalived's skew included), and at least the etcd lease
    /// plus 1 s (floatip-etcd's n2 takes over once the lease expired).
    pub fn partition_length(self) -> Duration {
        (self.detection() * 2 + ms(1000)).max(self.lease_ttl() + ms(1000))
    }
    /// The setting keepalived is compared with in the ratios: the same one,
    /// or for the 10 ms setting keepalived's fastest (0.1 s).
    pub fn keepalived_peer(self) -> Setting {
        match self {
            Setting::TenMs => Setting::Fast,
            s => s,
        }
    }
    pub fn keepalived_advert(self) -> &'static str {
        match self {
            Setting::OneSec => "1",
            Setting::Fast | Setting::TenMs => "0.1",
        }
    }
    pub fn supports(self, d: Daemon) -> bool {
        match self {
            Setting::OneSec => true,
            Setting::Fast => d != Daemon::Ucarp,
            Setting::TenMs => d == Daemon::Floatip,
        }
    }
    /// Whether the bench runs scenario `sc` for `d` at this setting.
    pub fn runs(self, d: Daemon, sc: Scenario) -> bool {
        self.supports(d) && sc.applies(d) && (self != Setting::TenMs || sc == Scenario::LinkCut)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Sigterm,
    Sigkill,
    /// SIGKILL, then `floatip release` at once (floatip only).
    SigkillRelease,
    Freeze,
    LinkCut,
    Partition,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Sigterm,
        Scenario::Sigkill,
        Scenario::SigkillRelease,
        Scenario::Freeze,
        Scenario::LinkCut,
        Scenario::Partition,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Sigterm => "sigterm",
            Scenario::Sigkill => "sigkill",
            Scenario::SigkillRelease => "sigkill_release",
            Scenario::Freeze => "freeze",
            Scenario::LinkCut => "link_cut",
            Scenario::Partition => "partition",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Scenario::Sigterm => "planned stop (SIGTERM)",
            Scenario::Sigkill => "crash (SIGKILL)",
            Scenario::SigkillRelease => "crash (SIGKILL) + `floatip release`",
            Scenario::Freeze => "freeze (SIGSTOP … SIGCONT)",
            Scenario::LinkCut => "link cut … restore",
            Scenario::Partition => "heartbeat partition … heal",
        }
    }
    pub fn applies(self, d: Daemon) -> bool {
        match d {
            Daemon::Floatip => true,
            // The election's own tests cover the rest; the bench compares partitions.
            Daemon::FloatipEtcd => self == Scenario::Partition,
            Daemon::Keepalived | Daemon::Ucarp => self != Scenario::SigkillRelease,
        }
    }
    /// Scenarios with a second phase (the fault is undone).
    pub fn restores(self) -> bool {
        matches!(
            self,
            Scenario::Freeze | Scenario::LinkCut | Scenario::Partition
        )
    }
}

// ----- results -------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub daemon: Daemon,
    pub setting: Setting,
    pub scenario: Scenario,
    pub rep: usize,
    /// Wall-clock time of the fault (ms since the epoch), to match daemon logs.
    pub fault_unix_ms: u64,
    /// Start-up attempts this run needed.
    pub attempts: usize,
    /// Longest client-visible gap from the fault to the end of the watch.
    pub outage_ms: f64,
    /// Longest gap between the fault and its undoing (restore scenarios).
    pub outage_fault_ms: Option<f64>,
    /// Longest gap from the undoing to the end (restore scenarios).
    pub outage_restore_ms: Option<f64>,
    /// Sampled time with two holders, from the fault to the end.
    pub dual_ms: f64,
    /// Sampled time with two holders between the fault and its undoing
    /// (restore scenarios): for a partition, the time both sides held it.
    #[serde(default)]
    pub dual_fault_ms: Option<f64>,
    /// Sampled time with two holders after the fault was undone (restore
    /// scenarios): how long the daemons took to settle the conflict.
    pub dual_restore_ms: Option<f64>,
    /// Sampled time with no holder, from the fault to the end.
    pub no_holder_ms: f64,
    /// Changes of the answering node after the fault.
    pub flips: usize,
    pub final_holders: Vec<String>,
    pub answered_by_at_end: Option<String>,
    /// The crashed n1 still holds the VIP at the end (nothing removed it).
    pub left_behind: bool,
    /// How long the fault phase lasted and the watch as a whole.
    pub watch_ms: f64,
    /// `floatip release` wall time (sigkill_release only).
    pub release_ms: Option<f64>,
    pub summary: String,
}

/// One run of an IPv6 row: the IPv6 client's view and, on a dual-stack LAN,
/// the IPv4 client's in the same run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ipv6Run {
    pub floating: Floating,
    /// The run as the IPv6 client saw it (its holders: of the IPv6 address).
    pub v6: Run,
    /// How long the IPv6 client kept sending elsewhere once n2 alone held
    /// the address (its neighbour entry moving); `None` if it never did.
    pub followed6_ms: Option<f64>,
    /// The IPv4 client's longest gap from the fault to the end of the watch
    /// (a group with an IPv4 address).
    pub outage4_ms: Option<f64>,
    pub followed4_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    pub daemon: Daemon,
    pub setting: Setting,
    pub scenario: Scenario,
    pub rep: usize,
    pub error: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stat {
    pub n: usize,
    pub median: f64,
    pub max: f64,
    pub min: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub daemon: Daemon,
    pub setting: Setting,
    pub scenario: Scenario,
    pub outage_ms: Stat,
    pub outage_restore_ms: Option<Stat>,
    pub dual_ms: Stat,
    #[serde(default)]
    pub dual_fault_ms: Option<Stat>,
    pub dual_restore_ms: Option<Stat>,
    pub flips_median: f64,
    pub flips_max: usize,
    /// e.g. {"n2": 5}
    pub final_holders: BTreeMap<String, usize>,
    pub left_behind: usize,
    /// Runs at whose end the client got no answer (its ARP entry still
    /// pointed at a node that no longer held the VIP).
    pub unanswered_at_end: usize,
    pub failures: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Idle {
    pub daemon: Daemon,
    pub setting: Setting,
    pub node: String,
    pub role: String,
    pub window_s: f64,
    /// Processes counted (the daemon and its descendants), by name.
    pub processes: Vec<String>,
    pub rss_kib: u64,
    /// utime+stime (+cutime+cstime) over the window, in clock ticks.
    pub cpu_ticks: u64,
    pub clk_tck: u64,
    pub cpu_percent: f64,
    /// The same from the scheduler's nanosecond accounting (schedstat).
    pub cpu_percent_schedstat: Option<f64>,
    /// Frames per second through this node's switch port, received plus
    /// sent (the bridge port's counters).
    #[serde(default)]
    pub port_packets_per_s: Option<f64>,
}

/// A flap soak: a settled pair at the 10 ms setting under random frame loss
/// on the switch and CPU hogs; any change of holder is a false take-over.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Soak {
    /// What ran it (`make bench` runs a short one, `make bench-soak` a long one).
    pub command: String,
    pub setting: Setting,
    pub seconds: f64,
    /// Percent of all forwarded frames the switch dropped at random.
    pub loss_percent: u32,
    /// Busy-loop processes running all along.
    pub hogs: usize,
    /// Times the holder set changed away from n1 alone (5 ms samples).
    pub holder_changes: usize,
    /// Take-overs the daemons logged (`BACKUP -> MASTER`, both nodes).
    #[serde(default)]
    pub takeovers: usize,
    /// Role changes of any kind the daemons logged (both nodes).
    pub transitions: usize,
    /// Longest time the client got no answer.
    pub outage_max_ms: f64,
    pub final_holders: Vec<String>,
    /// The first logged transitions, for the report.
    pub transition_lines: Vec<String>,
}

impl Soak {
    pub fn false_takeovers(&self) -> usize {
        self.holder_changes.max(self.takeovers)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub kernel: String,
    pub cpu_model: String,
    pub keepalived: String,
    pub ucarp: String,
    pub floatip: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub command: String,
    pub reps: usize,
    pub quick: bool,
    pub started_unix: u64,
    pub duration_s: f64,
    pub machine: Machine,
    pub configs: BTreeMap<String, String>,
    pub runs: Vec<Run>,
    pub failures: Vec<Failure>,
    pub cells: Vec<Cell>,
    pub idle: Vec<Idle>,
    #[serde(default)]
    pub soak: Vec<Soak>,
    /// The IPv6 rows' runs, and those that could not be measured.
    #[serde(default)]
    pub ipv6: Vec<Ipv6Run>,
    #[serde(default)]
    pub ipv6_failures: Vec<Failure>,
}

pub fn msf(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub fn stat(values: &[f64]) -> Stat {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    };
    Stat {
        n,
        median,
        max: v.last().copied().unwrap_or(f64::NAN),
        min: v.first().copied().unwrap_or(f64::NAN),
    }
}

// ----- aggregation ---------------------------------------------------------

pub fn cells(runs: &[Run], failures: &[Failure]) -> Vec<Cell> {
    let mut keys: Vec<(Daemon, Setting, Scenario)> = runs
        .iter()
        .map(|r| (r.daemon, r.setting, r.scenario))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(d, s, sc)| {
            let rs: Vec<&Run> = runs
                .iter()
                .filter(|r| (r.daemon, r.setting, r.scenario) == (d, s, sc))
                .collect();
            let flips: Vec<f64> = rs.iter().map(|r| r.flips as f64).collect();
            let mut holders = BTreeMap::new();
            for r in &rs {
                let key = if r.final_holders.is_empty() {
                    "none".to_string()
                } else {
                    r.final_holders.join("+")
                };
                *holders.entry(key).or_insert(0) += 1;
            }
            Cell {
                daemon: d,
                setting: s,
                scenario: sc,
                outage_ms: stat(&rs.iter().map(|r| r.outage_ms).collect::<Vec<_>>()),
                outage_restore_ms: sc.restores().then(|| {
                    stat(
                        &rs.iter()
                            .filter_map(|r| r.outage_restore_ms)
                            .collect::<Vec<_>>(),
                    )
                }),
                dual_ms: stat(&rs.iter().map(|r| r.dual_ms).collect::<Vec<_>>()),
                dual_fault_ms: sc.restores().then(|| {
                    stat(
                        &rs.iter()
                            .filter_map(|r| r.dual_fault_ms)
                            .collect::<Vec<_>>(),
                    )
                }),
                dual_restore_ms: sc.restores().then(|| {
                    stat(
                        &rs.iter()
                            .filter_map(|r| r.dual_restore_ms)
                            .collect::<Vec<_>>(),
                    )
                }),
                flips_median: stat(&flips).median,
                flips_max: rs.iter().map(|r| r.flips).max().unwrap_or(0),
                final_holders: holders,
                left_behind: rs.iter().filter(|r| r.left_behind).count(),
                unanswered_at_end: rs.iter().filter(|r| r.answered_by_at_end.is_none()).count(),
                failures: failures
                    .iter()
                    .filter(|f| (f.daemon, f.setting, f.scenario) == (d, s, sc))
                    .count(),
            }
        })
        .collect()
}
