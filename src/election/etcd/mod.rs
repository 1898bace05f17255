//! The election on an etcd lease: a node may hold the address only while it holds the
//! election key under a live lease of its own.
//!
//! The etcd client is asynchronous; its runtime is confined to one thread that
//! [`Campaign::start`] spawns (a current-thread tokio runtime), so a LAN-only daemon never
//! starts it and the rest of floatip stays synchronous. Commands go in through the
//! [`Campaign`] handle, [`Event`]s come out through the closure given at start, and the
//! local deadline can be read at any moment with [`Campaign::holds_for`].
//!
//! See `docs/etcd.md` for the safety argument.

mod campaign;
mod claim;
mod client;
mod lease;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::Etcd;
pub use claim::Claim;
use client::{bounded, connect, endpoint_list};
use lease::SharedDeadline;
pub use lease::{margin, Stamp};

/// How much later than the best live backup the next one campaigns for a free key: a head
/// start long enough for its grant and transaction, so that the best one usually wins
/// (etcd's transaction decides anyway).
pub const RANK_STEP: Duration = Duration::from_millis(5);

/// What the campaign thread needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub etcd: Etcd,
    /// This node's own address: the claim names it.
    pub node: IpAddr,
}

/// What the campaign reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// This node holds the key. `revision` (the key's create revision) is the fencing token:
    /// it grows with every take-over.
    Elected { lease_id: i64, revision: i64 },
    /// This node no longer holds the key (or must assume so): remove the address now.
    Lost { reason: LostReason },
    /// Who holds the key, as seen in etcd; `None`: nobody.
    Holder { node: Option<IpAddr> },
    /// etcd did not answer; sent once per outage. While etcd is unreachable nobody is elected.
    Unreachable { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// No keep-alive was acknowledged in time: the lease may expire in etcd soon.
    Deadline {
        since_last_renewal: Duration,
    },
    /// etcd answered that the lease is gone.
    LeaseGone,
    /// The key was deleted (an operator, or `release`).
    KeyDeleted,
    Resigned,
    Shutdown,
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostReason::Deadline { since_last_renewal } => write!(
                f,
                "no keep-alive acknowledged for {} ms: the lease may expire in etcd",
                since_last_renewal.as_millis()
            ),
            LostReason::LeaseGone => f.write_str("etcd no longer has the lease"),
            LostReason::KeyDeleted => f.write_str("the election key was deleted"),
            LostReason::Resigned => f.write_str("resigned"),
            LostReason::Shutdown => f.write_str("shutting down"),
        }
    }
}

/// Commands to the campaign thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Campaign,
    Resign,
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the etcd client thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot read this host's boot id: {0}")]
    BootId(std::io::Error),
    #[error("etcd at {endpoints}: {reason}")]
    Etcd { endpoints: String, reason: String },
}

/// The running campaign. Dropping it shuts the campaign down (revoking a held lease).
pub struct Campaign {
    // A tokio sender: its `send` is synchronous, and the campaign thread can await it.
    commands: UnboundedSender<Command>,
    deadline: Arc<SharedDeadline>,
    /// How many live backups should campaign before us, as the daemon last said.
    rank: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Campaign {
    /// Starts the campaign thread, idle until [`Campaign::campaign`]. `emit` runs on that
    /// thread for every [`Event`]; it must not block.
    pub fn start(
        settings: Settings,
        emit: impl FnMut(Event) + Send + 'static,
    ) -> Result<Campaign, Error> {
        let claim = Claim::ours(settings.node).map_err(Error::BootId)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Thread)?;
        let (commands, receiver) = tokio::sync::mpsc::unbounded_channel();
        let deadline = Arc::new(SharedDeadline::default());
        let shared = Arc::clone(&deadline);
        let rank = Arc::new(AtomicU32::new(0));
        let ranked = Arc::clone(&rank);
        let thread = std::thread::Builder::new()
            .name("etcd-election".into())
            .spawn(move || {
                runtime.block_on(campaign::run(
                    settings,
                    claim,
                    receiver,
                    shared,
                    ranked,
                    Box::new(emit),
                ))
            })
            .map_err(Error::Thread)?;
        Ok(Campaign {
            commands,
            deadline,
            rank,
            thread: Some(thread),
        })
    }

    fn send(&self, command: Command) {
        // Fails only once the thread has ended, when there is nothing left to command.
        let _ = self.commands.send(command);
    }
}

impl super::Election for Campaign {
    fn kind(&self) -> &'static str {
        "etcd"
    }

    /// Campaign for the key now and whenever it becomes free.
    fn campaign(&self) {
        self.send(Command::Campaign);
    }

    /// Campaigns for a free key `RANK_STEP` later per better live backup.
    fn rank(&self, better: u32) {
        self.rank.store(better, Ordering::Relaxed);
    }

    /// Give the key up (revoke the lease) and stop campaigning. Remove the address first.
    fn resign(&self) {
        self.send(Command::Resign);
    }

    /// Time left before this node must consider itself not elected; `None`: not elected.
    fn holds_for(&self) -> Option<Duration> {
        self.deadline.left(Stamp::now())
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        self.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `release`'s errand in etcd after a crash: delete the election key if it still names this
/// node (same address and boot), so that a backup takes over at once instead of after the
/// TTL. [`Release::start`] connects and reads the key on its own thread while the caller
/// removes the address; [`Release::free`] then costs one round trip.
pub struct Release {
    go: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<Result<bool, Error>>,
}

impl Release {
    pub fn start(etcd: &Etcd, node: IpAddr) -> Result<Release, Error> {
        let claim = Claim::ours(node).map_err(Error::BootId)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Thread)?;
        let (go, went) = tokio::sync::oneshot::channel();
        let etcd = etcd.clone();
        let thread = std::thread::Builder::new()
            .name("etcd-release".into())
            .spawn(move || runtime.block_on(free_when_told(&etcd, &claim, went)))
            .map_err(Error::Thread)?;
        Ok(Release { go, thread })
    }

    /// Call once the address is gone. `Ok(true)` when the key was deleted, `Ok(false)` when
    /// it is absent or names someone else.
    pub fn free(self) -> Result<bool, Error> {
        // Fails only if the thread already ended, with an error that join returns.
        let _ = self.go.send(());
        self.thread.join().unwrap_or_else(|_| {
            Err(Error::Thread(std::io::Error::other(
                "the etcd release thread panicked",
            )))
        })
    }
}

async fn free_when_told(
    etcd: &Etcd,
    claim: &Claim,
    went: tokio::sync::oneshot::Receiver<()>,
) -> Result<bool, Error> {
    let fail = |reason: String| Error::Etcd {
        endpoints: endpoint_list(etcd),
        reason,
    };
    let timeout = etcd.lease_ttl;
    let key = etcd.key.as_str();
    let mut client = connect(etcd).await.map_err(fail)?;
    // Also opens the connection, so that the delete below is one round trip.
    let current = bounded(timeout, client.get(key, None))
        .await
        .map_err(fail)?;
    let ours = current
        .kvs()
        .first()
        .is_some_and(|kv| Claim::parse(kv.value()).as_ref() == Some(claim));
    if went.await.is_err() || !ours {
        return Ok(false);
    }
    let txn = Txn::new()
        .when([Compare::value(key, CompareOp::Equal, claim.encode())])
        .and_then([TxnOp::delete(key, None)]);
    let answer = bounded(timeout, client.txn(txn)).await.map_err(fail)?;
    Ok(answer.succeeded())
}

/// Asks every endpoint for the key's holder, for `floatip check`: the first endpoint that
/// does not answer is named in the error.
pub fn probe(etcd: &Etcd) -> Result<Option<IpAddr>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Thread)?;
    let mut holder = None;
    for endpoint in &etcd.endpoints {
        let one = Etcd {
            endpoints: vec![endpoint.clone()],
            ..etcd.clone()
        };
        let fail = |reason: String| Error::Etcd {
            endpoints: endpoint.to_string(),
            reason,
        };
        holder = runtime.block_on(async {
            let mut client: Client = connect(&one).await.map_err(fail)?;
            let answer = bounded(etcd.lease_ttl, client.get(etcd.key.as_str(), None))
                .await
                .map_err(fail)?;
            Ok::<_, Error>(
                answer
                    .kvs()
                    .first()
                    .and_then(|kv| Claim::parse(kv.value()))
                    .map(|c| c.node),
            )
        })?;
    }
    Ok(holder)
}
