//! Starting floatip, keepalived and ucarp in lab nodes, and the partition
//! that cuts their heartbeats.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use floatip_lab::floatip::{
    dual_stack_lab, ipv6_only_lab, DUAL_STACK_IP, ECHO_PORT, IPV6_ONLY_IP, VIP, VIP6,
};
use floatip_lab::{printed, Lab, Proc};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::model::{Daemon, Setting};

/// Priorities: n1 is preferred.
const PRIO_N1: u8 = 150;
const PRIO_N2: u8 = 100;

pub struct Tools {
    pub floatip: PathBuf,
    pub keepalived: Option<PathBuf>,
    pub ucarp: Option<PathBuf>,
    /// etcd for floatip-etcd (Debian package `etcd-server`).
    pub etcd: Option<PathBuf>,
    pub ip: PathBuf,
    pub nft: PathBuf,
}

impl Tools {
    pub fn has(&self, d: Daemon) -> bool {
        match d {
            Daemon::Floatip => self.floatip.is_file(),
            Daemon::FloatipEtcd => self.floatip.is_file() && self.etcd.is_some(),
            Daemon::Keepalived => self.keepalived.is_some(),
            Daemon::Ucarp => self.ucarp.is_some(),
        }
    }
}

/// The floating addresses a pair holds and the lab that carries them: the one
/// place that knows what each kind of group needs, so that another kind is one
/// more variant here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Floating {
    /// 192.0.2.234 alone, on an IPv4 LAN (the main rows).
    V4,
    /// 192.0.2.234 and 2001:db8::234/64, moved together, on a dual-stack LAN.
    DualStack,
    /// 2001:db8::234/64 alone, on a LAN without any IPv4 address: the
    /// heartbeat (or VRRP) runs over IPv6.
    Ipv6Only,
}

impl Floating {
    pub fn name(self) -> &'static str {
        match self {
            Floating::V4 => "ipv4",
            Floating::DualStack => "dual-stack",
            Floating::Ipv6Only => "ipv6-only",
        }
    }

    /// What the group holds and on which LAN, for the docs.
    pub fn title(self) -> &'static str {
        match self {
            Floating::V4 => "192.0.2.234 on an IPv4 LAN",
            Floating::DualStack => {
                "192.0.2.234 and 2001:db8::234/64 on a dual-stack LAN (IPv4 heartbeat)"
            }
            Floating::Ipv6Only => "2001:db8::234/64 on an IPv6-only LAN (IPv6 heartbeat)",
        }
    }

    /// A lab for `nodes` with the address families of this kind of group;
    /// `None` where a lab cannot run.
    pub fn lab(self, tag: &str, nodes: &[&str]) -> Option<Lab> {
        match self {
            Floating::V4 => Lab::new(tag, nodes),
            Floating::DualStack => dual_stack_lab(tag, nodes),
            Floating::Ipv6Only => ipv6_only_lab(tag, nodes),
        }
    }

    /// The addresses n1 must hold alone before a fault.
    pub fn addresses(self) -> Vec<IpAddr> {
        match self {
            Floating::V4 => vec![VIP.into()],
            Floating::DualStack => vec![VIP.into(), VIP6.into()],
            Floating::Ipv6Only => vec![VIP6.into()],
        }
    }

    /// floatip's `ip:` line, unless the zero-config default (x.y.z.234) is meant.
    fn floatip_ip(self) -> Option<&'static str> {
        match self {
            Floating::V4 => None,
            Floating::DualStack => Some(DUAL_STACK_IP),
            Floating::Ipv6Only => Some(IPV6_ONLY_IP),
        }
    }

    /// keepalived's address blocks. A VRRP instance advertises one family,
    /// so on a dual-stack LAN the IPv6 address is `virtual_ipaddress_excluded`:
    /// added, removed and announced (unsolicited Neighbor Advertisements) with
    /// the instance, not carried in its adverts. On an IPv6-only LAN it is the
    /// instance's own address: VRRP runs over IPv6 (link-local source, ff02::12).
    fn keepalived_addresses(self) -> String {
        let block = |name: &str, address: String| {
            format!("    {name} {{\n        {address} dev eth0\n    }}\n")
        };
        let v4 = block("virtual_ipaddress", format!("{VIP}/24"));
        match self {
            Floating::V4 => v4,
            Floating::DualStack => v4 + &block("virtual_ipaddress_excluded", format!("{VIP6}/64")),
            Floating::Ipv6Only => block("virtual_ipaddress", format!("{VIP6}/64")),
        }
    }

    /// Whether keepalived's adverts are IPv6, which only VRRP version 3 has.
    fn vrrp_over_ipv6(self) -> bool {
        self == Floating::Ipv6Only
    }

    /// Whether `d` can hold these addresses (ucarp has no IPv6).
    pub fn supports(self, d: Daemon) -> bool {
        self == Floating::V4 || d != Daemon::Ucarp
    }
}

pub fn priority(node: &str) -> u8 {
    if node == "n1" {
        PRIO_N1
    } else {
        PRIO_N2
    }
}

/// floatip's config for the addresses `f`; with `etcd` (the endpoint) the
/// election is etcd's, with a lease of the setting's detection budget.
pub fn floatip_config(
    s: Setting,
    f: Floating,
    node: &str,
    status_socket: &str,
    etcd: Option<&str>,
) -> String {
    let mut c = format!(
        "floating_ip:\n  enabled: true\n  priority: {}\n  status_socket: {status_socket}\n  echo:\n    interval_in_ms: {}\n    timeout_in_ms: {}\n",
        priority(node),
        s.interval().as_millis(),
        s.detection().as_millis()
    );
    if let Some(ip) = f.floatip_ip() {
        c += &format!("  {ip}\n");
    }
    if let Some(endpoint) = etcd {
        c += &format!(
            "  election: etcd\n  etcd:\n    endpoints: [{endpoint}]\n    lease_ttl_in_ms: {}\n",
            s.lease_ttl().as_millis()
        );
    }
    c
}

/// The client URL of the etcd member on lab node e1.
pub fn etcd_endpoint(lab: &Lab) -> String {
    format!("http://{}:2379", lab.ip(ETCD_NODE))
}

/// The lab node that runs etcd for floatip-etcd.
pub const ETCD_NODE: &str = "e1";

pub fn keepalived_config(s: Setting, f: Floating, node: &str) -> String {
    // VRRPv2 has whole-second adverts and IPv4 only.
    let version = if s == Setting::OneSec && !f.vrrp_over_ipv6() {
        ""
    } else {
        "    version 3\n"
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
         {}\
         }}\n",
        priority(node),
        s.keepalived_advert(),
        f.keepalived_addresses()
    )
}

pub fn ucarp_args(node_ip: Ipv4Addr, node: &str, up: &str, down: &str) -> Vec<String> {
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

pub fn ucarp_scripts(ip: &Path) -> (String, String) {
    let ip = ip.display();
    (
        format!("#!/bin/sh\n# ucarp up: $1 = interface, $2 = VIP\nexec {ip} addr add \"$2\"/24 dev \"$1\"\n"),
        format!("#!/bin/sh\n# ucarp down: $1 = interface, $2 = VIP\n{ip} addr del \"$2\"/24 dev \"$1\" 2>/dev/null\nexit 0\n"),
    )
}

/// Config files and commands of one setting and kind of group, for the docs
/// (named `<setting>/<daemon>/...`, a group other than IPv4 after the setting).
pub fn configs_for_docs(s: Setting, f: Floating, tools: &Tools) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let at = match f {
        Floating::V4 => s.name().to_string(),
        _ => format!("{}/{}", s.name(), f.name()),
    };
    for node in ["n1", "n2"] {
        let sock = format!("<lab dir>/{node}.sock");
        m.insert(
            format!("{at}/floatip/{node}.yml"),
            floatip_config(s, f, node, &sock, None),
        );
        if s.supports(Daemon::FloatipEtcd) && f == Floating::V4 {
            m.insert(
                format!("{at}/floatip-etcd/{node}.yml"),
                floatip_config(s, f, node, &sock, Some("http://<e1 address>:2379")),
            );
        }
        m.insert(
            format!("{at}/floatip/command"),
            "floatip run -c <node>.yml".to_string(),
        );
        if !s.supports(Daemon::Keepalived) {
            continue;
        }
        m.insert(
            format!("{at}/keepalived/{node}.conf"),
            keepalived_config(s, f, node),
        );
        m.insert(
            format!("{at}/keepalived/command"),
            "keepalived --dont-fork --log-console --no-syslog --vrrp -f <node>.conf -p <dir>/<node>.pid -r <dir>/<node>-vrrp.pid -c <dir>/<node>-check.pid".to_string(),
        );
        if s.supports(Daemon::Ucarp) && f.supports(Daemon::Ucarp) {
            let ip = if node == "n1" {
                "192.0.2.11"
            } else {
                "192.0.2.12"
            };
            let args = ucarp_args(ip.parse().unwrap(), node, "<dir>/up.sh", "<dir>/down.sh");
            m.insert(
                format!("{at}/ucarp/{node}.command"),
                format!("ucarp {}", args.join(" ")),
            );
        }
    }
    if s.supports(Daemon::Ucarp) && f.supports(Daemon::Ucarp) {
        let (up, down) = ucarp_scripts(&tools.ip);
        m.insert(format!("{at}/ucarp/up.sh"), up);
        m.insert(format!("{at}/ucarp/down.sh"), down);
    }
    m
}

/// Starts `d` on `node` of `lab`, holding the IPv4 VIP; returns the process
/// and (floatip) its config.
pub fn start(lab: &Lab, tools: &Tools, d: Daemon, s: Setting, node: &str) -> (Proc, PathBuf) {
    start_holding(lab, tools, d, s, Floating::V4, node)
}

/// [`start`] for the addresses `f`.
pub fn start_holding(
    lab: &Lab,
    tools: &Tools,
    d: Daemon,
    s: Setting,
    f: Floating,
    node: &str,
) -> (Proc, PathBuf) {
    assert!(
        f.supports(d),
        "{} cannot hold a {} group",
        d.name(),
        f.name()
    );
    let dir = lab.dir().to_path_buf();
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    match d {
        Daemon::Floatip | Daemon::FloatipEtcd => {
            let etcd = (d == Daemon::FloatipEtcd).then(|| etcd_endpoint(lab));
            let cfg = lab.write_file(
                &format!("{node}.yml"),
                &floatip_config(s, f, node, &p(&format!("{node}.sock")), etcd.as_deref()),
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
            let cfg = lab.write_file(&format!("{node}.conf"), &keepalived_config(s, f, node));
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
///
/// floatip-etcd: n1 is cut off from etcd too (every frame between n1's and
/// e1's ports), so that neither side can tell on its own who is alive.
pub fn partition(lab: &Lab, tools: &Tools, d: Daemon, on: bool) -> Result<(), String> {
    let what = match d {
        Daemon::Floatip | Daemon::FloatipEtcd => format!("meta l4proto {{ tcp, udp }} th dport {ECHO_PORT} drop\n    meta l4proto {{ tcp, udp }} th sport {ECHO_PORT} drop"),
        Daemon::Keepalived | Daemon::Ucarp => "ip protocol 112 drop".to_string(),
    };
    let etcd_cut = if d == Daemon::FloatipEtcd {
        format!("\n    iifname {{ \"p-n1\", \"p-{ETCD_NODE}\" }} oifname {{ \"p-n1\", \"p-{ETCD_NODE}\" }} drop")
    } else {
        String::new()
    };
    let rules = on.then(|| {
        format!(
            "  chain forward {{\n    type filter hook forward priority -10; policy accept;\n\
             \x20   iifname {{ \"p-n1\", \"p-n2\" }} oifname {{ \"p-n1\", \"p-n2\" }} ether type ip jump heartbeat{etcd_cut}\n  }}\n\
             \x20 chain heartbeat {{\n    {what}\n  }}\n"
        )
    });
    switch_table(lab, tools, "fip_bench_partition", rules.as_deref())
}

/// Drops `percent` % of every frame the switch forwards, at random (`on`),
/// or stops dropping: the lossy LAN of the flap soak.
pub fn frame_loss(lab: &Lab, tools: &Tools, percent: u32, on: bool) -> Result<(), String> {
    let rules = on.then(|| {
        format!(
            "  chain forward {{\n    type filter hook forward priority -20; policy accept;\n\
             \x20   numgen random mod 100 < {percent} drop\n  }}\n"
        )
    });
    switch_table(lab, tools, "fip_bench_loss", rules.as_deref())
}

/// (Re)creates the nftables bridge `table` in the switch with `rules`, or
/// only removes it (`None`).
fn switch_table(lab: &Lab, tools: &Tools, table: &str, rules: Option<&str>) -> Result<(), String> {
    let mut script = format!("table bridge {table} {{}}\ndelete table bridge {table}\n");
    if let Some(rules) = rules {
        script += &format!("table bridge {table} {{\n{rules}}}\n");
    }
    let file = lab.write_file(
        &format!("{table}-{}.nft", if rules.is_some() { "on" } else { "off" }),
        &script,
    );
    let out = lab.run(
        "sw",
        &[&tools.nft.to_string_lossy(), "-f", &file.to_string_lossy()],
    );
    if !out.status.success() {
        return Err(format!(
            "nft in the switch: {}\nscript:\n{script}",
            printed(&out)
        ));
    }
    Ok(())
}

pub fn signal_group(p: &Proc, sig: Signal) {
    // The process leads its own group and is not reaped while we hold it.
    let _ = killpg(Pid::from_raw(p.pid() as i32), sig);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dual_stack_group_puts_both_addresses_in_each_config() {
        let f = Floating::DualStack;
        let floatip = floatip_config(Setting::Fast, f, "n1", "/s", None);
        assert!(
            floatip.contains(&format!("  {DUAL_STACK_IP}\n")),
            "{floatip}"
        );
        let keepalived = keepalived_config(Setting::Fast, f, "n1");
        assert!(
            keepalived.contains(&format!(
                "    virtual_ipaddress {{\n        {VIP}/24 dev eth0\n    }}\n    virtual_ipaddress_excluded {{\n        {VIP6}/64 dev eth0\n    }}\n"
            )),
            "{keepalived}"
        );
        assert!(!f.supports(Daemon::Ucarp));
    }

    #[test]
    fn an_ipv6_only_group_holds_the_ipv6_address_alone_with_vrrp_over_ipv6() {
        let f = Floating::Ipv6Only;
        let floatip = floatip_config(Setting::OneSec, f, "n1", "/s", None);
        assert!(
            floatip.contains(&format!("  {IPV6_ONLY_IP}\n")),
            "{floatip}"
        );
        for s in [Setting::OneSec, Setting::Fast] {
            let keepalived = keepalived_config(s, f, "n1");
            assert!(keepalived.contains("    version 3\n"), "{keepalived}");
            assert!(
                keepalived.contains(&format!(
                    "    virtual_ipaddress {{\n        {VIP6}/64 dev eth0\n    }}\n"
                )),
                "{keepalived}"
            );
            assert!(!keepalived.contains(&VIP.to_string()), "{keepalived}");
        }
        assert_eq!(f.addresses(), [IpAddr::from(VIP6)]);
        assert!(!f.supports(Daemon::Ucarp));
    }

    #[test]
    fn an_ipv4_group_keeps_the_zero_config_address() {
        let floatip = floatip_config(Setting::OneSec, Floating::V4, "n1", "/s", None);
        assert!(!floatip.contains("\n  ip:"), "{floatip}");
        let keepalived = keepalived_config(Setting::OneSec, Floating::V4, "n1");
        assert!(!keepalived.contains(&VIP6.to_string()), "{keepalived}");
        assert!(!keepalived.contains("version"), "{keepalived}");
        assert!(
            keepalived.contains(&format!("{VIP}/24 dev eth0")),
            "{keepalived}"
        );
    }
}
