//! What the integration tests and the bench know about floatip: configuration
//! files, starting the daemon in lab nodes, reading its log, and printing
//! measured numbers. The binary is always passed in (`bin`): the tests use the
//! one cargo built for them, the bench the release build.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Lab, Proc, Report, Watch};

/// The zero-config floating IP of the lab's 192.0.2.0/24: x.y.z.234.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 234);
/// The lab's IPv6 floating address, in the documentation prefix: the IPv4 one's twin.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x234);
/// `floating_ip.ip` of an IPv6-only group.
pub const IPV6_ONLY_IP: &str = "ip: \"2001:db8::234/64\"";
/// `floating_ip.ip` of a dual-stack group: both floating addresses.
pub const DUAL_STACK_IP: &str = "ip: [192.0.2.234, \"2001:db8::234/64\"]";
/// The default heartbeat port.
pub const ECHO_PORT: u16 = 61111;
/// UDP port of the lab's responders / client probe (anything but the echo port).
pub const WATCH_PORT: u16 = 9999;
/// UDP port of a watch of an IPv6 address (its responders bind `[::]`, which on Linux
/// also takes the IPv4 port of the same number), so both families can be watched at once.
pub const WATCH_PORT6: u16 = 9998;

/// An unrelated section that floatip must ignore, as in a real `gateway.yml`.
const OTHER_SECTION: &str = "elasticsearch:\n  hosts: [\"http://localhost:9200\"]\n";

/// Heartbeat interval and detection timeout of a test.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Timing {
    /// What zero config gives: interval 1000 ms, timeout 10000 ms.
    pub const DEFAULT: Timing = Timing {
        interval: ms(1000),
        timeout: ms(10_000),
    };
    /// The fast setting: interval 100 ms, timeout 300 ms.
    pub const FAST: Timing = Timing {
        interval: ms(100),
        timeout: ms(300),
    };

    /// A node listens 1.5 intervals at start before it may take over; the
    /// ARP probe and `ifconfig` add a few ms, 200 ms covers them generously.
    pub fn startup_bound(&self) -> Duration {
        self.interval * 3 / 2 + ms(200)
    }

    /// Allowed dual-holder time: one interval plus a CI margin.
    pub fn dual_bound(&self) -> Duration {
        self.interval + ms(100)
    }

    /// Allowed outage after a planned hand-over (SIGTERM, `release`,
    /// preemption): well under the detection time, so a hand-over that fell
    /// back to detection fails, and at least 500 ms for a loaded CI machine.
    /// How fast it really is belongs to the bench.
    pub fn handover_bound(&self) -> Duration {
        (self.timeout / 2).max(ms(500))
    }

    /// Allowed outage after an unplanned failure: the timeout plus a CI margin.
    pub fn outage_bound(&self) -> Duration {
        self.timeout + ms(700)
    }
}

pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `gateway.yml` with zero config (just `enabled: true`) next to an unrelated
/// section; `extra` lines (without indentation) go under `floating_ip`.
pub fn zero_config(extra: &[&str]) -> String {
    let mut s = format!("{OTHER_SECTION}floating_ip:\n  enabled: true\n");
    for line in extra {
        s += &format!("  {line}\n");
    }
    s
}

/// Zero config plus the given echo timing (and `extra` keys).
pub fn timed_config(t: Timing, extra: &[&str]) -> String {
    let echo = format!(
        "echo: {{interval_in_ms: {}, timeout_in_ms: {}}}",
        t.interval.as_millis(),
        t.timeout.as_millis()
    );
    let mut lines = vec![echo.as_str()];
    lines.extend_from_slice(extra);
    zero_config(&lines)
}

/// A lab whose nodes and client also speak IPv6 (see [`Lab::enable_ipv6`]); `None`
/// where a lab cannot run, a kernel without IPv6 included.
pub fn dual_stack_lab(test: &str, nodes: &[&str]) -> Option<Lab> {
    let lab = ipv6_capable_lab(test, nodes)?;
    lab.enable_ipv6();
    Some(lab)
}

/// A lab whose nodes and client speak IPv6 only (see [`Lab::ipv6_only`]); `None` where
/// a lab cannot run, a kernel without IPv6 included.
pub fn ipv6_only_lab(test: &str, nodes: &[&str]) -> Option<Lab> {
    let lab = ipv6_capable_lab(test, nodes)?;
    lab.ipv6_only();
    Some(lab)
}

fn ipv6_capable_lab(test: &str, nodes: &[&str]) -> Option<Lab> {
    if !Path::new("/proc/sys/net/ipv6").exists() {
        crate::cannot_run(test, "the kernel has IPv6 turned off (ipv6.disable=1)");
        return None;
    }
    Lab::new(test, nodes)
}

/// The other node of a pair n1, n2.
pub fn other(node: &str) -> &'static str {
    if node == "n1" {
        "n2"
    } else {
        "n1"
    }
}

/// How a failover test moves the address off its holder.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// A planned stop.
    Sigterm,
    /// A crash, then `floatip release` (what systemd's `ExecStopPost` runs).
    KillAndRelease,
    /// The holder's switch port goes down.
    LinkCut,
}

impl Fault {
    /// The outage a test allows: a hand-over's, or for a cut the detection time's.
    pub fn bound(self, t: Timing) -> Duration {
        match self {
            Fault::Sigterm | Fault::KillAndRelease => t.handover_bound(),
            Fault::LinkCut => t.outage_bound(),
        }
    }

    /// Inflicts the fault on `node`, whose daemon is `daemon` run with `cfg`; returns once
    /// the signal is sent, `release` has returned, or the port is down.
    pub fn inflict(self, lab: &Lab, bin: &str, node: &str, daemon: &Proc, cfg: &Path) {
        match self {
            Fault::Sigterm => {
                daemon.stop();
            }
            Fault::KillAndRelease => {
                daemon.kill9();
                release(lab, bin, node, cfg);
            }
            Fault::LinkCut => lab.link(node, false),
        }
    }

    /// Brings `node` back: a new daemon in `daemon`'s place, or its port up again.
    pub fn undo(self, lab: &Lab, bin: &str, node: &str, daemon: &mut Proc, cfg: &Path) {
        match self {
            Fault::Sigterm | Fault::KillAndRelease => *daemon = start(lab, bin, node, cfg),
            Fault::LinkCut => lab.link(node, true),
        }
    }
}

/// Which nodes hold the IPv4 and which the IPv6 floating address.
pub fn dual_holders(lab: &Lab) -> (Vec<String>, Vec<String>) {
    (lab.holders(VIP), lab.holders(VIP6))
}

/// Waits until one node holds both floating addresses and nobody holds either
/// elsewhere; returns it with the time taken.
pub fn wait_one_dual_holder(lab: &Lab, timeout: Duration) -> (String, Duration) {
    let t0 = Instant::now();
    let mut seen = (vec![], vec![]);
    let one = lab.wait_until(timeout, ms(5), || {
        seen = dual_holders(lab);
        seen.0.len() == 1 && seen.0 == seen.1
    });
    assert!(
        one,
        "no single holder of both {VIP} and {VIP6} within {timeout:?}; holders {seen:?}"
    );
    (seen.0[0].clone(), t0.elapsed())
}

/// The two clients of a dual-stack group at once, under the same conditions: a watch of
/// [`VIP6`] and one of [`VIP`], marked together (for tests, the bench and the demo).
pub struct DualWatch {
    pub v6: Watch,
    pub v4: Watch,
}

impl DualWatch {
    /// Starts both watches and waits until `holder` answers each.
    pub fn answered_by(lab: &Lab, holder: &str) -> DualWatch {
        let watch = DualWatch {
            v6: lab.watch(VIP6, WATCH_PORT6),
            v4: lab.watch(VIP, WATCH_PORT),
        };
        assert!(
            watch.wait_answer_from(holder, Duration::from_secs(3)),
            "a client never reached {holder}"
        );
        watch
    }

    pub fn mark(&self, label: &str) {
        self.v6.mark(label);
        self.v4.mark(label);
    }

    /// Waits up to `timeout` (each) until `node` answers both clients.
    pub fn wait_answer_from(&self, node: &str, timeout: Duration) -> bool {
        self.v6.wait_answer_from(node, timeout) && self.v4.wait_answer_from(node, timeout)
    }

    /// The IPv6 and the IPv4 report.
    pub fn stop(self) -> (Report, Report) {
        (self.v6.stop(), self.v4.stop())
    }
}

/// How long the client kept sending elsewhere once `node` held the watched address: from
/// the first sample (every 5 ms) with `node` alone holding it to its first answer from
/// `node`. Zero when the answer came within the sample that saw the move.
pub fn followed_within(r: &Report, node: &str) -> Option<Duration> {
    let held = r.holder_log.iter().find(|h| h.holders == [node])?.at;
    let answered = r.answer_log.iter().find(|a| a.node == node)?.at;
    Some(answered.saturating_sub(held))
}

/// Writes `contents` as `<node>.yml` in the lab dir.
pub fn write_config(lab: &Lab, node: &str, contents: &str) -> PathBuf {
    lab.write_file(&format!("{node}.yml"), contents)
}

/// A group key for the lab, written as a root-owned 0600 key file; returns its path.
pub fn write_key(lab: &Lab) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = lab.write_file(
        "key",
        "c2VjcmV0LWtleS1mb3ItdGhlLWhvc3RpbGUtdGVzdC0xMjM0NTY3OA==\n",
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
        .expect("chmod the lab key");
    path_str(&p).to_string()
}

/// A fast config for `node` with a status socket in the lab dir, keyed with `key_file`
/// unless it is `None`, plus `extra` keys.
pub fn group_config(lab: &Lab, node: &str, key_file: Option<&str>, extra: &[&str]) -> PathBuf {
    let sock = format!("status_socket: {}/{node}.sock", lab.dir().display());
    let auth = key_file.map(|k| format!("auth: {{key_file: {k}}}"));
    let mut lines: Vec<&str> = vec![&sock];
    lines.extend(auth.as_deref());
    lines.extend_from_slice(extra);
    write_config(lab, node, &timed_config(Timing::FAST, &lines))
}

/// Starts `<bin> -v run -c <cfg>` in `node`.
pub fn start(lab: &Lab, bin: &str, node: &str, cfg: &Path) -> Proc {
    lab.spawn(node, &[bin, "-v", "run", "-c", path_str(cfg)], &[])
}

/// Runs `floatip release -c <cfg>` in `node` (what systemd's ExecStopPost
/// does after the daemon died); panics unless it exits 0.
pub fn release(lab: &Lab, bin: &str, node: &str, cfg: &Path) -> String {
    let out = lab.run(node, &[bin, "release", "-c", path_str(cfg)]);
    let text = crate::printed(&out);
    assert!(
        out.status.success(),
        "floatip release in {node}: {}: {text}",
        out.status
    );
    text
}

/// An argv prefix that runs the rest with each `(source, target)` bind-mounted, in a
/// private mount namespace (the host's files are untouched).
pub fn masked<'a>(binds: &[(&'a str, &'a str)]) -> Vec<&'a str> {
    let mut argv = vec![
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
    ];
    argv.push("while [ \"$1\" != -- ]; do mount --bind \"$1\" \"$2\" || exit 99; shift 2; done; shift; exec \"$@\"");
    argv.push("sh");
    for (source, target) in binds {
        argv.extend([*source, *target]);
    }
    argv.push("--");
    argv
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("lab paths are UTF-8")
}

/// The state-change lines (`A -> B: reason`) of a daemon's log.
pub fn transitions(p: &Proc) -> Vec<String> {
    p.log()
        .lines()
        .filter(|l| {
            ["BACKUP -> ", "MASTER -> ", "FAULT -> "]
                .iter()
                .any(|s| l.contains(s))
        })
        .map(str::to_string)
        .collect()
}

/// The role a daemon last logged (its start counts as BACKUP).
pub fn last_role(p: &Proc) -> &'static str {
    let t = transitions(p);
    let Some(last) = t.last() else {
        return "BACKUP";
    };
    let after = last.split(" -> ").nth(1).unwrap_or_default();
    ["BACKUP", "MASTER", "FAULT"]
        .into_iter()
        .find(|r| after.starts_with(r))
        .unwrap_or("?")
}

/// Lines of a daemon's log containing `needle` (for the report).
pub fn log_lines(p: &Proc, needle: &str) -> Vec<String> {
    p.log()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Waits until exactly `node` holds the VIP and nobody else does, and has
/// done so for `stable`; the error names the holders last seen.
pub fn hold_alone(
    lab: &Lab,
    node: &str,
    stable: Duration,
    timeout: Duration,
) -> Result<(), String> {
    hold_steady(lab, stable, timeout, |holders| holders == [node])
        .map_err(|last| format!("{node} did not hold {VIP} alone for {stable:?} within {timeout:?}; holders now {last:?}"))
}

/// Waits until `steady(holders of the VIP)` has been true for `stable`,
/// polling every 5 ms; the error is the holders last seen.
pub fn hold_steady(
    lab: &Lab,
    stable: Duration,
    timeout: Duration,
    mut steady: impl FnMut(&[String]) -> bool,
) -> Result<(), Vec<String>> {
    let mut since: Option<Instant> = None;
    let mut last = Vec::new();
    let ok = lab.wait_until(timeout, ms(5), || {
        last = lab.holders(VIP);
        if steady(&last) {
            since.get_or_insert_with(Instant::now).elapsed() >= stable
        } else {
            since = None;
            false
        }
    });
    if ok {
        Ok(())
    } else {
        Err(last)
    }
}

/// [`hold_alone`], panicking on failure (for tests).
pub fn wait_stable_holder(lab: &Lab, node: &str, stable: Duration, timeout: Duration) {
    if let Err(e) = hold_alone(lab, node, stable, timeout) {
        panic!("{e}");
    }
}

/// Waits for exactly one holder (any node) and returns it with the time taken.
pub fn wait_one_holder(lab: &Lab, timeout: Duration) -> (String, Duration) {
    let t0 = Instant::now();
    let holder = lab.wait_single_holder(VIP, timeout).unwrap_or_else(|| {
        panic!(
            "no single holder of {VIP} within {timeout:?}; holders {:?}",
            lab.holders(VIP)
        )
    });
    (holder, t0.elapsed())
}

/// Nodes that held the VIP at any sample at or after the mark `label`.
pub fn holders_after(r: &Report, label: &str) -> Vec<String> {
    let from = r.mark(label);
    let mut seen: Vec<String> = Vec::new();
    for s in r.holder_log.iter().filter(|s| s.at >= from) {
        for h in &s.holders {
            if !seen.contains(h) {
                seen.push(h.clone());
            }
        }
    }
    seen
}

/// Changes of the answering node at or after the mark `label`.
pub fn flips_after(r: &Report, label: &str) -> usize {
    let from = r.mark(label);
    let mut prev: Option<&str> = r
        .answer_log
        .iter()
        .rfind(|a| a.at < from)
        .map(|a| a.node.as_str());
    let mut flips = 0;
    for a in r.answer_log.iter().filter(|a| a.at >= from) {
        if prev.is_some_and(|p| p != a.node) {
            flips += 1;
        }
        prev = Some(&a.node);
    }
    flips
}

/// Prints the one-line scenario summary operators and the report quote:
/// `SCENARIO <name> outage=23ms dual=0ms flips=1` (then `extra`, if any).
pub fn scenario_line(
    name: &str,
    outage: Duration,
    dual: Duration,
    flips: usize,
    extra: &str,
) -> String {
    let mut line = format!(
        "SCENARIO {name} outage={}ms dual={}ms flips={flips}",
        outage.as_millis(),
        dual.as_millis()
    );
    if !extra.is_empty() {
        line = format!("{line} {extra}");
    }
    println!("{line}");
    line
}

/// A watch of the VIP whose client already gets answers from `holder`.
pub fn watch_answered_by(lab: &Lab, holder: &str) -> Watch {
    let watch = lab.watch(VIP, WATCH_PORT);
    assert!(
        watch.wait_answer_from(holder, Duration::from_secs(3)),
        "client never reached {holder}"
    );
    watch
}

/// Puts the VIP on `node`'s eth0 under floatip's alias label, as a daemon
/// killed without `floatip release` leaves it.
pub fn add_alias_copy(lab: &Lab, node: &str) {
    let vip = format!("{VIP}/24");
    lab.sh_ok(
        node,
        &[
            "ip", "addr", "add", &vip, "dev", "eth0", "label", "eth0:234",
        ],
    );
}

/// The transitions of each named node, a line each, for a failure message.
pub fn transition_logs(procs: &[(&str, &Proc)]) -> String {
    procs
        .iter()
        .map(|(node, p)| format!("{node}: {:?}", transitions(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Measured numbers against their bounds. Checks are recorded, the table is
/// printed, then [`Table::assert_all`] fails the test listing every miss, so
/// a failing run still shows all the numbers.
pub struct Table {
    title: String,
    rows: Vec<Row>,
}

struct Row {
    what: String,
    measured: String,
    bound: String,
    ok: bool,
}

/// One line of at most 60 characters for the table (the full text goes into
/// the failure message).
fn cell(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= 60 {
        one
    } else {
        format!("{}...", one.chars().take(57).collect::<String>())
    }
}

impl Table {
    pub fn new(title: &str) -> Table {
        Table {
            title: title.to_string(),
            rows: Vec::new(),
        }
    }

    /// Records `measured <= bound`.
    pub fn at_most(&mut self, what: &str, measured: Duration, bound: Duration) -> bool {
        let ok = measured <= bound;
        self.row(
            what,
            format!("{} ms", measured.as_millis()),
            format!("<= {} ms", bound.as_millis()),
            ok,
        )
    }

    /// Records `measured < bound`.
    pub fn below(&mut self, what: &str, measured: Duration, bound: Duration) -> bool {
        let ok = measured < bound;
        self.row(
            what,
            format!("{} ms", measured.as_millis()),
            format!("< {} ms", bound.as_millis()),
            ok,
        )
    }

    /// Records an equality.
    pub fn equal<T: std::fmt::Debug + PartialEq>(
        &mut self,
        what: &str,
        measured: T,
        expected: T,
    ) -> bool {
        let ok = measured == expected;
        self.row(
            what,
            format!("{measured:?}"),
            format!("== {expected:?}"),
            ok,
        )
    }

    /// Records a yes/no fact.
    pub fn check(&mut self, what: &str, ok: bool, detail: impl Into<String>) -> bool {
        self.row(what, detail.into(), "true".into(), ok)
    }

    fn row(&mut self, what: &str, measured: String, bound: String, ok: bool) -> bool {
        self.rows.push(Row {
            what: what.to_string(),
            measured,
            bound,
            ok,
        });
        ok
    }

    pub fn print(&self) {
        let w = self
            .rows
            .iter()
            .map(|r| r.what.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let m = self
            .rows
            .iter()
            .map(|r| cell(&r.measured).chars().count())
            .max()
            .unwrap_or(0)
            .max(8);
        let mut s = format!("----- {} -----\n", self.title);
        s += &format!("{:<w$}  {:<m$}  {:<12}  ok\n", "check", "measured", "bound");
        for r in &self.rows {
            s += &format!(
                "{:<w$}  {:<m$}  {:<12}  {}\n",
                r.what,
                cell(&r.measured),
                r.bound,
                if r.ok { "yes" } else { "NO" }
            );
        }
        print!("{s}");
    }

    /// [`Table::finish`] quoting the watch's summary and the transitions of `procs`.
    /// [`Table::finish`] with each round's summary and the daemons' transitions.
    pub fn finish_rounds(&self, summaries: &[String], procs: &[(String, Proc)]) {
        let logs: Vec<(&str, &Proc)> = procs.iter().map(|(n, p)| (n.as_str(), p)).collect();
        self.finish(&format!(
            "{}\n{}",
            summaries.join("\n"),
            transition_logs(&logs)
        ));
    }

    pub fn finish_with_transitions(&self, report: &Report, procs: &[(&str, &Proc)]) {
        self.finish(&format!("{}\n{}", report.summary(), transition_logs(procs)));
    }

    /// Prints the table, then panics (with `context`) if any check failed.
    pub fn finish(&self, context: &str) {
        self.print();
        let failed: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.ok)
            .map(|r| format!("{}: {} (want {})", r.what, r.measured, r.bound))
            .collect();
        assert!(
            failed.is_empty(),
            "{}: failed checks: {failed:#?}\n{context}",
            self.title
        );
    }
}
