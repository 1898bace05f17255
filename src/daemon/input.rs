use std::sync::mpsc;

use crate::election::etcd;
use crate::health::Run;
use crate::metrics::Sample;
use crate::status::Request;
use crate::vocabulary::{Event, Lease};

/// What reaches the loop.
#[derive(Debug)]
pub enum Input {
    Machine(Event),
    Reload,
    /// The kernel says the interface changed (carrier, addresses): look at it now.
    Interface,
    /// One run of service check `index` (`floating_ip.track[index]`).
    Check(Run),
    /// A status socket client (`floatip status`, `floatip handover`) wants an answer, as JSON.
    Status(Request, mpsc::Sender<String>),
    /// A Prometheus scrape wants a sample.
    Metrics(mpsc::Sender<Sample>),
    /// What the election says about the key, for `floatip status`.
    KeyHolder(Option<std::net::IpAddr>),
    /// The election cannot be reached (why): nobody holds until it can.
    ElectionUnreachable(String),
}

impl From<etcd::Event> for Input {
    fn from(event: etcd::Event) -> Input {
        match event {
            etcd::Event::Elected { lease_id, revision } => Input::Machine(Event::Elected(Lease {
                id: lease_id,
                revision,
            })),
            etcd::Event::Lost { reason } => Input::Machine(Event::ElectionLost {
                reason: reason.to_string(),
            }),
            etcd::Event::Holder { node } => Input::KeyHolder(node),
            etcd::Event::Unreachable { reason } => Input::ElectionUnreachable(reason),
        }
    }
}

impl From<Event> for Input {
    fn from(event: Event) -> Input {
        Input::Machine(event)
    }
}

impl From<Run> for Input {
    fn from(run: Run) -> Input {
        Input::Check(run)
    }
}
