//! The Prometheus endpoint (`floating_ip.metrics.listen`): a [`Sample`] the daemon loop
//! builds when asked, encoded by the Prometheus project's own client crate.
//!
//! The server thread never sees the state: like the status socket, it asks the loop for a
//! sample per scrape ([`Server::start`]) and only turns it into text.

mod server;

use std::collections::BTreeMap;
use std::net::IpAddr;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

pub use server::Server;

use crate::vocabulary::{Histogram, Role};

/// Take-over buckets (seconds): a hand-over takes milliseconds, a silent holder the
/// detection time plus the probe.
pub const TAKEOVER_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What one scrape shows; plain values, copied out of the loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Every floating address of the group.
    pub addresses: Vec<IpAddr>,
    pub role: Role,
    pub priority: u8,
    /// Peers heard within the detection time.
    pub peers: usize,
    /// (from, to) → how many times.
    pub transitions: BTreeMap<(Role, Role), u64>,
    /// Fault seen → address added, per take-over.
    pub takeover: Histogram,
    pub round_trips: Histogram,
    pub dropped: u64,
    pub forged: u64,
    pub replayed: u64,
    /// Each service check's name and state (`pending`, `up`, `down`).
    pub checks: Vec<(String, String)>,
    pub reloads: u64,
}

/// Every check state a check can be in, so each shows as a 0/1 series.
const CHECK_STATES: [&str; 3] = ["pending", "up", "down"];

type Labels = Vec<(&'static str, String)>;

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

/// A histogram from the loop's plain data.
#[derive(Debug)]
struct Buckets(Histogram);

impl TypedMetric for Buckets {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Buckets {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(
            self.0.sum(),
            self.0.count(),
            &self.0.buckets(),
            None,
        )
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Sample {
    /// The OpenMetrics text Prometheus scrapes.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut r = Registry::default();
        let holding = Family::<Labels, Gauge>::default();
        for address in &self.addresses {
            holding
                .get_or_create(&vec![("address", address.to_string())])
                .set(i64::from(self.role == Role::Master));
        }
        r.register(
            "floatip_holding",
            "1 while this node holds the floating address",
            holding,
        );
        let role = Family::<Labels, Gauge>::default();
        for each in [Role::Backup, Role::Master, Role::Fault] {
            role.get_or_create(&vec![("role", each.to_string())])
                .set(i64::from(self.role == each));
        }
        r.register("floatip_role", "1 for this node's current role", role);
        let transitions = Family::<Labels, Counter>::default();
        for ((from, to), n) in &self.transitions {
            let labels = vec![("from", from.to_string()), ("to", to.to_string())];
            transitions.get_or_create(&labels).inc_by(*n);
        }
        r.register(
            "floatip_transitions",
            "Role changes since start",
            transitions,
        );
        r.register(
            "floatip_takeover_seconds",
            "From the holder's loss seen to the address added, per take-over",
            Buckets(self.takeover.clone()),
        );
        r.register(
            "floatip_heartbeat_round_trip_seconds",
            "Heartbeat sent to the holder until its echo was read",
            Buckets(self.round_trips.clone()),
        );
        r.register(
            "floatip_priority",
            "The priority announced now (checks' penalties applied)",
            gauge(i64::from(self.priority)),
        );
        r.register(
            "floatip_peers",
            "Peers heard within the detection time",
            gauge(self.peers as i64),
        );
        r.register(
            "floatip_messages_dropped",
            "Heartbeat messages dropped (malformed, foreign, over a limit, unauthenticated)",
            counter(self.dropped),
        );
        r.register(
            "floatip_messages_forged",
            "Messages that failed authentication",
            counter(self.forged),
        );
        r.register(
            "floatip_messages_replayed",
            "Authenticated messages refused as replayed or reordered",
            counter(self.replayed),
        );
        r.register(
            "floatip_config_reloads",
            "Configuration reloads applied (SIGHUP)",
            counter(self.reloads),
        );
        let checks = Family::<Labels, Gauge>::default();
        for (name, state) in &self.checks {
            for each in CHECK_STATES {
                checks
                    .get_or_create(&vec![("check", name.clone()), ("state", each.to_string())])
                    .set(i64::from(state == each));
            }
        }
        r.register(
            "floatip_check_state",
            "1 for each service check's current state",
            checks,
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_shows_holding_its_role_and_a_takeover() {
        let mut takeover = Histogram::new(TAKEOVER_BUCKETS);
        takeover.observe(0.004);
        let sample = Sample {
            addresses: vec![
                "192.0.2.234".parse().unwrap(),
                "2001:db8::234".parse().unwrap(),
            ],
            role: Role::Master,
            priority: 100,
            peers: 1,
            transitions: [((Role::Backup, Role::Master), 1)].into(),
            takeover,
            round_trips: Histogram::new(&[0.001]),
            dropped: 3,
            forged: 2,
            replayed: 1,
            checks: vec![("web".into(), "up".into())],
            reloads: 0,
        };
        let text = sample.encode().unwrap();
        for line in [
            "floatip_holding{address=\"192.0.2.234\"} 1",
            "floatip_holding{address=\"2001:db8::234\"} 1",
            "floatip_role{role=\"MASTER\"} 1",
            "floatip_role{role=\"BACKUP\"} 0",
            "floatip_transitions_total{from=\"BACKUP\",to=\"MASTER\"} 1",
            "floatip_takeover_seconds_bucket{le=\"0.005\"} 1",
            "floatip_takeover_seconds_count 1",
            "floatip_messages_forged_total 2",
            "floatip_check_state{check=\"web\",state=\"up\"} 1",
            "floatip_check_state{check=\"web\",state=\"down\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
