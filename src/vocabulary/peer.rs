use std::net::IpAddr;

use super::{BootId, Mac, Priority, Role};

/// What a node says about itself in every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub node: IpAddr,
    pub boot: BootId,
    pub priority: Priority,
    pub role: Role,
    pub mac: Mac,
    pub preempt_request: bool,
}

impl Peer {
    /// The order that settles two masters: priority, then node address.
    pub fn rank_key(&self) -> (Priority, IpAddr) {
        (self.priority, self.node)
    }
}
