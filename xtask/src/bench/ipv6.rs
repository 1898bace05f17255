//! The IPv6 rows: a group whose floating addresses include an IPv6 one (on a
//! dual-stack LAN, or on an IPv6-only one), the same faults as the main rows,
//! watched by an IPv6 client (and, on a dual-stack LAN, an IPv4 client in the
//! same runs).

use std::net::IpAddr;
use std::time::Duration;

use floatip_lab::floatip::{followed_within, VIP, VIP6, WATCH_PORT, WATCH_PORT6};
use floatip_lab::{Lab, Report, Watch};

use super::daemons::{Floating, Tools};
use super::model::{msf, Daemon, Ipv6Run, Scenario, Setting};
use super::scenario::{fault_phase, measured, start_pair, Client};

/// The groups with an IPv6 address the bench measures.
pub const GROUPS: [Floating; 2] = [Floating::DualStack, Floating::Ipv6Only];

/// The settings of the IPv6 rows: 1 s and 0.1 s (the 10 ms setting is
/// floatip's own and has its link cut row).
pub fn settings_of(s: Setting) -> bool {
    s != Setting::TenMs
}

/// The faults of the IPv6 rows for `d`: a planned stop, a crash (floatip's
/// followed by `floatip release`, keepalived's alone: it has no equivalent)
/// and a link cut.
pub fn faults(d: Daemon) -> [Scenario; 3] {
    let crash = if d == Daemon::Floatip {
        Scenario::SigkillRelease
    } else {
        Scenario::Sigkill
    };
    [Scenario::Sigterm, crash, Scenario::LinkCut]
}

/// Whether the IPv6 rows run `d` (floatip, and keepalived for the ratio).
pub fn measures(f: Floating, d: Daemon) -> bool {
    f.supports(d) && matches!(d, Daemon::Floatip | Daemon::Keepalived)
}

/// The clients of an IPv6 row, under the same conditions: one of [`VIP6`]
/// and, where the group has one, one of [`VIP`].
struct Clients {
    v6: Watch,
    v4: Option<Watch>,
}

impl Clients {
    fn of(lab: &Lab, f: Floating) -> Clients {
        let has = |a: IpAddr| f.addresses().contains(&a);
        assert!(has(VIP6.into()), "the IPv6 rows hold an IPv6 address");
        Clients {
            v6: lab.watch(VIP6, WATCH_PORT6),
            v4: has(VIP.into()).then(|| lab.watch(VIP, WATCH_PORT)),
        }
    }
}

impl Client for Clients {
    fn mark(&self, label: &str) {
        self.v6.mark(label);
        if let Some(v4) = &self.v4 {
            v4.mark(label);
        }
    }
    fn wait_answer_from(&self, node: &str, timeout: Duration) -> bool {
        self.v6.wait_answer_from(node, timeout)
            && self
                .v4
                .as_ref()
                .map_or(true, |v4| v4.wait_answer_from(node, timeout))
    }
}

/// One measured run of group `f`: the lab, the daemons' addresses and the
/// clients are those of `f`, the fault as in the main rows.
pub fn run_ipv6_once(
    tools: &Tools,
    f: Floating,
    d: Daemon,
    s: Setting,
    sc: Scenario,
    rep: usize,
) -> Result<Ipv6Run, String> {
    let tag = format!("bench6-{}-{}-{}", d.name(), s.name(), sc.name());
    let lab = f
        .lab(&tag, d.nodes())
        .ok_or("the lab needs root, iproute2 and IPv6")?;
    let pair = start_pair(&lab, tools, d, s, f)?;
    let clients = Clients::of(&lab, f);
    let injected = fault_phase(&lab, tools, d, s, sc, &pair, &clients)?;
    let report = clients.v6.stop();
    let v4 = clients.v4.map(Watch::stop);
    let followed = |r: &Report| followed_within(r, "n2").map(msf);
    let run = Ipv6Run {
        floating: f,
        followed6_ms: followed(&report),
        outage4_ms: v4.as_ref().map(|r| msf(r.outage_after("fault"))),
        followed4_ms: v4.as_ref().and_then(followed),
        v6: measured(&report, d, s, sc, rep, injected),
    };
    pair.stop();
    Ok(run)
}
