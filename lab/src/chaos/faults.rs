//! The faults of a chaos run: what each one does, drawn from the seeded
//! generator. A fault names its targets by role (the holder, the first or
//! second backup in node order), not by node, so a seed replays the same
//! sequence even when a different node happens to hold the address.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::RngExt;

use super::group::Group;
use super::invariants::Event;
use crate::floatip::Timing;
use crate::{Lab, Watch};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// SIGTERM, down for a while, started again.
    Term,
    /// SIGKILL, `floatip release`, down for a while, started again.
    Kill,
    /// SIGSTOP for three timeouts, then SIGCONT.
    Freeze,
    /// The node's switch port down (it loses carrier), then up.
    LinkCut,
    /// Every frame between two nodes dropped by the switch, then allowed.
    Partition,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Term,
        Kind::Kill,
        Kind::Freeze,
        Kind::LinkCut,
        Kind::Partition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Term => "sigterm",
            Kind::Kill => "sigkill",
            Kind::Freeze => "freeze",
            Kind::LinkCut => "link-cut",
            Kind::Partition => "partition",
        }
    }
}

/// Which node a fault hits, by role at the moment it is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Holder,
    /// The k-th node that does not hold the address, in node order.
    Backup(usize),
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: Kind,
    /// One role, or two for a partition.
    pub targets: Vec<Role>,
    /// How long the fault lasts (the node is down, frozen, cut off).
    pub hold: Duration,
    /// Quiet time before the fault, watched like the rest.
    pub pause: Duration,
}

impl Fault {
    /// Draws the next fault: a kind, its targets (the holder half of the
    /// time), how long it holds and the quiet time before it.
    pub fn draw(rng: &mut StdRng, t: Timing) -> Fault {
        let kind = Kind::ALL[rng.random_range(0..Kind::ALL.len())];
        let backup = Role::Backup(rng.random_range(0..2));
        let targets = match kind {
            Kind::Partition if rng.random_bool(1.0 / 3.0) => vec![Role::Backup(0), Role::Backup(1)],
            Kind::Partition => vec![Role::Holder, backup],
            _ if rng.random_bool(0.5) => vec![Role::Holder],
            _ => vec![backup],
        };
        let hold = match kind {
            Kind::Freeze => t.timeout * 3,
            // Down anywhere from a blink to well past the detection time.
            Kind::Term | Kind::Kill => t.timeout * rng.random_range(0..=4),
            Kind::LinkCut | Kind::Partition => t.timeout * rng.random_range(2..=5),
        };
        Fault {
            kind,
            targets,
            hold,
            pause: Duration::from_millis(rng.random_range(500..=1000)),
        }
    }
}

/// The fault's events, marked in the watch as they happen.
pub struct Timeline<'w> {
    watch: &'w Watch,
    pub events: Vec<Event>,
}

impl<'w> Timeline<'w> {
    pub fn new(watch: &'w Watch) -> Timeline<'w> {
        Timeline {
            watch,
            events: Vec::new(),
        }
    }

    pub fn note(&mut self, e: Event) {
        self.watch.mark(&e.label());
        self.events.push(e);
    }
}

/// Injects `f` against `nodes` (the roles resolved to node names), holds it,
/// and repairs it, noting every event. Errors are faults that could not be
/// applied or repaired as meant (a daemon that would not stop, `nft` missing).
pub fn apply(
    f: &Fault,
    nodes: &[String],
    lab: &Lab,
    group: &mut Group,
    tl: &mut Timeline,
) -> Result<(), String> {
    let node = &nodes[0];
    tl.note(Event::Inject);
    match f.kind {
        Kind::Term | Kind::Kill => {
            tl.note(Event::Out(node.clone()));
            let stopped = if f.kind == Kind::Term {
                group.terminate(node)
            } else {
                group.kill_and_release(node)
            };
            tl.note(Event::End);
            std::thread::sleep(f.hold);
            group.restart(node);
            tl.note(Event::In(node.clone()));
            stopped
        }
        Kind::Freeze => {
            tl.note(Event::Out(node.clone()));
            group.freeze(node, true)?;
            std::thread::sleep(f.hold);
            let thawed = group.freeze(node, false);
            tl.note(Event::In(node.clone()));
            tl.note(Event::End);
            thawed
        }
        Kind::LinkCut => {
            tl.note(Event::Out(node.clone()));
            lab.link(node, false);
            std::thread::sleep(f.hold);
            lab.link(node, true);
            tl.note(Event::In(node.clone()));
            tl.note(Event::End);
            Ok(())
        }
        Kind::Partition => {
            let other = &nodes[1];
            lab.cut(node, other, true)?;
            std::thread::sleep(f.hold);
            let healed = lab.cut(node, other, false);
            tl.note(Event::End);
            healed
        }
    }
}
