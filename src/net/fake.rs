//! An in-memory [`Host`] for tests: the address and link as plain flags, scripted probe
//! answers, every call recorded, failures injected per operation.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use super::{Host, NetError, Observation};
use crate::vocabulary::{Mac, ProbeOutcome};

/// The fake's state; tests keep a handle to it while the daemon owns the host.
#[derive(Debug, Default)]
pub struct FakeState {
    pub address_present: bool,
    pub link_up: bool,
    /// Answers for the next probes; an empty script means the address is free.
    pub probes: VecDeque<Result<ProbeOutcome, NetError>>,
    /// The next add fails with this.
    pub fail_add: Option<NetError>,
    /// The next remove fails with this.
    pub fail_remove: Option<NetError>,
    /// Every call, in order: `observe`, `add`, `remove`, `probe <ms>`, `announce`.
    pub calls: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FakeHost(pub Rc<RefCell<FakeState>>);

/// Link up, address absent.
impl Default for FakeHost {
    fn default() -> FakeHost {
        FakeHost(Rc::new(RefCell::new(FakeState {
            link_up: true,
            ..FakeState::default()
        })))
    }
}

impl FakeHost {
    /// A command that ran out of time, as the real host reports it.
    pub fn timeout(command: &str) -> NetError {
        NetError::Command {
            command: command.into(),
            detail: "timed out".into(),
        }
    }

    fn record(&self, call: String) {
        self.0.borrow_mut().calls.push(call);
    }
}

impl Host for FakeHost {
    fn observe(&self) -> Result<Observation, NetError> {
        self.record("observe".into());
        let s = self.0.borrow();
        Ok(Observation {
            link_up: s.link_up,
            present: usize::from(s.address_present),
            addresses: 1,
        })
    }

    fn add_address(&self) -> Result<(), NetError> {
        self.record("add".into());
        let mut s = self.0.borrow_mut();
        match s.fail_add.take() {
            Some(e) => Err(e),
            None => {
                s.address_present = true;
                Ok(())
            }
        }
    }

    fn remove_address(&self) -> Result<bool, NetError> {
        self.record("remove".into());
        let mut s = self.0.borrow_mut();
        match s.fail_remove.take() {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut s.address_present)),
        }
    }

    fn probe(&self, wait: Duration) -> Result<ProbeOutcome, NetError> {
        self.record(format!("probe {}", wait.as_millis()));
        let next = self.0.borrow_mut().probes.pop_front();
        next.unwrap_or(Ok(ProbeOutcome::Free))
    }

    fn announce(&self) -> Result<(), NetError> {
        self.record("announce".into());
        Ok(())
    }

    fn mac(&self) -> Mac {
        [2, 0, 0, 0, 0, 11]
    }
}
