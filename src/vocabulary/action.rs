use std::net::IpAddr;

use super::{Reason, Role};

/// What the state machine asks the daemon to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    AddAddress,
    RemoveAddress,
    /// Ask the LAN whether anyone answers for the address; reply with [`super::Event::Probe`].
    ProbeAddress,
    /// The same, briefly: the holder said it removed the address and handed it to us.
    ProbeHandedOver,
    SendGarp,
    /// Broadcast our identity and role now.
    Announce,
    /// Send our announce to this node alone: a master that may hold the address too and
    /// that we cannot hear (its answer, once the path is back, settles who keeps it).
    AnnounceTo(IpAddr),
    /// Broadcast that we removed the address, naming who should take it.
    Resign {
        successor: Option<IpAddr>,
    },
    /// Ask this node, by a heartbeat exchange, whether it is a master as it announced;
    /// an answer comes back as [`super::Event::MasterConfirmed`], silence as nothing.
    ConfirmMaster(IpAddr),
    /// The holder's announces are late: ask it over the prober's open connection, once,
    /// whether it is alive; its echo comes back as [`super::Event::Echo`].
    AskHolder,
    /// The prober should (true) or should not (false) follow the holder.
    SetProbing(bool),
    Transition {
        from: Role,
        to: Role,
        reason: Reason,
    },
    /// Worth a log line, not a state change.
    Note(String),
    Exit,
}
