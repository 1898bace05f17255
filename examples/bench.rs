//! `make bench`: floatip against keepalived (VRRP) and ucarp (CARP), side by
//! side, in the namespace lab of the integration tests (the `floatip-lab` crate).
//!
//! For every daemon, setting (1 s adverts, fast) and fault scenario it starts
//! the daemon on n1 (preferred) and n2, waits for n1 to hold the VIP alone,
//! starts a [`lab::Watch`] (a UDP probe to the VIP every 2 ms from the client,
//! holders sampled every 5 ms), injects the fault and records what the client
//! saw. Then it measures each daemon's idle RSS and CPU, and writes
//! `target/bench/results.json`, `docs/benchmarks.md` and
//! `docs/benchmarks.svg`.
//!
//! Environment:
//! - `BENCH_REPS` (default 5): repetitions per cell;
//! - `BENCH_QUICK=1`: one repetition, a 10 s idle window (a smoke run);
//! - `BENCH_IDLE_SECS` (default 60): the idle window;
//! - `BENCH_ONLY=<daemon>[,<daemon>]`, `BENCH_SCENARIOS=<s>[,<s>]`,
//!   `BENCH_SETTINGS=1s|fast`: run a subset (development);
//! - `BENCH_RENDER_ONLY=1`: re-render the docs from `target/bench/results.json`;
//! - `FLOATIP_BIN`: the floatip binary (default `target/release/floatip`).
//!
//! Needs root, `ip` (iproute2), `nft` (nftables), `keepalived`, `ucarp`.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use floatip_lab::{Lab, Proc, Report};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 234);
const WATCH_PORT: u16 = 9999;
const ECHO_PORT: u16 = 61111;
/// Priorities: n1 is preferred.
const PRIO_N1: u8 = 150;
const PRIO_N2: u8 = 100;
/// How many times a run whose start-up was not clean is retried.
const RUN_ATTEMPTS: usize = 3;

// ----- what is compared ----------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Daemon {
    Floatip,
    Keepalived,
    Ucarp,
}

impl Daemon {
    const ALL: [Daemon; 3] = [Daemon::Floatip, Daemon::Keepalived, Daemon::Ucarp];
    fn name(self) -> &'static str {
        match self {
            Daemon::Floatip => "floatip",
            Daemon::Keepalived => "keepalived",
            Daemon::Ucarp => "ucarp",
        }
    }
    fn color(self) -> &'static str {
        match self {
            Daemon::Floatip => "#2b8a3e",
            Daemon::Keepalived => "#1c7ed6",
            Daemon::Ucarp => "#e8590c",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Setting {
    /// 1 s adverts, 3 s detection.
    OneSec,
    /// 100 ms adverts, 300 ms detection (ucarp cannot: advbase ≥ 1 s).
    Fast,
}

impl Setting {
    const ALL: [Setting; 2] = [Setting::OneSec, Setting::Fast];
    fn name(self) -> &'static str {
        match self {
            Setting::OneSec => "1s",
            Setting::Fast => "fast",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Setting::OneSec => "1 s adverts, ~3 s detection",
            Setting::Fast => "100 ms adverts, ~300 ms detection",
        }
    }
    fn interval(self) -> Duration {
        match self {
            Setting::OneSec => ms(1000),
            Setting::Fast => ms(100),
        }
    }
    /// The detection budget: floatip's timeout_in_ms, 3 × the advert
    /// interval for VRRP/CARP (plus their skew).
    fn detection(self) -> Duration {
        self.interval() * 3
    }
    fn keepalived_advert(self) -> &'static str {
        match self {
            Setting::OneSec => "1",
            Setting::Fast => "0.1",
        }
    }
    fn supports(self, d: Daemon) -> bool {
        !(self == Setting::Fast && d == Daemon::Ucarp)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Scenario {
    Sigterm,
    Sigkill,
    /// SIGKILL, then `floatip release` at once (floatip only).
    SigkillRelease,
    Freeze,
    LinkCut,
    Partition,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::Sigterm,
        Scenario::Sigkill,
        Scenario::SigkillRelease,
        Scenario::Freeze,
        Scenario::LinkCut,
        Scenario::Partition,
    ];
    fn name(self) -> &'static str {
        match self {
            Scenario::Sigterm => "sigterm",
            Scenario::Sigkill => "sigkill",
            Scenario::SigkillRelease => "sigkill_release",
            Scenario::Freeze => "freeze",
            Scenario::LinkCut => "link_cut",
            Scenario::Partition => "partition",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Scenario::Sigterm => "planned stop (SIGTERM)",
            Scenario::Sigkill => "crash (SIGKILL)",
            Scenario::SigkillRelease => "crash (SIGKILL) + `floatip release`",
            Scenario::Freeze => "freeze (SIGSTOP … SIGCONT)",
            Scenario::LinkCut => "link cut … restore",
            Scenario::Partition => "heartbeat partition … heal",
        }
    }
    fn applies(self, d: Daemon) -> bool {
        self != Scenario::SigkillRelease || d == Daemon::Floatip
    }
    /// Scenarios with a second phase (the fault is undone).
    fn restores(self) -> bool {
        matches!(
            self,
            Scenario::Freeze | Scenario::LinkCut | Scenario::Partition
        )
    }
}

// ----- results -------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Run {
    daemon: Daemon,
    setting: Setting,
    scenario: Scenario,
    rep: usize,
    /// Wall-clock time of the fault (ms since the epoch), to match daemon logs.
    fault_unix_ms: u64,
    /// Start-up attempts this run needed.
    attempts: usize,
    /// Longest client-visible gap from the fault to the end of the watch.
    outage_ms: f64,
    /// Longest gap between the fault and its undoing (restore scenarios).
    outage_fault_ms: Option<f64>,
    /// Longest gap from the undoing to the end (restore scenarios).
    outage_restore_ms: Option<f64>,
    /// Sampled time with two holders, from the fault to the end.
    dual_ms: f64,
    /// Sampled time with two holders after the fault was undone (restore
    /// scenarios): how long the daemons took to settle the conflict.
    dual_restore_ms: Option<f64>,
    /// Sampled time with no holder, from the fault to the end.
    no_holder_ms: f64,
    /// Changes of the answering node after the fault.
    flips: usize,
    final_holders: Vec<String>,
    answered_by_at_end: Option<String>,
    /// The crashed n1 still holds the VIP at the end (nothing removed it).
    left_behind: bool,
    /// How long the fault phase lasted and the watch as a whole.
    watch_ms: f64,
    /// `floatip release` wall time (sigkill_release only).
    release_ms: Option<f64>,
    summary: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Failure {
    daemon: Daemon,
    setting: Setting,
    scenario: Scenario,
    rep: usize,
    error: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stat {
    n: usize,
    median: f64,
    max: f64,
    min: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Cell {
    daemon: Daemon,
    setting: Setting,
    scenario: Scenario,
    outage_ms: Stat,
    outage_restore_ms: Option<Stat>,
    dual_ms: Stat,
    dual_restore_ms: Option<Stat>,
    flips_median: f64,
    flips_max: usize,
    /// e.g. {"n2": 5}
    final_holders: BTreeMap<String, usize>,
    left_behind: usize,
    /// Runs at whose end the client got no answer (its ARP entry still
    /// pointed at a node that no longer held the VIP).
    unanswered_at_end: usize,
    failures: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Idle {
    daemon: Daemon,
    setting: Setting,
    node: String,
    role: String,
    window_s: f64,
    /// Processes counted (the daemon and its descendants), by name.
    processes: Vec<String>,
    rss_kib: u64,
    /// utime+stime (+cutime+cstime) over the window, in clock ticks.
    cpu_ticks: u64,
    clk_tck: u64,
    cpu_percent: f64,
    /// The same from the scheduler's nanosecond accounting (schedstat).
    cpu_percent_schedstat: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Machine {
    nproc: usize,
    kernel: String,
    cpu_model: String,
    keepalived: String,
    ucarp: String,
    floatip: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Results {
    command: String,
    reps: usize,
    quick: bool,
    started_unix: u64,
    duration_s: f64,
    machine: Machine,
    configs: BTreeMap<String, String>,
    runs: Vec<Run>,
    failures: Vec<Failure>,
    cells: Vec<Cell>,
    idle: Vec<Idle>,
}

// ----- small helpers -------------------------------------------------------

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn msf(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_list(key: &str) -> Option<Vec<String>> {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

/// True when the comma list in env `key` is unset or names `name`.
fn selected(key: &str, name: &str) -> bool {
    env_list(key).map_or(true, |o| o.iter().any(|x| x == name))
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn floatip_bin() -> PathBuf {
    std::env::var_os("FLOATIP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target/release/floatip"))
}

/// Finds `name` in `$PATH` or the sbin directories.
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn text_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

fn stat(values: &[f64]) -> Stat {
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

/// Changes of the answering node at or after the mark `label`.
fn flips_after(r: &Report, label: &str) -> usize {
    let from = r.mark(label);
    let mut prev = r
        .answer_log
        .iter()
        .rfind(|a| a.at < from)
        .map(|a| a.node.clone());
    let mut flips = 0;
    for a in r.answer_log.iter().filter(|a| a.at >= from) {
        if prev.as_deref().is_some_and(|p| p != a.node) {
            flips += 1;
        }
        prev = Some(a.node.clone());
    }
    flips
}

// ----- starting the daemons -------------------------------------------------

struct Tools {
    floatip: PathBuf,
    keepalived: Option<PathBuf>,
    ucarp: Option<PathBuf>,
    ip: PathBuf,
    nft: PathBuf,
}

impl Tools {
    fn has(&self, d: Daemon) -> bool {
        match d {
            Daemon::Floatip => self.floatip.is_file(),
            Daemon::Keepalived => self.keepalived.is_some(),
            Daemon::Ucarp => self.ucarp.is_some(),
        }
    }
}

fn priority(node: &str) -> u8 {
    if node == "n1" {
        PRIO_N1
    } else {
        PRIO_N2
    }
}

fn floatip_config(s: Setting, node: &str, status_socket: &str) -> String {
    format!(
        "floating_ip:\n  enabled: true\n  priority: {}\n  status_socket: {status_socket}\n  echo:\n    interval_in_ms: {}\n    timeout_in_ms: {}\n",
        priority(node),
        s.interval().as_millis(),
        s.detection().as_millis()
    )
}

fn keepalived_config(s: Setting, node: &str) -> String {
    let version = match s {
        Setting::OneSec => "",
        Setting::Fast => "    version 3\n",
    };
    format!(
        "global_defs {{\n    router_id {node}\n}}\n\
         vrrp_instance VIP {{\n\
         \x20   state BACKUP\n\
         \x20   nopreempt\n\
         \x20   interface eth0\n\
         \x20   virtual_router_id 51\n\
         {version}\
         \x20   priority {}\n\
         \x20   advert_int {}\n\
         \x20   virtual_ipaddress {{\n\
         \x20       {VIP}/24 dev eth0\n\
         \x20   }}\n\
         }}\n",
        priority(node),
        s.keepalived_advert()
    )
}

fn ucarp_args(node_ip: Ipv4Addr, node: &str, up: &str, down: &str) -> Vec<String> {
    let skew = if node == "n1" { 0 } else { 100 };
    [
        "--interface=eth0".to_string(),
        format!("--srcip={node_ip}"),
        "--vhid=1".into(),
        "--pass=fipbench".into(),
        format!("--addr={VIP}"),
        "--advbase=1".into(),
        format!("--advskew={skew}"),
        format!("--upscript={up}"),
        format!("--downscript={down}"),
        "--shutdown".into(),
        "--facility=none".into(),
    ]
    .to_vec()
}

fn ucarp_scripts(ip: &Path) -> (String, String) {
    let ip = ip.display();
    (
        format!("#!/bin/sh\n# ucarp up: $1 = interface, $2 = VIP\nexec {ip} addr add \"$2\"/24 dev \"$1\"\n"),
        format!("#!/bin/sh\n# ucarp down: $1 = interface, $2 = VIP\n{ip} addr del \"$2\"/24 dev \"$1\" 2>/dev/null\nexit 0\n"),
    )
}

/// Config files and commands of one setting, for the docs.
fn configs_for_docs(s: Setting, tools: &Tools) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for node in ["n1", "n2"] {
        m.insert(
            format!("{}/floatip/{node}.yml", s.name()),
            floatip_config(s, node, &format!("<lab dir>/{node}.sock")),
        );
        m.insert(
            format!("{}/floatip/command", s.name()),
            "floatip run -c <node>.yml".to_string(),
        );
        m.insert(
            format!("{}/keepalived/{node}.conf", s.name()),
            keepalived_config(s, node),
        );
        m.insert(
            format!("{}/keepalived/command", s.name()),
            "keepalived --dont-fork --log-console --no-syslog --vrrp -f <node>.conf -p <dir>/<node>.pid -r <dir>/<node>-vrrp.pid -c <dir>/<node>-check.pid".to_string(),
        );
        if s.supports(Daemon::Ucarp) {
            let ip = if node == "n1" {
                "192.0.2.11"
            } else {
                "192.0.2.12"
            };
            let args = ucarp_args(ip.parse().unwrap(), node, "<dir>/up.sh", "<dir>/down.sh");
            m.insert(
                format!("{}/ucarp/{node}.command", s.name()),
                format!("ucarp {}", args.join(" ")),
            );
        }
    }
    if s.supports(Daemon::Ucarp) {
        let (up, down) = ucarp_scripts(&tools.ip);
        m.insert(format!("{}/ucarp/up.sh", s.name()), up);
        m.insert(format!("{}/ucarp/down.sh", s.name()), down);
    }
    m
}

/// Starts `d` on `node` of `lab`; returns the process and (floatip) its config.
fn start(lab: &Lab, tools: &Tools, d: Daemon, s: Setting, node: &str) -> (Proc, PathBuf) {
    let dir = lab.dir().to_path_buf();
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    match d {
        Daemon::Floatip => {
            let cfg = lab.write_file(
                &format!("{node}.yml"),
                &floatip_config(s, node, &p(&format!("{node}.sock"))),
            );
            let bin = tools.floatip.to_string_lossy().into_owned();
            // BENCH_FLOATIP_VERBOSE=1: debug logs (kept with FIP_LAB_KEEP=1).
            let verbose = std::env::var("BENCH_FLOATIP_VERBOSE").as_deref() == Ok("1");
            let cfg_s = cfg.to_string_lossy().into_owned();
            let mut argv = vec![bin.as_str()];
            if verbose {
                argv.push("-v");
            }
            argv.extend(["run", "-c", cfg_s.as_str()]);
            let proc = lab.spawn(node, &argv, &[]);
            (proc, cfg)
        }
        Daemon::Keepalived => {
            let cfg = lab.write_file(&format!("{node}.conf"), &keepalived_config(s, node));
            let bin = tools
                .keepalived
                .as_ref()
                .expect("keepalived")
                .to_string_lossy()
                .into_owned();
            let argv = [
                bin,
                "--dont-fork".into(),
                "--log-console".into(),
                "--no-syslog".into(),
                "--vrrp".into(),
                "-f".into(),
                cfg.to_string_lossy().into_owned(),
                "-p".into(),
                p(&format!("{node}.pid")),
                "-r".into(),
                p(&format!("{node}-vrrp.pid")),
                "-c".into(),
                p(&format!("{node}-check.pid")),
            ];
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            (lab.spawn(node, &argv, &[]), cfg)
        }
        Daemon::Ucarp => {
            let (up, down) = ucarp_scripts(&tools.ip);
            let up_path = lab.write_file("up.sh", &up);
            let down_path = lab.write_file("down.sh", &down);
            for f in [&up_path, &down_path] {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod script");
            }
            let bin = tools
                .ucarp
                .as_ref()
                .expect("ucarp")
                .to_string_lossy()
                .into_owned();
            let mut argv = vec![bin];
            argv.extend(ucarp_args(
                lab.ip(node),
                node,
                &up_path.to_string_lossy(),
                &down_path.to_string_lossy(),
            ));
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            (lab.spawn(node, &argv, &[]), up_path)
        }
    }
}

/// Blocks (or unblocks) the daemons' heartbeat traffic between n1 and n2
/// in the switch: an nftables `bridge` table in the switch namespace drops
/// it when it is forwarded from one node's port to the other's (the client's
/// port is not affected, nor is anything else: ARP, ICMP and the client's
/// probes pass). floatip's heartbeat is TCP/UDP port 61111, VRRP (keepalived)
/// and CARP (ucarp) are IP protocol 112.
///
/// Why not the lab's [`Lab::partition`] (an input rule in each node)? ucarp
/// receives its adverts with libpcap, which sees packets before the input
/// hook (and before any ingress hook): a node-side rule does not partition
/// ucarp at all. Dropping in the switch is a real partition for all three.
fn partition(lab: &Lab, tools: &Tools, d: Daemon, on: bool) -> Result<(), String> {
    let table = "fip_bench_partition";
    let what = match d {
        Daemon::Floatip => format!("meta l4proto {{ tcp, udp }} th dport {ECHO_PORT} drop\n    meta l4proto {{ tcp, udp }} th sport {ECHO_PORT} drop"),
        Daemon::Keepalived | Daemon::Ucarp => "ip protocol 112 drop".to_string(),
    };
    let script = if on {
        format!(
            "table bridge {table} {{}}\ndelete table bridge {table}\n\
             table bridge {table} {{\n  chain forward {{\n    type filter hook forward priority -10; policy accept;\n\
             \x20   iifname {{ \"p-n1\", \"p-n2\" }} oifname {{ \"p-n1\", \"p-n2\" }} ether type ip jump heartbeat\n  }}\n\
             \x20 chain heartbeat {{\n    {what}\n  }}\n}}\n"
        )
    } else {
        format!("table bridge {table} {{}}\ndelete table bridge {table}\n")
    };
    let file = lab.write_file(
        &format!("partition-{}.nft", if on { "on" } else { "off" }),
        &script,
    );
    let out = lab.run(
        "sw",
        &[&tools.nft.to_string_lossy(), "-f", &file.to_string_lossy()],
    );
    if !out.status.success() {
        return Err(format!(
            "nft in the switch: {}\nscript:\n{script}",
            text_of(&out)
        ));
    }
    Ok(())
}

fn signal_group(p: &Proc, sig: Signal) {
    // The process leads its own group and is not reaped while we hold it.
    let _ = killpg(Pid::from_raw(p.pid() as i32), sig);
}

/// Waits until `n1` alone holds the VIP and has done so for `stable`.
fn wait_alone(lab: &Lab, node: &str, stable: Duration, timeout: Duration) -> Result<(), String> {
    let mut since: Option<Instant> = None;
    let mut last = Vec::new();
    let ok = lab.wait_until(timeout, ms(5), || {
        last = lab.holders(VIP);
        if last == [node] {
            since.get_or_insert_with(Instant::now).elapsed() >= stable
        } else {
            since = None;
            false
        }
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{node} did not hold {VIP} alone for {stable:?} within {timeout:?}; holders {last:?}"
        ))
    }
}

// ----- one run -------------------------------------------------------------

fn run_once(tools: &Tools, d: Daemon, s: Setting, sc: Scenario, rep: usize) -> Result<Run, String> {
    let lab = Lab::new(
        &format!("bench-{}-{}-{}", d.name(), s.name(), sc.name()),
        &["n1", "n2"],
    )
    .ok_or("the lab needs root and iproute2")?;
    let fail = |what: String, procs: &[&Proc]| -> String {
        let logs: Vec<String> = procs
            .iter()
            .map(|p| {
                let log = p.log();
                let lines: Vec<&str> = log.lines().collect();
                format!(
                    "--- {}\n{}",
                    p.log_path().display(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                )
            })
            .collect();
        format!("{what}\n{}", logs.join("\n"))
    };
    // n1 first, alone: it becomes the holder whatever each daemon's start-up
    // rules are; then n2 joins as the backup.
    let (n1, cfg1) = start(&lab, tools, d, s, "n1");
    wait_alone(&lab, "n1", ms(0), Duration::from_secs(15)).map_err(|e| fail(e, &[&n1]))?;
    let (n2, _) = start(&lab, tools, d, s, "n2");
    // n2 must have finished its own start-up and be following n1.
    std::thread::sleep(s.interval() * 3 / 2 + ms(200));
    wait_alone(&lab, "n1", ms(200), Duration::from_secs(5)).map_err(|e| fail(e, &[&n1, &n2]))?;

    let watch = lab.watch(VIP, WATCH_PORT);
    if !watch.wait_answer_from("n1", Duration::from_secs(3)) {
        return Err(fail("the client never reached n1".into(), &[&n1, &n2]));
    }
    std::thread::sleep(ms(200));
    // Long enough for every daemon to detect the fault (keepalived: 3 ×
    // advert + skew (256 − 100)/256 × advert = 3.61 × advert) and act.
    let hold = s.detection() + s.interval().max(ms(300)) + ms(200);
    let after_restore = (s.interval() * 3 / 2).max(ms(800));
    let mut release_ms = None;
    watch.mark("fault");
    let fault_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    match sc {
        Scenario::Sigterm => {
            n1.stop();
        }
        Scenario::Sigkill => {
            n1.kill9();
        }
        Scenario::SigkillRelease => {
            n1.kill9();
            let t = Instant::now();
            let out = lab.run(
                "n1",
                &[
                    &tools.floatip.to_string_lossy(),
                    "release",
                    "-c",
                    &cfg1.to_string_lossy(),
                ],
            );
            release_ms = Some(msf(t.elapsed()));
            if !out.status.success() {
                return Err(format!("floatip release failed: {}", text_of(&out)));
            }
        }
        Scenario::Freeze => signal_group(&n1, Signal::SIGSTOP),
        Scenario::LinkCut => lab.link("n1", false),
        Scenario::Partition => partition(&lab, tools, d, true)?,
    }
    if sc.restores() {
        std::thread::sleep(hold);
        watch.mark("restore");
        match sc {
            Scenario::Freeze => signal_group(&n1, Signal::SIGCONT),
            Scenario::LinkCut => lab.link("n1", true),
            Scenario::Partition => partition(&lab, tools, d, false)?,
            _ => unreachable!(),
        }
        std::thread::sleep(after_restore);
    } else {
        // Until n2 answers (bounded), then a little more to see it stay.
        watch.wait_answer_from("n2", s.detection() + s.interval() + ms(500));
        std::thread::sleep(ms(300).max(s.interval() / 2));
    }
    let report = watch.stop();
    let outage = report.outage_after("fault");
    let (outage_fault, outage_restore) = if sc.restores() {
        (
            Some(msf(report.outage_between("fault", "restore"))),
            Some(msf(report.outage_after("restore"))),
        )
    } else {
        (None, None)
    };
    let crashed = matches!(sc, Scenario::Sigkill | Scenario::SigkillRelease);
    let run = Run {
        daemon: d,
        setting: s,
        scenario: sc,
        rep,
        fault_unix_ms,
        attempts: 1,
        outage_ms: msf(outage),
        outage_fault_ms: outage_fault,
        outage_restore_ms: outage_restore,
        dual_ms: msf(report.dual_holder_after("fault")),
        dual_restore_ms: sc
            .restores()
            .then(|| msf(report.dual_holder_after("restore"))),
        no_holder_ms: msf(report.no_holder_after("fault")),
        flips: flips_after(&report, "fault"),
        final_holders: report.final_holders.clone(),
        answered_by_at_end: report.answered_by_at_end.clone(),
        left_behind: crashed && report.final_holders.iter().any(|h| h == "n1"),
        watch_ms: msf(report.duration),
        release_ms,
        summary: report.summary().chars().take(1500).collect(),
    };
    // Orderly stop (SIGTERM; the lab SIGKILLs what remains on drop).
    n2.stop();
    n1.stop();
    Ok(run)
}

// ----- idle cost -----------------------------------------------------------

/// One process's counters.
#[derive(Clone, Debug)]
struct ProcSample {
    name: String,
    ticks: u64,
    sched_ns: Option<u64>,
    rss_kib: u64,
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let path = t.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|w| w.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// The daemon and all its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let kids = children_of(all[i]);
        all.extend(kids);
        i += 1;
    }
    all
}

fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let num = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64
    };
    let ticks = num(11) + num(12) + num(13) + num(14);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Per-thread scheduler run time in ns (exact, unlike ticks).
    let mut sched_ns = None;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                if let Some(v) = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    *sched_ns.get_or_insert(0) += v;
                }
            }
        }
    }
    Some(ProcSample {
        name,
        ticks,
        sched_ns,
        rss_kib,
    })
}

fn tree_sample(pid: u32) -> Vec<(u32, ProcSample)> {
    tree(pid)
        .into_iter()
        .filter_map(|p| proc_sample(p).map(|s| (p, s)))
        .collect()
}

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

struct IdleLab {
    lab: Lab,
    daemon: Daemon,
    setting: Setting,
    procs: Vec<(String, Proc)>,
}

/// Starts every daemon at every setting in labs of their own (each lab is
/// its own set of namespaces, so they do not see each other), lets them
/// settle, then measures all of them over the same window.
fn measure_idle(
    tools: &Tools,
    daemons: &[Daemon],
    settings: &[Setting],
    window: Duration,
) -> (Vec<Idle>, Vec<String>) {
    let mut labs = Vec::new();
    let mut problems = Vec::new();
    for &s in settings {
        for &d in daemons {
            if !s.supports(d) || !tools.has(d) {
                continue;
            }
            let Some(lab) = Lab::new(
                &format!("bench-idle-{}-{}", d.name(), s.name()),
                &["n1", "n2"],
            ) else {
                continue;
            };
            let (n1, _) = start(&lab, tools, d, s, "n1");
            if let Err(e) = wait_alone(&lab, "n1", ms(0), Duration::from_secs(15)) {
                problems.push(format!("idle {} {}: {e}", d.name(), s.name()));
                continue;
            }
            let (n2, _) = start(&lab, tools, d, s, "n2");
            labs.push(IdleLab {
                lab,
                daemon: d,
                setting: s,
                procs: vec![("n1".into(), n1), ("n2".into(), n2)],
            });
        }
    }
    std::thread::sleep(ms(3000));
    let tck = clk_tck();
    let before: Vec<Vec<Vec<(u32, ProcSample)>>> = labs
        .iter()
        .map(|l| l.procs.iter().map(|(_, p)| tree_sample(p.pid())).collect())
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let secs = t0.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for (li, l) in labs.iter().enumerate() {
        let holders = l.lab.holders(VIP);
        if holders != ["n1"] {
            problems.push(format!(
                "idle {} {}: holders at the end {holders:?}",
                l.daemon.name(),
                l.setting.name()
            ));
        }
        for (pi, (node, p)) in l.procs.iter().enumerate() {
            let after = tree_sample(p.pid());
            let mut ticks = 0u64;
            let mut ns = 0u64;
            let mut ns_ok = true;
            for (pid, a) in &after {
                let b = before[li][pi]
                    .iter()
                    .find(|(q, _)| q == pid)
                    .map(|(_, s)| s.clone());
                ticks += a.ticks - b.as_ref().map_or(0, |b| b.ticks.min(a.ticks));
                match (a.sched_ns, b.as_ref().map(|b| b.sched_ns)) {
                    (Some(x), Some(Some(y))) => ns += x.saturating_sub(y),
                    (Some(x), None) => ns += x,
                    _ => ns_ok = false,
                }
            }
            out.push(Idle {
                daemon: l.daemon,
                setting: l.setting,
                node: node.clone(),
                role: if holders.contains(node) {
                    "holder".into()
                } else {
                    "backup".into()
                },
                window_s: (secs * 10.0).round() / 10.0,
                processes: after.iter().map(|(_, s)| s.name.clone()).collect(),
                rss_kib: after.iter().map(|(_, s)| s.rss_kib).sum(),
                cpu_ticks: ticks,
                clk_tck: tck,
                cpu_percent: ticks as f64 / tck as f64 / secs * 100.0,
                cpu_percent_schedstat: ns_ok.then(|| ns as f64 / 1e9 / secs * 100.0),
            });
        }
    }
    for l in &labs {
        for (_, p) in &l.procs {
            p.stop();
        }
    }
    drop(labs);
    (out, problems)
}

// ----- aggregation ---------------------------------------------------------

fn cells(runs: &[Run], failures: &[Failure]) -> Vec<Cell> {
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

// ----- machine -------------------------------------------------------------

fn first_line_of(cmd: &Path, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| text_of(&o).lines().next().unwrap_or("").to_string())
        .unwrap_or_else(|e| format!("({e})"))
}

fn machine(tools: &Tools) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        kernel,
        cpu_model,
        keepalived: tools
            .keepalived
            .as_ref()
            .map_or("missing".into(), |k| first_line_of(k, &["--version"])),
        ucarp: tools.ucarp.as_ref().map_or("missing".into(), |u| {
            // `ucarp --help` starts with "ucarp 1.5.2 - <date>".
            std::process::Command::new(u)
                .arg("--help")
                .output()
                .map(|o| {
                    text_of(&o)
                        .lines()
                        .find(|l| l.starts_with("ucarp"))
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default()
        }),
        floatip: first_line_of(&tools.floatip, &["--version"]),
    }
}

// ----- main ----------------------------------------------------------------

fn main() {
    let results_path = manifest_dir().join("target/bench/results.json");
    if std::env::var("BENCH_RENDER_ONLY").as_deref() == Ok("1") {
        let text = std::fs::read_to_string(&results_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", results_path.display()));
        let results: Results = serde_json::from_str(&text).expect("parse results.json");
        write_docs(&results);
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench: needs root (it creates network namespaces): sudo make bench");
        std::process::exit(1);
    }
    let started = Instant::now();
    let quick = std::env::var("BENCH_QUICK").as_deref() == Ok("1");
    let reps = if quick {
        1
    } else {
        env_usize("BENCH_REPS", 5).max(1)
    };
    let idle_window =
        Duration::from_secs(env_usize("BENCH_IDLE_SECS", if quick { 10 } else { 60 }) as u64);
    let tools = Tools {
        floatip: floatip_bin(),
        keepalived: program("keepalived"),
        ucarp: program("ucarp"),
        ip: program("ip").expect("ip (iproute2) is needed"),
        nft: program("nft").expect("nft (nftables) is needed"),
    };
    if !tools.floatip.is_file() {
        eprintln!(
            "bench: {} not found: run `cargo build --release` first or set FLOATIP_BIN",
            tools.floatip.display()
        );
        std::process::exit(1);
    }
    for d in Daemon::ALL {
        if !tools.has(d) {
            eprintln!(
                "bench: {} not installed: its rows are skipped (apt-get install -y {})",
                d.name(),
                d.name()
            );
        }
    }
    let daemons: Vec<Daemon> = Daemon::ALL
        .into_iter()
        .filter(|d| tools.has(*d) && selected("BENCH_ONLY", d.name()))
        .collect();
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| selected("BENCH_SCENARIOS", s.name()))
        .collect();
    let settings: Vec<Setting> = Setting::ALL
        .into_iter()
        .filter(|s| selected("BENCH_SETTINGS", s.name()))
        .collect();

    let mut plan = Vec::new();
    for &s in &settings {
        for &sc in &scenarios {
            for &d in &daemons {
                if s.supports(d) && sc.applies(d) {
                    plan.push((d, s, sc));
                }
            }
        }
    }
    eprintln!(
        "bench: {} cells × {reps} reps ({} runs), then a {}s idle window{}",
        plan.len(),
        plan.len() * reps,
        idle_window.as_secs(),
        if quick {
            " (BENCH_QUICK=1: a smoke run)"
        } else {
            ""
        }
    );
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    let total = plan.len() * reps;
    let mut i = 0;
    // Repetitions are the outer loop so that a slow drift of the machine
    // spreads over all cells alike.
    for rep in 1..=reps {
        for &(d, s, sc) in &plan {
            i += 1;
            let t = Instant::now();
            let mut last_err = String::new();
            let mut done = false;
            for attempt in 1..=RUN_ATTEMPTS {
                match run_once(&tools, d, s, sc, rep) {
                    Ok(mut r) => {
                        r.attempts = attempt;
                        eprintln!(
                            "[{i:>3}/{total}] {:<10} {:<4} {:<15} rep {rep}: outage {:>8.1} ms  dual {:>7.1} ms  flips {}  final {:?}{}  ({:.1}s)",
                            d.name(),
                            s.name(),
                            sc.name(),
                            r.outage_ms,
                            r.dual_ms,
                            r.flips,
                            r.final_holders,
                            r.outage_restore_ms.map_or(String::new(), |o| format!("  after restore {o:.1} ms")),
                            t.elapsed().as_secs_f64()
                        );
                        runs.push(r);
                        done = true;
                        break;
                    }
                    Err(e) => {
                        eprintln!(
                            "[{i:>3}/{total}] {} {} {} rep {rep} attempt {attempt}: {e}",
                            d.name(),
                            s.name(),
                            sc.name()
                        );
                        last_err = e;
                    }
                }
            }
            if !done {
                failures.push(Failure {
                    daemon: d,
                    setting: s,
                    scenario: sc,
                    rep,
                    error: last_err,
                });
            }
        }
    }
    eprintln!(
        "bench: idle window {}s for every daemon and setting at once",
        idle_window.as_secs()
    );
    let (idle, problems) = measure_idle(&tools, &daemons, &settings, idle_window);
    for p in &problems {
        eprintln!("bench: {p}");
    }
    let mut configs = BTreeMap::new();
    for &s in &settings {
        configs.extend(configs_for_docs(s, &tools));
    }
    let results = Results {
        command: if quick {
            "BENCH_QUICK=1 make bench".into()
        } else if reps == 5 {
            "make bench".into()
        } else {
            format!("BENCH_REPS={reps} make bench")
        },
        reps,
        quick,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .saturating_sub(started.elapsed().as_secs()),
        duration_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        machine: machine(&tools),
        configs,
        cells: cells(&runs, &failures),
        runs,
        failures,
        idle,
    };
    std::fs::create_dir_all(results_path.parent().unwrap()).expect("create target/bench");
    std::fs::write(
        &results_path,
        serde_json::to_string_pretty(&results).expect("serialize"),
    )
    .expect("write results.json");
    eprintln!("bench: wrote {}", results_path.display());
    write_docs(&results);
    eprintln!("bench: done in {:.1} s", started.elapsed().as_secs_f64());
}

// ----- the docs ------------------------------------------------------------

fn cell(r: &Results, d: Daemon, s: Setting, sc: Scenario) -> Option<&Cell> {
    r.cells
        .iter()
        .find(|c| (c.daemon, c.setting, c.scenario) == (d, s, sc))
}

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn med_max(st: &Stat) -> String {
    format!("{} / {}", fmt_ms(st.median), fmt_ms(st.max))
}

fn outage_table(r: &Results, s: Setting) -> String {
    let mut t = String::new();
    let daemons: Vec<Daemon> = Daemon::ALL.into_iter().filter(|d| s.supports(*d)).collect();
    let _ = write!(t, "| scenario |");
    for d in &daemons {
        let _ = write!(t, " {} outage ms (median / max) |", d.name());
    }
    let _ = writeln!(t, " floatip / keepalived (median) |");
    let _ = write!(t, "| --- |");
    for _ in &daemons {
        let _ = write!(t, " ---: |");
    }
    let _ = writeln!(t, " ---: |");
    for sc in Scenario::ALL {
        let _ = write!(t, "| {} |", sc.title());
        for &d in &daemons {
            let v = match cell(r, d, s, sc) {
                Some(c) => med_max(&c.outage_ms),
                None if !sc.applies(d) => "n/a (no equivalent)".into(),
                None => "not run".into(),
            };
            let _ = write!(t, " {v} |");
        }
        let ka = cell(
            r,
            Daemon::Keepalived,
            s,
            if sc == Scenario::SigkillRelease {
                Scenario::Sigkill
            } else {
                sc
            },
        );
        let ratio = match (cell(r, Daemon::Floatip, s, sc), ka) {
            (Some(f), Some(k)) if k.outage_ms.median > 0.0 => {
                let vs = if sc == Scenario::SigkillRelease {
                    " (vs. plain SIGKILL)"
                } else {
                    ""
                };
                format!("{:.2}{vs}", f.outage_ms.median / k.outage_ms.median)
            }
            _ => "–".into(),
        };
        let _ = writeln!(t, " {ratio} |");
    }
    t
}

fn detail_table(r: &Results, s: Setting) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| scenario | daemon | outage while faulty ms | outage after restore ms | dual-holder ms, whole run | dual-holder ms after restore | flips (median / max) | holder at the end (runs) | client unanswered at the end (runs) | VIP left on the crashed node |");
    let _ = writeln!(
        t,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
    );
    for sc in Scenario::ALL {
        for d in Daemon::ALL {
            let Some(c) = cell(r, d, s, sc) else { continue };
            let restore = c.outage_restore_ms.as_ref().map_or("–".into(), med_max);
            let faulty: Vec<f64> = r
                .runs
                .iter()
                .filter(|x| (x.daemon, x.setting, x.scenario) == (d, s, sc))
                .filter_map(|x| x.outage_fault_ms)
                .collect();
            let faulty = if faulty.is_empty() {
                "–".into()
            } else {
                med_max(&stat(&faulty))
            };
            let dual_restore = c.dual_restore_ms.as_ref().map_or("–".into(), med_max);
            let holders: Vec<String> = c
                .final_holders
                .iter()
                .map(|(h, n)| format!("{h} ×{n}"))
                .collect();
            let left = if matches!(sc, Scenario::Sigkill | Scenario::SigkillRelease) {
                format!("{} of {}", c.left_behind, c.outage_ms.n)
            } else {
                "–".into()
            };
            let _ = writeln!(
                t,
                "| {} | {} | {faulty} | {restore} | {} | {dual_restore} | {} / {} | {} | {} | {left} |",
                sc.title(),
                d.name(),
                med_max(&c.dual_ms),
                c.flips_median,
                c.flips_max,
                holders.join(", "),
                c.unanswered_at_end
            );
        }
    }
    t
}

fn idle_table(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| setting | daemon | node (role) | processes | RSS KiB | CPU ticks | CPU % (ticks) | CPU % (schedstat) |");
    let _ = writeln!(t, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |");
    for i in &r.idle {
        let _ = writeln!(
            t,
            "| {} | {} | {} ({}) | {} | {} | {} | {:.3} | {} |",
            i.setting.name(),
            i.daemon.name(),
            i.node,
            i.role,
            i.processes.join(", "),
            i.rss_kib,
            i.cpu_ticks,
            i.cpu_percent,
            i.cpu_percent_schedstat
                .map_or("–".into(), |v| format!("{v:.4}"))
        );
    }
    t
}

fn targets_table(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| target | measured (floatip, max over runs unless noted) | met |"
    );
    let _ = writeln!(t, "| --- | --- | --- |");
    let mut row = |what: String, measured: String, ok: Option<bool>| {
        let mark = match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(t, "| {what} | {measured} | {mark} |");
    };
    for s in Setting::ALL {
        let det = msf(s.detection());
        if let Some(f) = cell(r, Daemon::Floatip, s, Scenario::LinkCut) {
            let bound = det + 20.0;
            let fo = r
                .runs
                .iter()
                .filter(|x| {
                    x.daemon == Daemon::Floatip && x.setting == s && x.scenario == Scenario::LinkCut
                })
                .filter_map(|x| x.outage_fault_ms)
                .collect::<Vec<_>>();
            let st = stat(&fo);
            row(
                format!(
                    "link cut outage ≤ detection + 20 ms = {bound:.0} ms ({})",
                    s.name()
                ),
                format!(
                    "median {} / max {} ms (gap while the link is down)",
                    fmt_ms(st.median),
                    fmt_ms(st.max)
                ),
                Some(st.max <= bound),
            );
            if let Some(k) = cell(r, Daemon::Keepalived, s, Scenario::LinkCut) {
                row(
                    format!("link cut outage ≤ keepalived's ({})", s.name()),
                    format!(
                        "median {} vs {} ms",
                        fmt_ms(f.outage_ms.median),
                        fmt_ms(k.outage_ms.median)
                    ),
                    Some(f.outage_ms.median <= k.outage_ms.median),
                );
            }
        }
        if let Some(f) = cell(r, Daemon::Floatip, s, Scenario::SigkillRelease) {
            row(
                format!("SIGKILL + release outage ≤ 50 ms ({})", s.name()),
                format!("{} ms", med_max(&f.outage_ms)),
                Some(f.outage_ms.max <= 50.0),
            );
        }
        if let Some(f) = cell(r, Daemon::Floatip, s, Scenario::Sigterm) {
            row(
                format!("SIGTERM outage ≤ 20 ms ({})", s.name()),
                format!("{} ms", med_max(&f.outage_ms)),
                Some(f.outage_ms.max <= 20.0),
            );
        }
        // While a node is frozen or cut off by a partition it cannot give
        // the address up, so for those the bound applies once the fault is
        // undone; for the others to the whole run.
        let bound = msf(s.interval());
        let worst = r
            .cells
            .iter()
            .filter(|c| c.daemon == Daemon::Floatip && c.setting == s)
            .map(|c| {
                (
                    c.dual_restore_ms.as_ref().unwrap_or(&c.dual_ms).max,
                    c.scenario,
                )
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((v, sc)) = worst {
            row(
                format!("dual-holder ≤ one interval = {bound:.0} ms ({}; freeze, partition, link cut: after the fault is undone)", s.name()),
                format!("worst {} ms ({})", fmt_ms(v), sc.name()),
                Some(v <= bound),
            );
        }
    }
    let idle: Vec<&Idle> = r
        .idle
        .iter()
        .filter(|i| i.daemon == Daemon::Floatip && i.setting == Setting::OneSec)
        .collect();
    if !idle.is_empty() {
        let rss = idle.iter().map(|i| i.rss_kib).max().unwrap_or(0);
        row(
            "idle RSS ≤ 4 MiB (1 s)".into(),
            format!("{rss} KiB (largest of holder and backup)"),
            Some(rss <= 4096),
        );
        let cpu = idle
            .iter()
            .map(|i| i.cpu_percent_schedstat.unwrap_or(i.cpu_percent))
            .fold(0.0, f64::max);
        row(
            "idle CPU ≤ 0.05 % (1 s)".into(),
            format!("{cpu:.4} % (schedstat, worse of holder and backup)"),
            Some(cpu <= 0.05),
        );
    }
    t
}

fn configs_section(r: &Results) -> String {
    let mut t = String::new();
    for (name, text) in &r.configs {
        let lang = if name.ends_with(".yml") {
            "yaml"
        } else if name.ends_with(".sh") {
            "sh"
        } else {
            "text"
        };
        let _ = writeln!(t, "`{name}`:\n\n```{lang}\n{}\n```\n", text.trim_end());
    }
    t
}

fn write_docs(r: &Results) {
    let mut tables = String::new();
    for s in Setting::ALL {
        if !r.cells.iter().any(|c| c.setting == s) {
            continue;
        }
        let _ = writeln!(tables, "### Client-visible outage — {}\n", s.title());
        let _ = writeln!(tables, "{}", outage_table(r, s));
        let _ = writeln!(
            tables,
            "### Dual holders, flips, final holder — {}\n",
            s.title()
        );
        let _ = writeln!(tables, "{}", detail_table(r, s));
    }
    if !r.failures.is_empty() {
        let _ = writeln!(tables, "### Runs that could not be measured\n");
        for f in &r.failures {
            let first = f.error.lines().next().unwrap_or("");
            let _ = writeln!(
                tables,
                "- {} {} {} rep {}: {first}",
                f.daemon.name(),
                f.setting.name(),
                f.scenario.name(),
                f.rep
            );
        }
        let _ = writeln!(tables);
    }
    let m = &r.machine;
    let machine = format!(
        "- CPU: {} × {} (nproc {})\n- kernel: {}\n- {}\n- {}\n- floatip: {}\n",
        m.nproc, m.cpu_model, m.nproc, m.kernel, m.keepalived, m.ucarp, m.floatip
    );
    let run = format!(
        "`{}` — {} repetitions per cell, {} runs, finished in {:.1} min{}.",
        r.command,
        r.reps,
        r.runs.len(),
        r.duration_s / 60.0,
        if r.quick {
            " (a smoke run: one repetition; not for quoting)"
        } else {
            ""
        }
    );
    let text = DOC_TEMPLATE
        .replace("{{RUN}}", &run)
        .replace("{{MACHINE}}", &machine)
        .replace("{{TARGETS}}", &targets_table(r))
        .replace("{{FINDINGS}}", FINDINGS)
        .replace("{{TABLES}}", &tables)
        .replace("{{IDLE}}", &idle_table(r))
        .replace(
            "{{IDLE_WINDOW}}",
            &format!("{:.0}", r.idle.first().map_or(0.0, |i| i.window_s)),
        )
        .replace("{{CONFIGS}}", &configs_section(r));
    let docs = manifest_dir().join("docs");
    std::fs::create_dir_all(&docs).expect("create docs/");
    std::fs::write(docs.join("benchmarks.md"), text).expect("write docs/benchmarks.md");
    std::fs::write(docs.join("benchmarks.svg"), svg(r)).expect("write docs/benchmarks.svg");
    eprintln!("bench: wrote docs/benchmarks.md and docs/benchmarks.svg");
}

/// Bars of the median outage per scenario and daemon, one panel per setting.
fn svg(r: &Results) -> String {
    let settings: Vec<Setting> = Setting::ALL
        .into_iter()
        .filter(|s| r.cells.iter().any(|c| c.setting == *s))
        .collect();
    let (w, panel_h, top, left) = (900.0, 300.0, 40.0, 60.0);
    let h = top + panel_h * settings.len() as f64 + 30.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">Client-visible outage after the fault, median of {} runs (ms; whisker = max)</text>"#,
        r.reps
    );
    for (i, d) in Daemon::ALL.iter().enumerate() {
        let x = w - 300.0 + i as f64 * 95.0;
        let _ = writeln!(
            o,
            r#"<rect x="{x}" y="28" width="10" height="10" fill="{}"/><text x="{}" y="37">{}</text>"#,
            d.color(),
            x + 14.0,
            d.name()
        );
    }
    for (pi, &s) in settings.iter().enumerate() {
        let y0 = top + pi as f64 * panel_h;
        let base = y0 + panel_h - 50.0;
        let plot_h = panel_h - 90.0;
        let max = r
            .cells
            .iter()
            .filter(|c| c.setting == s)
            .map(|c| c.outage_ms.max)
            .fold(1.0, f64::max);
        let _ = writeln!(
            o,
            r#"<text x="{left}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
            y0 + 22.0,
            s.title()
        );
        let _ = writeln!(
            o,
            r#"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="black"/>"#,
            w - 20.0
        );
        for frac in [0.0, 0.5, 1.0] {
            let y = base - plot_h * frac;
            let _ = writeln!(
                o,
                r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{:.0}</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
                left - 4.0,
                y + 4.0,
                max * frac,
                w - 20.0
            );
        }
        let group_w = (w - left - 20.0) / Scenario::ALL.len() as f64;
        for (si, sc) in Scenario::ALL.iter().enumerate() {
            let gx = left + si as f64 * group_w;
            let bar_w = (group_w - 20.0) / 3.0;
            for (di, d) in Daemon::ALL.iter().enumerate() {
                let Some(c) = cell(r, *d, s, *sc) else {
                    continue;
                };
                let x = gx + 10.0 + di as f64 * bar_w;
                let bh = plot_h * c.outage_ms.median / max;
                let mh = plot_h * c.outage_ms.max / max;
                let _ = writeln!(
                    o,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"/>"#,
                    base - bh,
                    bar_w - 3.0,
                    d.color()
                );
                let cx = x + (bar_w - 3.0) / 2.0;
                let _ = writeln!(
                    o,
                    r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="black"/>"#,
                    base - bh,
                    base - mh
                );
                let _ = writeln!(
                    o,
                    r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                    base - mh - 3.0,
                    fmt_ms(c.outage_ms.median)
                );
            }
            let label = sc.name().replace('_', " ");
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                gx + group_w / 2.0,
                base + 16.0
            );
        }
    }
    let _ = writeln!(o, "</svg>");
    o
}

/// The hand-written part of docs/benchmarks.md. `{{...}}` are filled in.
const DOC_TEMPLATE: &str = r#"# Benchmarks: floatip, keepalived, ucarp

*Generated by `make bench` (`examples/bench.rs`): edit `DOC_TEMPLATE` there,
not this file.* The chart: [benchmarks.svg](benchmarks.svg); the raw numbers
of every run: `target/bench/results.json`.

{{RUN}}

## What is measured

Each run builds a fresh lab (the `floatip-lab` crate): network namespaces `fip-<tag>-n1`,
`-n2` and `-client` on a bridge in `fip-<tag>-sw`, addresses in 192.0.2.0/24,
VIP 192.0.2.234. The daemon under test starts on **n1** (preferred: priority
150, ucarp advskew 0) and, once n1 holds the VIP alone, on **n2** (priority
100, advskew 100). After n2 has settled, a *watch* starts: the client sends a
numbered UDP datagram to the VIP every 2 ms and a responder in each node
says which node answered; the holders of the VIP are sampled every 5 ms.
200 ms later the fault is injected at the mark "fault":

| scenario | fault | undone after |
| --- | --- | --- |
| planned stop | SIGTERM to n1's daemon | – (the watch ends max(300 ms, half an interval) after n2 answers, or detection + interval + 500 ms after the fault if it never does) |
| crash | SIGKILL to n1's daemon (its process group) | – |
| crash + release | SIGKILL, then at once `floatip release -c n1.yml` in n1 (what the systemd unit's `ExecStopPost` runs); floatip only: keepalived and ucarp have no equivalent | – |
| freeze | SIGSTOP to n1's daemon (process group) | detection + max(interval, 300 ms) + 200 ms, then SIGCONT |
| link cut | n1's switch port down (n1 loses carrier) | same, then port up |
| partition | the switch drops the heartbeat between n1 and n2 only (floatip: TCP/UDP port 61111; keepalived and ucarp: IP protocol 112), an nftables `bridge` table in the switch namespace; the client, ARP and ICMP pass | same, then the table is deleted |

After an undone fault the watch goes on for max(1.5 intervals, 800 ms).

- **outage**: the longest time the client got no answer, from the fault to
  the end of the watch (the silence at the end counts). *While faulty* and
  *after restore* split it at the moment the fault was undone.
- **dual-holder**: sampled time during which both nodes had the VIP.
- **flips**: how often the answering node changed after the fault.
- **holder at the end**, **client unanswered at the end** (no answer in the
  last 100 ms: its ARP entry still points at a node that gave the VIP up),
  **VIP left on the crashed node**.

Only the daemon is stopped, frozen or crashed, not the host: n1's kernel and
its responder keep answering for the VIP as long as the address is on n1.
So after a crash or during a freeze the client is served by n1 until n2
takes the VIP and announces it with gratuitous ARP; what matters there is
the dual-holder time and who holds the VIP at the end, not the outage. A
link cut is what a host death looks like from the LAN.

Settings (equal detection budgets):

| setting | floatip | keepalived | ucarp |
| --- | --- | --- | --- |
| 1 s | `interval_in_ms: 1000`, `timeout_in_ms: 3000` | VRRPv2 `advert_int 1` (master down 3 × 1 s + skew (256 − 100)/256 s ≈ 3.61 s) | `advbase 1`, deadratio 3 (≈ 3 s + skew) |
| fast | `interval_in_ms: 100`, `timeout_in_ms: 300` | VRRPv3 `advert_int 0.1` (≈ 0.36 s) | n/a: advbase cannot go below 1 s |

All three run **without preemption** (floatip's default; keepalived
`nopreempt` with `state BACKUP`; ucarp without `--preempt`): a node that comes
back does not take the VIP away from a healthy holder. VRRP and CARP still
settle two masters by priority, so after a freeze or a partition keepalived
and ucarp move the VIP back to n1.

Repetitions run round-robin over all cells (repetition 1 of every cell,
then repetition 2, ...) so that any drift of the machine spreads evenly.
A run whose start-up was not clean (n1 not alone holding the VIP) is retried
up to 3 times; runs that still fail are listed below the tables.

**Idle cost**: every daemon at every setting runs at the same time, each pair
in its own lab (its own namespaces, so they cannot see each other), and all
are measured over the same {{IDLE_WINDOW}} s window after a 3 s settling time,
with nothing else running in the bench. RSS is `VmRSS` of
`/proc/<pid>/status`; CPU is utime + stime (+ cutime + cstime, for helper
commands) of `/proc/<pid>/stat` over the window, summed over the daemon and
its descendants (keepalived: the parent and its VRRP child). Clock ticks are
10 ms, so the per-thread `schedstat` run time (nanoseconds) is shown too.
Measuring all at once keeps the bench short; the daemons do not compete
for anything but the two CPUs, which are nearly idle.

## Machine

{{MACHINE}}
Other work (builds, tests of other sessions) may have run on the machine at
the same time; the maxima are the numbers most affected.

## Targets

{{TARGETS}}
{{FINDINGS}}
## Failover

![median outage per scenario](benchmarks.svg)

{{TABLES}}
## Idle cost ({{IDLE_WINDOW}} s window)

{{IDLE}}
## Configurations

`<lab dir>` is the lab's temp dir (`/tmp/fip-lab-<tag>`), `<node>` is n1 or
n2. keepalived gets its own pid files (`-p`, `-r`, `-c`) so that it never
touches `/run/keepalived.pid`.

{{CONFIGS}}
"#;

/// Interpretation of the last full run, written by hand after reading it
/// (update it when the numbers change).
const FINDINGS: &str = r#"## What the numbers say

Written by hand after the full run of 2026-11-25 (5 repetitions, 1045 s); the
tables below are regenerated on every run.

- **Planned stop**: floatip hands over in 4–6 ms at both settings: the
  stopping master removes the address, resigns naming its successor, and the
  successor adds it without a probe. keepalived waits for its skew time after
  the priority-0 advert ((256 − 100)/256 × advert: 612 ms at 1 s, 62 ms at
  0.1 s); ucarp sends nothing on stop and n2 waits the full dead time (~4.1 s).
  Ratio floatip / keepalived: 0.01 (1 s), 0.10 (0.1 s).
- **Crash**: keepalived and ucarp both end with **two holders for good**: the
  killed daemon leaves the VIP on n1 and n2 takes it too (the measured
  dual-holder time only ends because the watch ends). floatip's backup sees
  the heartbeat connection close within milliseconds, finds the VIP still
  answering and does not add a second copy (no dual holder, the client stays
  on n1); `floatip release` (the systemd unit's `ExecStopPost`) then removes
  the stale copy and n2 takes over in 14 ms (median; max 16 ms), nothing left
  behind.
- **Link cut** (what a host death looks like): the outage is the detection
  budget minus the age of the last heartbeat at the cut, plus the ARP probe
  (10 ms) and the `ifconfig` (~3 ms). At 1 s: floatip 2.96 s vs keepalived
  3.50 s (0.85 ×; keepalived adds its skew) and ucarp 4.09 s. At 0.1 s the
  two are level: 302 vs 300 ms (1.01 ×). In this run the cut fell right after
  a heartbeat each time; an earlier run of the same bench measured 270 ms
  (0.89 ×). floatip spends 10 ms proving the address free before it adds it,
  which keepalived never checks.
- **Freeze**: while n1 is stopped its kernel keeps answering for the VIP, so
  both nodes hold it from n2's take-over until n1 runs again: the *whole run*
  dual-holder time is mostly this frozen time, the longer the earlier n2
  takes over (floatip detects first). What a daemon controls is the time after
  SIGCONT: floatip 2.8 ms (the thawed node sees its loop stalled, re-probes and
  steps down; the VIP stays on n2: one flip), keepalived 2.8 ms (n1 takes the
  VIP back by priority: two flips), ucarp 718 ms.
- **Partition**: both sides hold the VIP while the heartbeat is cut (no daemon
  can avoid that without fencing). After the heal floatip settles when the
  next announce crosses: median 663 ms at 1 s and 66 ms at 0.1 s (max 110 ms:
  one interval plus the step-down and the 5 ms sampling), slower than
  keepalived (~280 ms / 21 ms). What the client sees matters more: after
  ucarp's (1 s) and keepalived's (0.1 s) heal the client still sends to n2,
  which gave the VIP up, and gets **no answer until the end of the watch**
  (5 of 5 runs: nobody re-announced the VIP); floatip's winner re-announces
  and the client follows within ~5 ms.
- **Idle cost**: RSS 3.9 MiB (target 4 MiB: met since the release profile
  optimises for size; keepalived 13 MiB for its two processes, ucarp 5.2 MiB).
  CPU 0.070–0.078 % of a core at 1 s (target 0.05 %: **not met**; keepalived
  0.004–0.018 %, ucarp 0.007–0.017 %) and 0.64–0.79 % at 100 ms (keepalived
  0.04–0.14 %). The cost is per packet: a floatip pair exchanges four small
  packets a second (the seed's TCP heartbeat and its echo, plus each node's
  UDP announce) where VRRP sends one advert from the master, and on a veth
  LAN the sender's thread also pays the kernel's delivery to the other
  namespaces. Polling the interface (one `getifaddrs`, 35 µs) and building
  status snapshots were removed from the idle path; what remains is the
  protocol itself.
"#;
