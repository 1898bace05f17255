//! floatip: keeps one floating IP address on exactly one healthy host of a LAN group.
//!
//! The crate is a sans-IO core with a thin OS shell, in floors that import only downward
//! (see `docs/architecture.md`; `architecture.rs` checks it):
//! - [`vocabulary`]: the words every floor shares (roles, MACs, masks, events, actions).
//! - [`config`], [`wire`], [`auth`], [`state`] are pure: typed configuration, the
//!   heartbeat message format, keys and replay checks, and the BACKUP/MASTER/FAULT
//!   machine (events in, actions out).
//! - The shell: [`net`] drives the OS (interfaces, address aliases, ARP, ping) behind the
//!   `Host` trait; [`heartbeat`] and [`health`] are threads that turn traffic and check
//!   results into events; [`status`] serves `floatip status`, [`metrics`] the Prometheus
//!   endpoint; [`notify`] runs the
//!   state-change hooks; [`net`], [`health`] and [`notify`] run every program through
//!   [`exec`] (timeout, process group killed after).
//! - [`election`] decides who may hold the address when etcd does rather than the LAN.
//! - [`daemon`] owns the machine and executes its actions; [`cli`] is the command line.

mod architecture;
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
pub mod metrics;
pub mod net;
pub mod notify;
pub mod state;
pub mod status;
pub mod vocabulary;
pub mod wire;
