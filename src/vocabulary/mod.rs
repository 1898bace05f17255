//! The words every floor shares: roles, priorities, MACs, masks, boot ids, interfaces,
//! and the state machine's events and actions. The bottom floor: it imports nothing
//! from the crate, so anything above may use it.

mod action;
mod address;
mod boot_id;
mod event;
mod health;
mod histogram;
mod interface;
mod mac;
mod netmask;
mod peer;
mod priority;
mod reason;
mod role;
mod segment;

pub use action::Action;
pub use address::{is_link_local6, network6, same_prefix, Floating};
pub use boot_id::BootId;
pub use event::{Event, Lease, Loss, ProbeOutcome};
pub use health::{Health, Verdict};
pub use histogram::Histogram;
pub use interface::{Interface, NoInterface};
pub use mac::{fmt_mac, Mac};
pub use netmask::Netmask;
pub use peer::Peer;
pub use priority::Priority;
pub use reason::{Heard, Reason};
pub use role::Role;
pub use segment::{Segment, ANNOUNCE_GROUP6};
