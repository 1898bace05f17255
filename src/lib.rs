//! floatip: keeps one floating IP address on exactly one healthy host of a LAN group.
//!
//! The crate is a sans-IO core with a thin OS shell:
//! - [`config`], [`wire`], [`state`] are pure: typed configuration, the heartbeat
//!   message format and the BACKUP/MASTER/FAULT machine (events in, actions out).
//! - [`election`] decides who may hold the address when etcd does rather than the LAN.
//! - [`net`] is the OS side (interfaces, address aliases, ARP, ping), each job behind a trait.
//! - [`heartbeat`] turns network traffic into events; [`daemon`] owns the state and
//!   executes the machine's actions; [`cli`] is the command line.
//! - [`health`] runs the service checks (threads send samples; a pure tracker turns them
//!   into the machine's health events); [`notify`] runs the state-change hooks; both run
//!   programs through [`exec`].

pub mod auth;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod election;
pub mod environment;
pub mod exec;
pub mod health;
pub mod heartbeat;
pub mod logging;
pub mod net;
pub mod notify;
pub mod state;
pub mod status;
pub mod wire;
