use std::sync::mpsc;

use crate::health::Run;
use crate::vocabulary::Event;

/// What reaches the loop.
#[derive(Debug)]
pub enum Input {
    Machine(Event),
    Reload,
    /// One run of service check `index` (`floating_ip.track[index]`).
    Check(Run),
    /// `floatip status` wants a snapshot, as JSON.
    Status(mpsc::Sender<String>),
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
