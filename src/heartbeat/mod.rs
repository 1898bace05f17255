//! Network traffic → events. The threads here own sockets, never state: they read what
//! peers say, turn it into [`crate::state::Event`]s on a channel, and answer heartbeats
//! from a read-only snapshot of the local node that the daemon keeps current.

mod broadcast;
mod listener;
mod prober;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use broadcast::{send_released, Broadcaster};
pub use listener::Listener;
pub use prober::Prober;

use crate::config::Priority;
use crate::state::{Mac, Peer, Role};
use crate::wire::{Kind, Message};

/// What this node says about itself; written by the daemon loop, read by the threads.
#[derive(Debug, Clone, Copy)]
pub struct LocalView {
    pub role: Role,
    pub priority: Priority,
    pub preempt_request: bool,
}

/// The local node as the heartbeat threads see it.
#[derive(Debug)]
pub struct Local {
    pub vip: Ipv4Addr,
    pub node: Ipv4Addr,
    pub mac: Mac,
    pub boot: u64,
    seq: AtomicU64,
    view: Mutex<LocalView>,
    /// Messages dropped as malformed, foreign or unauthenticated (for `floatip status`).
    pub rejected: AtomicU64,
}

impl Local {
    pub fn new(vip: Ipv4Addr, node: Ipv4Addr, mac: Mac, boot: u64, view: LocalView) -> Arc<Local> {
        Arc::new(Local { vip, node, mac, boot, seq: AtomicU64::new(0), view: Mutex::new(view), rejected: AtomicU64::new(0) })
    }

    pub fn set_view(&self, view: LocalView) {
        if let Ok(mut v) = self.view.lock() {
            *v = view;
        }
    }

    pub fn view(&self) -> LocalView {
        // A poisoned lock only means a panicking writer; the value is still a valid view.
        *self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reject(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn message(&self, kind: Kind, successor: Option<Ipv4Addr>) -> Message {
        let v = self.view();
        Message {
            kind,
            role: v.role,
            priority: v.priority,
            preempt_request: v.preempt_request,
            vip: self.vip,
            node: self.node,
            mac: self.mac,
            successor,
            boot: self.boot,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// The sender of a message, as the state machine sees it.
pub fn peer_of(m: &Message) -> Peer {
    Peer { node: m.node, boot: m.boot, priority: m.priority, role: m.role, mac: m.mac, preempt_request: m.preempt_request }
}

/// A random id for this daemon run, so a restarted node is told apart from its past self.
pub fn new_boot_id() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes = (t.as_nanos() as u64 ^ u64::from(std::process::id())).to_be_bytes();
    }
    u64::from_be_bytes(bytes)
}
