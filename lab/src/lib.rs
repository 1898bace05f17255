//! The namespace test lab: a small LAN of network namespaces for floatip's
//! integration tests and its bench. [`floatip`] holds what is specific to
//! the daemon (configs, starting it, reading its log, result tables).
//!
//! ```text
//!   fip-<tag>-sw      bridge br0 with ports p-n1, p-n2, ..., p-client
//!   fip-<tag>-n1      eth0 192.0.2.11/24   (nodes numbered in the order given)
//!   fip-<tag>-n2      eth0 192.0.2.12/24
//!   fip-<tag>-client  eth0 192.0.2.100/24
//! ```
//!
//! [`chaos`] is the randomised fault run behind `make chaos`.
//!
//! Nothing is created in the host's namespace: each veth pair is created
//! inside the switch namespace with its peer placed straight into the node's
//! namespace. Only 192.0.2.0/24 (TEST-NET-1) is used. Everything (programs
//! started with [`Lab::spawn`], namespaces, the temp dir) is torn down on
//! drop, also when the test panics.
//!
//! ```ignore
//! let Some(lab) = floatip_lab::Lab::new("failover", &["n1", "n2"]) else { return };
//! let cfg = lab.write_file("gateway.yml", "floating_ip:\n  enabled: true\n");
//! let n1 = lab.spawn("n1", &[BIN, "--config", cfg.to_str().unwrap()], &[("RUST_LOG", "debug")]);
//! let vip = "192.0.2.234".parse().unwrap();
//! assert_eq!(lab.wait_single_holder(vip, Duration::from_secs(10)).as_deref(), Some("n1"));
//! let watch = lab.watch(vip, 9999);
//! watch.mark("kill");
//! n1.kill9();
//! let report = watch.stop();
//! assert!(report.outage_after("kill") < Duration::from_secs(3), "{}", report.summary());
//! ```
//!
//! A test that is not run as root, or without `ip`, gets `None` and returns
//! after one `SKIP:` line, unless the lab is [`required`] (CI): then
//! [`Lab::new`] panics, so a test that cannot run fails instead of passing.
//!
//! Needs the Debian packages `iproute2` (always) and `nftables` (for
//! [`Lab::partition`] and [`Lab::cut`] only).

pub mod chaos;
pub mod etcd;
pub mod floatip;
mod netns;
mod proc;
mod stranger;
mod watch;

pub use netns::in_netns;
pub use proc::Proc;
pub use stranger::{noise, noise_of, Capture, Captured, Flood, Held, Hold, Stranger};
pub use watch::{analyze, Answer, HolderSample, Report, Watch};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use netns::NsWorker;

/// The name of the client node, always present.
pub const CLIENT: &str = "client";
/// Prefix of everything the lab creates (namespaces, temp dirs).
const PREFIX: &str = "fip-";
/// Bound on any one `ip`/`nft` command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when a test that cannot run must fail rather than skip:
/// `FLOATIP_REQUIRE_LAB=1` (set by `.ci/run`) or `CI=true`.
pub fn required() -> bool {
    std::env::var("FLOATIP_REQUIRE_LAB").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true")
}

/// Reports that `test` cannot run because of `why`: one `SKIP:` line, or a
/// panic when the lab is [`required`].
pub fn cannot_run(test: &str, why: &str) {
    assert!(
        !required(),
        "{test} cannot run: {why} (FLOATIP_REQUIRE_LAB=1 or CI=true: a test that cannot run fails)"
    );
    eprintln!("SKIP: {test}: {why}");
}

/// A LAN of namespaces; see the module docs.
pub struct Lab {
    test: String,
    tag: String,
    ip_bin: PathBuf,
    dir: PathBuf,
    /// Node names in order (without the client).
    nodes: Vec<String>,
    /// Namespaces created so far, in creation order (switch first).
    created: Vec<String>,
    /// One worker thread per namespace (nodes, client, switch).
    workers: Vec<(String, Arc<NsWorker>)>,
    macs: Vec<(String, String)>,
    procs: Mutex<Vec<Weak<proc::ProcInner>>>,
    partitions: Mutex<Vec<u16>>,
}

impl Lab {
    /// Builds the LAN with `nodes` (names of at most 6 characters, not
    /// "client" or "sw") plus the client. When not root or `ip` is missing,
    /// returns `None` after [`cannot_run`] (which panics in CI). Panics
    /// (after cleaning up) if building fails for any other reason.
    pub fn new(test_name: &str, nodes: &[&str]) -> Option<Lab> {
        let Some(ip_bin) = usable_ip() else {
            cannot_run(test_name, "needs root and iproute2 (ip netns)");
            return None;
        };
        assert!(
            !nodes.is_empty() && nodes.len() <= 80,
            "a lab has 1..=80 nodes"
        );
        for n in nodes {
            assert!(
                !n.is_empty() && n.len() <= 6 && n.chars().all(|c| c.is_ascii_alphanumeric()),
                "node name {n:?}: use 1..=6 ASCII letters/digits (namespace names are limited to 15 chars)"
            );
            assert!(*n != CLIENT && *n != "sw", "node name {n:?} is reserved");
        }
        remove_stale_labs(&ip_bin);
        let (tag, dir) = new_tag_and_dir();
        let mut lab = Lab {
            test: test_name.to_string(),
            tag,
            ip_bin,
            dir,
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            created: Vec::new(),
            workers: Vec::new(),
            macs: Vec::new(),
            procs: Mutex::new(Vec::new()),
            partitions: Mutex::new(Vec::new()),
        };
        lab.build(); // panics on failure; Drop cleans up what exists
        Some(lab)
    }

    fn build(&mut self) {
        let sw = self.ns("sw");
        self.add_ns(&sw);
        self.ip_cmd(&[
            "-n",
            &sw,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
        ]);
        self.ip_cmd(&["-n", &sw, "link", "set", "lo", "up"]);
        self.ip_cmd(&["-n", &sw, "link", "set", "br0", "up"]);
        let all = self.hosts();
        for node in &all {
            let ns = self.ns(node);
            self.add_ns(&ns);
            let port = format!("p-{node}");
            let last = self.ip(node).octets()[3];
            let mac = format!("02:00:c0:00:02:{last:02x}");
            self.ip_cmd(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            self.ip_cmd(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            self.ip_cmd(&["-n", &sw, "link", "set", &port, "up"]);
            self.ip_cmd(&["-n", &ns, "link", "set", "lo", "up"]);
            self.ip_cmd(&["-n", &ns, "link", "set", "eth0", "address", &mac]);
            self.ip_cmd(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.ip(node)),
                "brd",
                "+",
                "dev",
                "eth0",
            ]);
            self.ip_cmd(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        // Wait (bounded) for carrier everywhere, then read back the MACs.
        let deadline = Instant::now() + Duration::from_secs(10);
        for (name, w) in &self.workers {
            let ifname = if *name == "sw" { "br0" } else { "eth0" };
            loop {
                if w.run(move || netns::link_running(ifname)) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "lab: {ifname} in {name} not up after 10 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for node in &all {
            let mac = self
                .worker(node)
                .run(|| netns::link_mac("eth0"))
                .expect("eth0 has a MAC");
            self.macs.push((node.clone(), mac));
        }
    }

    /// Creates namespace `ns`, its worker thread, and silences IPv6.
    fn add_ns(&mut self, ns: &str) {
        self.ip_cmd(&["netns", "add", ns]);
        self.created.push(ns.to_string());
        let worker = NsWorker::start(ns).unwrap_or_else(|e| panic!("lab: {e}"));
        // No IPv6: no DAD, router solicitations or MLD reports on the LAN.
        // (Absent when the host kernel has IPv6 off: nothing to silence.)
        let _ = worker.run(|| {
            netns::write_sysctl("net/ipv6/conf/all/disable_ipv6", "1").and(netns::write_sysctl(
                "net/ipv6/conf/default/disable_ipv6",
                "1",
            ))
        });
        let name = ns
            .rsplit('-')
            .next()
            .expect("namespace has a node suffix")
            .to_string();
        self.workers.push((name, Arc::new(worker)));
    }

    fn worker(&self, node: &str) -> &Arc<NsWorker> {
        self.workers
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, w)| w)
            .unwrap_or_else(|| panic!("no node {node:?}; nodes: {:?} and {CLIENT:?}", self.nodes))
    }

    /// Runs `ip` with `args` (bounded), panicking with its output on failure.
    fn ip_cmd(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.ip_bin);
        cmd.args(args);
        let out = run_bounded(cmd, COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("lab: ip {}: {e}", args.join(" ")));
        assert!(
            out.status.success(),
            "lab: ip {} failed: {}",
            args.join(" "),
            output_text(&out)
        );
        out
    }

    // ----- naming ------------------------------------------------------

    /// The namespace of `node` ("client" and "sw", the switch, included).
    pub fn ns(&self, node: &str) -> String {
        format!("{PREFIX}{}-{node}", self.tag)
    }

    /// The address of `node` on the LAN: the i-th node is 192.0.2.(11+i),
    /// the client 192.0.2.100.
    pub fn ip(&self, node: &str) -> Ipv4Addr {
        if node == CLIENT {
            return Ipv4Addr::new(192, 0, 2, 100);
        }
        let i = self
            .nodes
            .iter()
            .position(|n| n == node)
            .unwrap_or_else(|| panic!("no node {node:?}; nodes: {:?}", self.nodes));
        Ipv4Addr::new(192, 0, 2, 11 + i as u8)
    }

    /// The IPv6 address of `node` once [`Lab::enable_ipv6`] ran: 2001:db8::(11+i),
    /// the client 2001:db8::100 (the same last digits as the IPv4 ones).
    pub fn ip6(&self, node: &str) -> Ipv6Addr {
        let last = u16::from(self.ip(node).octets()[3]);
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, hex_digits(last))
    }

    /// Turns IPv6 on in the nodes' and the client's namespaces (only there: the switch
    /// and the host are untouched) and gives each eth0 its [`Lab::ip6`] address in
    /// 2001:db8::/64 besides its link-local one. Duplicate address detection, router
    /// solicitations and router advertisements stay off, so addresses are usable at
    /// once and nothing but neighbour discovery and MLD goes on the LAN. The bridge
    /// floods multicast (no MLD snooping), as a plain switch does.
    pub fn enable_ipv6(&self) {
        let sw = self.ns("sw");
        self.ip_cmd(&[
            "-n",
            &sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        let all = self.hosts();
        for node in &all {
            self.in_ns(node, || {
                for (key, value) in [
                    ("accept_dad", "0"),
                    ("dad_transmits", "0"),
                    ("accept_ra", "0"),
                    ("router_solicitations", "0"),
                    ("disable_ipv6", "0"),
                ] {
                    for scope in ["all", "default", "lo", "eth0"] {
                        netns::write_sysctl(&format!("net/ipv6/conf/{scope}/{key}"), value)?;
                    }
                }
                Ok::<(), String>(())
            })
            .unwrap_or_else(|e| panic!("lab: enable IPv6 in {node}: {e}"));
            let addr = format!("{}/64", self.ip6(node));
            let ns = self.ns(node);
            self.ip_cmd(&[
                "-n", &ns, "-6", "addr", "add", &addr, "dev", "eth0", "nodad",
            ]);
        }
    }

    /// [`Lab::enable_ipv6`], then takes every IPv4 address off the nodes' and the
    /// client's eth0: an IPv6-only LAN, 2001:db8::/64 and link-local. The switch and the
    /// host are untouched.
    pub fn ipv6_only(&self) {
        self.enable_ipv6();
        for node in &self.hosts() {
            let ns = self.ns(node);
            self.ip_cmd(&["-n", &ns, "-4", "addr", "flush", "dev", "eth0"]);
        }
    }

    /// The MAC address of `node`'s eth0, lowercase `aa:bb:cc:dd:ee:ff`.
    pub fn mac(&self, node: &str) -> String {
        self.macs
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("no node {node:?}"))
    }

    /// The nodes and then the client: every namespace on the LAN but the switch.
    fn hosts(&self) -> Vec<String> {
        self.nodes
            .iter()
            .cloned()
            .chain([CLIENT.to_string()])
            .collect()
    }

    /// The floatip nodes, in order (without the client).
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The lab's temp dir (removed on drop; kept if `FIP_LAB_KEEP=1`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    // ----- running things ---------------------------------------------

    /// Runs `argv` inside `node`'s namespace (`ip netns exec`), bounded to
    /// 30 s, and returns its output.
    pub fn run(&self, node: &str, argv: &[&str]) -> Output {
        let ns = self.ns_checked(node);
        let mut cmd = Command::new(&self.ip_bin);
        cmd.args(["netns", "exec", &ns]).args(argv);
        run_bounded(cmd, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("lab: {argv:?} in {node}: {e}"))
    }

    /// Like [`Lab::run`], but panics with the output unless it succeeds;
    /// returns stdout.
    pub fn sh_ok(&self, node: &str, argv: &[&str]) -> String {
        let out = self.run(node, argv);
        assert!(
            out.status.success(),
            "lab: {argv:?} in {node} failed: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `argv` inside `node`'s namespace with extra environment `env`;
    /// stdout and stderr go to `<lab dir>/<node>-<prog>-<n>.log`.
    pub fn spawn(&self, node: &str, argv: &[&str], env: &[(&str, &str)]) -> Proc {
        let ns = self.ns_checked(node);
        let prog = argv
            .first()
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        let log = self.dir.join(format!("{node}-{prog}-{}.log", procs.len()));
        let (p, weak) = Proc::spawn(&self.ip_bin, &ns, argv, env, log);
        procs.push(weak);
        p
    }

    /// Writes `contents` to `<lab dir>/<name>` and returns the path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Runs `f` on a thread inside `node`'s namespace (cheap: no fork).
    pub fn in_ns<R, F>(&self, node: &str, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.worker(node).run(f)
    }

    fn ns_checked(&self, node: &str) -> String {
        self.worker(node); // panics for unknown nodes
        self.ns(node)
    }

    // ----- observing --------------------------------------------------

    /// The nodes (client excluded) that have `vip` on any interface, in node
    /// order. Costs one netlink dump per node on long-lived namespace
    /// threads: well under a millisecond, fine to call every few ms.
    pub fn holders(&self, vip: impl Into<IpAddr>) -> Vec<String> {
        watch::holders_of(&self.node_workers(), vip.into())
    }

    fn node_workers(&self) -> Vec<(String, Arc<NsWorker>)> {
        self.workers
            .iter()
            .filter(|(n, _)| self.nodes.contains(n))
            .cloned()
            .collect()
    }

    /// Waits until exactly one node holds `vip` and returns it; `None`
    /// after `timeout`.
    pub fn wait_single_holder(&self, vip: impl Into<IpAddr>, timeout: Duration) -> Option<String> {
        let vip = vip.into();
        let mut found = None;
        self.wait_until(timeout, Duration::from_millis(5), || {
            let h = self.holders(vip);
            found = (h.len() == 1).then(|| h[0].clone());
            found.is_some()
        });
        found
    }

    /// Calls `cond` every `poll` until it returns true (then true) or
    /// `timeout` has passed (then false). `cond` is always called at least
    /// once, and once more at the deadline.
    pub fn wait_until(
        &self,
        timeout: Duration,
        poll: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep(poll.min(deadline - now));
        }
    }

    /// The client's neighbour (ARP or NDP) entry for `ip`: the MAC it would
    /// send to, or `None` if it has no usable entry (absent, INCOMPLETE, FAILED).
    pub fn client_neigh_mac(&self, ip: impl Into<IpAddr>) -> Option<String> {
        let ip = ip.into();
        let ns = self.ns(CLIENT);
        let out = self.ip_cmd(&["-n", &ns, "neigh", "show", &ip.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&ip.to_string()))?;
        let mut words = line.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        let mac = words.next()?.to_lowercase();
        (!line.contains("FAILED") && !line.contains("INCOMPLETE")).then_some(mac)
    }

    /// Forgets the client's neighbour entry for `ip` (so its next packet
    /// sends a fresh ARP request).
    pub fn client_neigh_flush(&self, ip: impl Into<IpAddr>) {
        let ip = ip.into();
        let ns = self.ns(CLIENT);
        self.ip_cmd(&["-n", &ns, "neigh", "flush", "to", &ip.to_string()]);
    }

    /// Starts a [`Watch`] of `vip`: UDP responders on `udp_port` in every
    /// node, a client probing every 2 ms, and a holder sampler every 5 ms.
    pub fn watch(&self, vip: impl Into<IpAddr>, udp_port: u16) -> Watch {
        let nodes: Vec<(String, String)> =
            self.nodes.iter().map(|n| (n.clone(), self.ns(n))).collect();
        let workers = self.node_workers();
        Watch::start(vip.into(), udp_port, &nodes, &self.ns(CLIENT), workers)
    }

    // ----- faults -----------------------------------------------------

    /// Sets the switch port of `node` down or up: the node's eth0 loses or
    /// regains carrier (its own link state stays administratively up).
    /// Done on the switch's namespace thread, not with `ip`, so the port
    /// has changed when this returns: a caller's mark right after it is
    /// the moment of the fault.
    pub fn link(&self, node: &str, up: bool) {
        self.ns_checked(node);
        let port = format!("p-{node}");
        self.worker("sw")
            .run(move || netns::set_link(&port, up))
            .unwrap_or_else(|e| panic!("lab: switch port of {node}: {e}"));
    }

    /// Blocks (`on`) or unblocks TCP and UDP traffic to or from `port`
    /// between the floatip nodes (the client is not affected), with an
    /// nftables table in every node namespace that drops, on input, such
    /// packets from any address but the client's (other nodes' broadcasts
    /// included). Dropping on input only makes it look like a real
    /// partition: sends succeed and vanish, connects time out (an output
    /// rule would make `send` fail at once with EPERM). Established
    /// connections stall too. Idempotent. Errors if `nft` is missing
    /// (Debian package `nftables`).
    pub fn partition(&self, port: u16, on: bool) -> Result<(), String> {
        let table = format!("fip_lab_{port}");
        let client = self.ip(CLIENT);
        let rules = format!(
            "\x20 chain input {{\n\
             \x20   type filter hook input priority -10; policy accept;\n\
             \x20   iifname \"lo\" accept\n\
             \x20   ip saddr != {client} meta l4proto {{ tcp, udp }} th dport {port} drop\n\
             \x20   ip saddr != {client} meta l4proto {{ tcp, udp }} th sport {port} drop\n\
             \x20 }}\n"
        );
        let script = nft_table_script("inet", &table, on.then_some(rules.as_str()));
        for node in &self.nodes {
            self.nft(node, &script)?;
        }
        let mut parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        parts.retain(|p| *p != port);
        if on {
            parts.push(port);
        }
        Ok(())
    }

    /// Cuts (`on`) or restores every frame between nodes `a` and `b`, ARP
    /// included, with an nftables bridge table in the switch namespace that
    /// drops what the bridge forwards from one's port to the other's. Both
    /// still reach the other nodes and the client. Idempotent. Errors if
    /// `nft` is missing (Debian package `nftables`).
    pub fn cut(&self, a: &str, b: &str, on: bool) -> Result<(), String> {
        self.ns_checked(a);
        self.ns_checked(b);
        let table = format!("fip_cut_{a}_{b}");
        let rules = format!(
            "\x20 chain forward {{\n\
             \x20   type filter hook forward priority -10; policy accept;\n\
             \x20   iifname \"p-{a}\" oifname \"p-{b}\" drop\n\
             \x20   iifname \"p-{b}\" oifname \"p-{a}\" drop\n\
             \x20 }}\n"
        );
        self.nft(
            "sw",
            &nft_table_script("bridge", &table, on.then_some(rules.as_str())),
        )
    }

    /// Runs the nftables `script` inside `node`'s namespace ("sw" included).
    fn nft(&self, node: &str, script: &str) -> Result<(), String> {
        let nft = find_program("nft").ok_or_else(|| {
            "partitions need the `nft` command: install the Debian package `nftables`".to_string()
        })?;
        let mut cmd = Command::new(&self.ip_bin);
        cmd.args(["netns", "exec", &self.ns(node)])
            .arg(&nft)
            .args(["-f", "-"]);
        let out = run_bounded_stdin(cmd, script.as_bytes(), COMMAND_TIMEOUT)
            .map_err(|e| format!("nft in {node}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft in {node} failed: {}\nscript:\n{script}",
                output_text(&out)
            ))
        }
    }
}

/// An nftables script that (re)creates `table` of `family` with `body`, or
/// only removes it when `body` is `None`; declaring the table first makes
/// the delete succeed when it does not exist yet.
fn nft_table_script(family: &str, table: &str, body: Option<&str>) -> String {
    let mut s = format!("table {family} {table} {{}}\ndelete table {family} {table}\n");
    if let Some(body) = body {
        s += &format!("table {family} {table} {{\n{body}}}\n");
    }
    s
}

impl Drop for Lab {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let procs: Vec<_> = self
            .procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .filter_map(|w| w.upgrade())
            .collect();
        for p in &procs {
            p.kill_now();
        }
        if panicking {
            // The logs are about to be deleted: show their tails.
            for p in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
                let path = p.path();
                if path.extension().and_then(|e| e.to_str()) != Some("log") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(60)..].join("\n");
                eprintln!(
                    "----- lab {}: tail of {} -----\n{tail}",
                    self.test,
                    path.display()
                );
            }
        }
        drop(procs);
        self.workers.clear(); // joins the namespace threads (unless a Watch still holds one)
                              // Delete in reverse order: nodes first, the switch last. Keep going on errors.
        for ns in self.created.iter().rev() {
            let mut cmd = Command::new(&self.ip_bin);
            cmd.args(["netns", "del", ns]);
            match run_bounded(cmd, COMMAND_TIMEOUT) {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!("lab: ip netns del {ns}: {}", output_text(&out)),
                Err(e) => eprintln!("lab: ip netns del {ns}: {e}"),
            }
        }
        if std::env::var("FIP_LAB_KEEP").as_deref() == Ok("1") {
            eprintln!("lab {}: kept {}", self.test, self.dir.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("lab: remove {}: {e}", self.dir.display());
        }
    }
}

// ----- helpers ----------------------------------------------------------

/// `n` read as hex digits: 234 → 0x234, so an IPv6 address ends like its IPv4 twin.
fn hex_digits(n: u16) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(0)
}

/// The `ip` binary if we are root and `ip netns` works.
fn usable_ip() -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let ip = find_program("ip")?;
    let mut cmd = Command::new(&ip);
    cmd.args(["netns", "list"]);
    run_bounded(cmd, COMMAND_TIMEOUT)
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ip)
}

/// Finds an executable in `$PATH`, then in the sbin directories (which a
/// non-login root shell or CI may not have in `$PATH`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').filter(|d| !d.is_empty()).map(PathBuf::from);
    let extra = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .into_iter()
        .map(PathBuf::from);
    dirs.chain(extra).map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// A fresh 4-character tag (so `fip-<tag>-client` fits in 15 characters)
/// and the lab's temp dir `<tmp>/fip-lab-<tag>`, which records our PID so a
/// later run can remove labs left behind by a killed test process.
fn new_tag_and_dir() -> (String, PathBuf) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    for attempt in 0..1000u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut x = (std::process::id() as u64) << 32
            ^ (COUNTER.fetch_add(1, Ordering::Relaxed) as u64).wrapping_mul(0x9e37_79b9)
            ^ nanos as u64
            ^ attempt as u64;
        x = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let tag: String = (0..4)
            .map(|i| ALPHABET[((x >> (i * 8 + 20)) % 36) as usize] as char)
            .collect();
        let dir = std::env::temp_dir().join(format!("{PREFIX}lab-{tag}"));
        let taken = Path::new("/run/netns")
            .join(format!("{PREFIX}{tag}-sw"))
            .exists();
        if taken || std::fs::create_dir(&dir).is_err() {
            continue;
        }
        std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
            .expect("write lab owner file");
        return (tag, dir);
    }
    panic!("lab: no free tag after 1000 attempts");
}

/// Removes namespaces and temp dirs of labs whose test process has died
/// (killed before its Drop could run). Only touches labs with an owner file.
fn remove_stale_labs(ip_bin: &Path) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten().take(10_000) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(tag) = name.strip_prefix(&format!("{PREFIX}lab-")) else {
            continue;
        };
        let Ok(pid) = std::fs::read_to_string(e.path().join("owner.pid")) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.trim()).exists();
        if alive || tag.len() != 4 {
            continue;
        }
        let prefix = format!("{PREFIX}{tag}-");
        for ns in std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
        {
            let ns = ns.file_name().to_string_lossy().into_owned();
            if ns.starts_with(&prefix) {
                let mut cmd = Command::new(ip_bin);
                cmd.args(["netns", "del", &ns]);
                let _ = run_bounded(cmd, COMMAND_TIMEOUT);
            }
        }
        let _ = std::fs::remove_dir_all(e.path());
    }
}

/// Runs `cmd` with its output captured, killing it after `timeout`.
fn run_bounded(cmd: Command, timeout: Duration) -> Result<Output, String> {
    run_bounded_stdin(cmd, &[], timeout)
}

fn run_bounded_stdin(mut cmd: Command, input: &[u8], timeout: Duration) -> Result<Output, String> {
    use std::io::Write;
    cmd.stdin(if input.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| format!("write stdin: {e}"))?;
    }
    // Read the pipes on threads so a chatty command cannot block on them.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill(); // by PID, not yet reaped
            let _ = child.wait();
            return Err(format!("timed out after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// What a command printed, stdout then stderr, trimmed.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

fn output_text(out: &Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}
