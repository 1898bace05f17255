//! The faults of a chaos run: what each one does, drawn from the seeded
//! generator. A fault names its targets by role (the holder, the first or
//! second backup in node order), not by node, so a seed replays the same
//! sequence even when a different node happens to hold the address.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::RngExt;

use super::burst;
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
    /// A keyless stranger floods every member with garbage, forged
    /// announces and replays, each in another member's name.
    Stranger,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Term,
        Kind::Kill,
        Kind::Freeze,
        Kind::LinkCut,
        Kind::Partition,
        Kind::Stranger,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Term => "sigterm",
            Kind::Kill => "sigkill",
            Kind::Freeze => "freeze",
            Kind::LinkCut => "link-cut",
            Kind::Partition => "partition",
            Kind::Stranger => "stranger",
        }
    }
}

/// How long the stranger listens to the group before its burst.
const LISTEN: Duration = Duration::from_millis(300);

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
    /// One role, two for a partition, none for the stranger (it hits all).
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
            Kind::Stranger => Vec::new(),
            _ if rng.random_bool(0.5) => vec![Role::Holder],
            _ => vec![backup],
        };
        let hold = match kind {
            Kind::Freeze => t.timeout * 3,
            // Down anywhere from a blink to well past the detection time.
            Kind::Term | Kind::Kill => t.timeout * rng.random_range(0..=4),
            Kind::LinkCut | Kind::Partition | Kind::Stranger => t.timeout * rng.random_range(2..=5),
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

/// Where a fault happens: the lab, the group, the nodes its roles resolved
/// to, and the stranger's node.
pub struct Scene<'a, 'g> {
    pub lab: &'a Lab,
    pub group: &'a mut Group<'g>,
    pub nodes: Vec<String>,
    pub stranger: &'a str,
}

/// Injects `f`, holds it, and repairs it, noting every event; returns a
/// note for the fault's line, if any. Errors are faults that could not be
/// applied or repaired as meant (a daemon that would not stop, `nft`
/// missing).
pub fn apply(f: &Fault, at: Scene, tl: &mut Timeline) -> Result<Option<String>, String> {
    let Scene {
        lab,
        group,
        nodes,
        stranger,
    } = at;
    tl.note(Event::Inject);
    let node = || nodes[0].clone();
    match f.kind {
        Kind::Term => {
            tl.note(Event::Out(node()));
            let stopped = group.terminate(&node());
            tl.note(Event::End);
            std::thread::sleep(f.hold);
            group.restart(&node());
            tl.note(Event::In(node()));
            stopped.map(|()| None)
        }
        Kind::Kill => {
            // A killed daemon's address stays on its interface, and its kernel keeps
            // serving clients, until `floatip release` removes it: the node is out once
            // release is done (the address gone), not at the kill.
            let stopped = group.kill_and_release(&node());
            tl.note(Event::Out(node()));
            tl.note(Event::End);
            std::thread::sleep(f.hold);
            group.restart(&node());
            tl.note(Event::In(node()));
            stopped.map(|()| None)
        }
        Kind::Freeze => {
            tl.note(Event::Out(node()));
            group.freeze(&node(), true)?;
            std::thread::sleep(f.hold);
            let thawed = group.freeze(&node(), false);
            tl.note(Event::In(node()));
            tl.note(Event::End);
            thawed.map(|()| None)
        }
        Kind::LinkCut => {
            // The node is out once its port is down, not when that is
            // asked for: on a loaded machine the switch can wait long for
            // the kernel's configuration lock, and the node serves the
            // client all that while.
            let asked = Instant::now();
            lab.link(&node(), false);
            tl.note(Event::Out(node()));
            let cutting = asked.elapsed();
            std::thread::sleep(f.hold);
            lab.link(&node(), true);
            tl.note(Event::In(node()));
            tl.note(Event::End);
            Ok(Some(format!("port down after {} ms", cutting.as_millis())))
        }
        Kind::Partition => {
            let (a, b) = (&nodes[0], &nodes[1]);
            lab.cut(a, b, true)?;
            std::thread::sleep(f.hold);
            let healed = lab.cut(a, b, false);
            tl.note(Event::End);
            healed.map(|()| None)
        }
        Kind::Stranger => {
            // Nothing a stranger sends excuses a second holder: the fault
            // "ends" at once, and the whole burst is held to the bounds.
            tl.note(Event::End);
            let members = group.names();
            let listen = f.hold.min(LISTEN);
            let (sent, heard) = burst::run(lab, stranger, &members, listen, f.hold);
            let per_member = sent as f64 / members.len() as f64 / f.hold.as_secs_f64();
            Ok(Some(format!(
                "heard {heard}, sent {sent} ({per_member:.0}/s per member)"
            )))
        }
    }
}
