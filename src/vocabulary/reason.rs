use std::fmt;
use std::net::IpAddr;

use super::{fmt_mac, Lease, Loss, Mac, Priority};

/// How a backup heard from the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// The holder answered the prober's heartbeat.
    Echo,
    /// The holder's periodic broadcast.
    Announce,
}

impl fmt::Display for Heard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Heard::Echo => "echo",
            Heard::Announce => "announce",
        })
    }
}

/// Why the machine is in its role: carried by every transition and shown by
/// `floatip status`. Its text is the log line operators grep for; keep it stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Starting,
    NoHolderAtStartup,
    /// The holder followed went silent or closed its connection; `None` if never known.
    HolderLost {
        holder: Option<IpAddr>,
        loss: Loss,
    },
    /// The silent holder still answers ARP for the address.
    HolderFrozen {
        holder: Option<IpAddr>,
        mac: Mac,
    },
    HolderResigned,
    /// The holder resigned naming us.
    HandedOver(IpAddr),
    /// A conflict's retry found the address free.
    AddressFreeAgain,
    /// The service checks recovered and no holder was around.
    RecoveredAlone,
    /// A holder answers while we are in FAULT; `conflict` if that fault was a conflict.
    HolderAnswers {
        holder: IpAddr,
        heard: Heard,
        conflict: bool,
    },
    LinkUp,
    /// Leaving a fault, but the service checks still fail.
    StillUnhealthy {
        after: Box<Reason>,
        detail: String,
    },
    /// Another master ranks higher; `confirmed` if it answered a heartbeat as one.
    Outranked {
        by: IpAddr,
        theirs: Priority,
        confirmed: bool,
        us: IpAddr,
        ours: Priority,
    },
    /// A master's probe found another host answering for the address: after a stall, or
    /// when the address had `vanished` from the interface.
    AddressTaken {
        vanished: bool,
        mac: Mac,
    },
    /// Something answers for the address but sends no heartbeat.
    Conflict(Mac),
    LinkDown,
    ActionFailed(String),
    Preempted {
        by: IpAddr,
        theirs: Priority,
        ours: Priority,
    },
    ChecksFailing(String),
    ChecksPass,
    /// A failing master hands over to a healthy backup.
    UnhealthyHandover {
        detail: String,
        to: IpAddr,
    },
    /// The operator asked this master to hand the address over (`floatip handover`).
    HandOverRequested {
        to: IpAddr,
    },
    /// A failing master keeps the address: nobody healthy could take it.
    UnhealthyKeeping(String),
    /// The penalty of failing weighted checks put a backup above the master.
    PenaltyHandover {
        ours: Priority,
        detail: String,
        to: IpAddr,
        theirs: Priority,
    },
    /// The external election granted us the key under this lease.
    Elected(Lease),
    /// The external election no longer names us.
    ElectionLost(String),
}

impl Reason {
    /// Whom a master stepping down for this reason tells to take the address at once.
    pub fn successor(&self) -> Option<IpAddr> {
        match self {
            Reason::Preempted { by: to, .. }
            | Reason::UnhealthyHandover { to, .. }
            | Reason::PenaltyHandover { to, .. }
            | Reason::HandOverRequested { to } => Some(*to),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Starting => f.write_str("starting"),
            Reason::NoHolderAtStartup => f.write_str("no holder found at start-up"),
            Reason::HolderLost { holder, loss } => {
                f.write_str("holder ")?;
                if let Some(h) = holder {
                    write!(f, "{h} ")?;
                }
                f.write_str(match loss {
                    Loss::Silence => "silent",
                    Loss::Closed => "gone",
                })
            }
            Reason::HolderFrozen { holder, mac } => write!(
                f,
                "{}; it still answers ARP ({}), so it is frozen or cut off and will step down",
                Reason::HolderLost {
                    holder: *holder,
                    loss: Loss::Silence
                },
                fmt_mac(mac)
            ),
            Reason::HolderResigned => f.write_str("holder resigned"),
            Reason::HandedOver(from) => write!(f, "{from} handed the address over to us"),
            Reason::AddressFreeAgain => f.write_str("address free again"),
            Reason::RecoveredAlone => {
                f.write_str("service checks pass and no holder is around")
            }
            Reason::HolderAnswers {
                holder,
                heard,
                conflict,
            } => {
                write!(f, "holder {holder} answers ({heard})")?;
                if *conflict {
                    f.write_str("; conflict resolved")?;
                }
                Ok(())
            }
            Reason::LinkUp => f.write_str("link up again"),
            Reason::StillUnhealthy { after, detail } => {
                write!(f, "{after}, but service checks fail: {detail}")
            }
            Reason::Outranked {
                by,
                theirs,
                confirmed,
                us,
                ours,
            } => {
                let how = if *confirmed {
                    ", it answered a heartbeat"
                } else {
                    ""
                };
                write!(
                    f,
                    "two masters: {by} (priority {theirs}{how}) outranks us ({us} priority {ours})"
                )
            }
            Reason::AddressTaken { vanished, mac } => {
                let why = if *vanished {
                    "the address vanished"
                } else {
                    "view stale after a stall"
                };
                write!(f, "{why}: {} answers for the address", fmt_mac(mac))
            }
            Reason::Conflict(mac) => write!(
                f,
                "address conflict: {} answers for the address but sends no heartbeat; not adding it, retrying",
                fmt_mac(mac)
            ),
            Reason::LinkDown => f.write_str("link down (no carrier)"),
            Reason::ActionFailed(error) => write!(f, "action failed: {error}"),
            Reason::Preempted { by, theirs, ours } => {
                write!(f, "preempted by {by} (priority {theirs} > ours {ours})")
            }
            Reason::ChecksFailing(detail) => write!(f, "service checks failing: {detail}"),
            Reason::ChecksPass => f.write_str("service checks pass again"),
            Reason::UnhealthyHandover { detail, to } => write!(
                f,
                "service checks failing: {detail}; handing the address over to healthy backup {to}"
            ),
            Reason::HandOverRequested { to } => {
                write!(f, "handover requested; handing the address over to {to}")
            }
            Reason::UnhealthyKeeping(detail) => write!(
                f,
                "service checks failing: {detail}; keeping the address: no healthy backup announces"
            ),
            Reason::PenaltyHandover {
                ours,
                detail,
                to,
                theirs,
            } => write!(
                f,
                "priority lowered to {ours} by failing checks ({detail}); handing the address over to {to} (priority {theirs})"
            ),
            Reason::Elected(lease) => write!(
                f,
                "elected: holding the key under lease {:x}, fencing token (revision) {}",
                lease.id, lease.revision
            ),
            Reason::ElectionLost(why) => write!(f, "election lost: {why}"),
        }
    }
}
