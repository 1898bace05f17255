use std::sync::mpsc;

use crate::health::Run;
use crate::metrics::Sample;
use crate::status::Request;
use crate::vocabulary::Event;

/// What reaches the loop.
#[derive(Debug)]
pub enum Input {
    Machine(Event),
    Reload,
    /// One run of service check `index` (`floating_ip.track[index]`).
    Check(Run),
    /// A status socket client (`floatip status`, `floatip handover`) wants an answer, as JSON.
    Status(Request, mpsc::Sender<String>),
    /// A Prometheus scrape wants a sample.
    Metrics(mpsc::Sender<Sample>),
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
