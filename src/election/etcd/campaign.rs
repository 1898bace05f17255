//! The campaign loop on the confined runtime: watches the key, campaigns with a
//! create-if-absent transaction under a fresh lease, keeps the lease alive, and gives the
//! key up at the local deadline. Every request is bounded in time, by the time left before
//! the deadline while holding, so no wait on etcd can outlast the deadline.

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, LeaseKeepAliveResponse, LeaseKeepAliveStream,
    LeaseKeeper, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchResponse, WatchStream,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{sleep, sleep_until, Instant, MissedTickBehavior};

use super::lease::{LeaseClock, SharedDeadline, Stamp};
use super::{Claim, Command, Event, LostReason, Settings, RANK_STEP};
use crate::config::Etcd;

/// A sleep that never ends, for select branches that are switched off.
const NEVER: Duration = Duration::from_secs(86_400);

pub(super) fn endpoint_list(etcd: &Etcd) -> String {
    etcd.endpoints
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A client for `etcd`'s endpoints; with a user, this already asks etcd for a token.
pub(super) async fn connect(etcd: &Etcd) -> Result<Client, String> {
    let urls: Vec<String> = etcd.endpoints.iter().map(ToString::to_string).collect();
    bounded(
        etcd.lease_ttl,
        Client::connect(urls, Some(super::options(etcd))),
    )
    .await
}

async fn bounded<T>(
    budget: Duration,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(budget, request).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
    }
}

/// The held lease and, while it works, its keep-alive stream.
struct Held {
    clock: LeaseClock,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
}

struct Campaign {
    s: Settings,
    claim: Claim,
    commands: UnboundedReceiver<Command>,
    deadline: Arc<SharedDeadline>,
    rank: Arc<AtomicU32>,
    emit: Box<dyn FnMut(Event) + Send>,
    client: Option<Client>,
    /// Asked to campaign (and not to resign since).
    want: bool,
    held: Option<Held>,
    watch: Option<WatchStream>,
    /// The key was absent when last seen.
    key_free: bool,
    campaign_at: Option<Instant>,
    /// `Unreachable` was sent and nothing has succeeded since.
    unreachable: bool,
    last_holder: Option<Option<IpAddr>>,
}

pub(super) async fn run(
    s: Settings,
    claim: Claim,
    commands: UnboundedReceiver<Command>,
    deadline: Arc<SharedDeadline>,
    rank: Arc<AtomicU32>,
    emit: Box<dyn FnMut(Event) + Send>,
) {
    let mut tick = tokio::time::interval(s.etcd.keepalive);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut c = Campaign {
        s,
        claim,
        commands,
        deadline,
        rank,
        emit,
        client: None,
        want: false,
        held: None,
        watch: None,
        key_free: false,
        campaign_at: None,
        unreachable: false,
        last_holder: None,
    };
    loop {
        let left = c.check_deadline();
        tokio::select! {
            biased;
            _ = sleep(left.unwrap_or(NEVER)), if left.is_some() => {}
            command = c.commands.recv() => match command {
                Some(Command::Campaign) => {
                    c.want = true;
                    c.campaign_soon();
                }
                Some(Command::Resign) => {
                    c.want = false;
                    c.campaign_at = None;
                    c.give_up(LostReason::Resigned, true).await;
                }
                Some(Command::Shutdown) | None => {
                    c.give_up(LostReason::Shutdown, true).await;
                    return;
                }
            },
            renewal = next_renewal(&mut c.held) => c.on_renewal(renewal).await,
            change = next_change(&mut c.watch) => c.on_change(change).await,
            _ = sleep_until(c.campaign_at.unwrap_or_else(|| Instant::now() + NEVER)), if c.campaign_at.is_some() => {
                c.campaign_at = None;
                c.try_acquire().await;
            }
            _ = tick.tick() => c.on_tick().await,
        }
    }
}

async fn next_renewal(
    held: &mut Option<Held>,
) -> Result<Option<LeaseKeepAliveResponse>, etcd_client::Error> {
    match held.as_mut().and_then(|h| h.keeper.as_mut()) {
        Some((_, stream)) => stream.message().await,
        None => std::future::pending().await,
    }
}

async fn next_change(
    watch: &mut Option<WatchStream>,
) -> Result<Option<WatchResponse>, etcd_client::Error> {
    match watch.as_mut() {
        Some(stream) => stream.message().await,
        None => std::future::pending().await,
    }
}

impl Campaign {
    /// Gives the key up once the local deadline has passed; the time left otherwise.
    fn check_deadline(&mut self) -> Option<Duration> {
        let clock = &self.held.as_ref()?.clock;
        let now = Stamp::now();
        match clock.left(now) {
            Some(left) => Some(left),
            None => {
                let since_last_renewal = clock.since_renewal(now);
                self.lose(LostReason::Deadline { since_last_renewal });
                // Our claim may outlive us in etcd; a resync deletes it as stale once etcd answers.
                self.watch = None;
                None
            }
        }
    }

    /// How long a request may take: a keep-alive period while holding, and never past the
    /// deadline; a TTL otherwise (a slower answer would come too late to hold the key anyway).
    fn budget(&self) -> Duration {
        match &self.held {
            Some(h) => h
                .clock
                .left(Stamp::now())
                .map_or(Duration::ZERO, |left| left.min(self.s.etcd.keepalive)),
            None => self.s.etcd.lease_ttl,
        }
    }

    fn lose(&mut self, reason: LostReason) -> Option<Held> {
        let held = self.held.take()?;
        self.deadline.set(None);
        (self.emit)(Event::Lost { reason });
        Some(held)
    }

    async fn give_up(&mut self, reason: LostReason, revoke: bool) {
        let Some(held) = self.lose(reason) else {
            return;
        };
        if let (true, Some(mut client)) = (revoke, self.client.clone()) {
            // Best effort: unrevoked, the lease expires within its TTL.
            let revoked = bounded(self.s.etcd.keepalive, client.lease_revoke(held.clock.id)).await;
            log::debug!(
                "etcd: revoked lease {:x}: {:?}",
                held.clock.id,
                revoked.map(|_| ())
            );
        }
    }

    fn unreachable(&mut self, reason: String) {
        log::debug!("etcd: {reason}");
        if !self.unreachable {
            self.unreachable = true;
            (self.emit)(Event::Unreachable { reason });
        }
    }

    fn holder(&mut self, node: Option<IpAddr>) {
        if self.last_holder != Some(node) {
            self.last_holder = Some(node);
            (self.emit)(Event::Holder { node });
        }
    }

    /// Campaigns after this node's rank delay if the key is free and wanted: the best
    /// live backup at once, the others a step later per better one.
    fn campaign_soon(&mut self) {
        if self.want && self.key_free && self.held.is_none() && self.campaign_at.is_none() {
            let rank = self.rank.load(Ordering::Relaxed);
            log::debug!("etcd: campaigning in rank {rank}");
            self.campaign_at = Some(Instant::now() + RANK_STEP * rank);
        }
    }

    async fn on_tick(&mut self) {
        if self.client.is_none() {
            match connect(&self.s.etcd).await {
                Ok(client) => self.client = Some(client),
                Err(why) => return self.unreachable(why),
            }
        }
        self.renew().await;
        if self.watch.is_none() {
            self.resync().await;
        }
    }

    /// Sends a keep-alive, or reopens the keep-alive stream (which renews once on opening).
    async fn renew(&mut self) {
        let budget = self.budget();
        let (Some(held), Some(client)) = (self.held.as_mut(), self.client.as_mut()) else {
            return;
        };
        if budget.is_zero() {
            return; // past the deadline: the loop gives the key up
        }
        let sent = Stamp::now();
        if let Some((keeper, _)) = held.keeper.as_mut() {
            held.clock.sent(sent);
            if keeper.keep_alive().await.is_err() {
                held.keeper = None;
                held.clock.stream_lost();
            }
            return;
        }
        let id = held.clock.id;
        match bounded(budget, client.lease_keep_alive(id)).await {
            Ok(keeper) => {
                held.clock.renewed(sent);
                held.keeper = Some(keeper);
                self.deadline.set(Some(held.clock.valid_until()));
                self.unreachable = false;
            }
            Err(why) if why.contains("lease not found") => {
                self.give_up(LostReason::LeaseGone, false).await
            }
            Err(why) => self.unreachable(format!("lease keep-alive: {why}")),
        }
    }

    async fn on_renewal(
        &mut self,
        renewal: Result<Option<LeaseKeepAliveResponse>, etcd_client::Error>,
    ) {
        let Some(held) = self.held.as_mut() else {
            return;
        };
        match renewal {
            Ok(Some(answer)) => {
                if held.clock.acknowledged(answer.ttl()) {
                    self.deadline.set(Some(held.clock.valid_until()));
                    self.unreachable = false;
                } else {
                    self.give_up(LostReason::LeaseGone, false).await;
                }
            }
            Ok(None) | Err(_) => {
                let why = renewal
                    .err()
                    .map_or("the stream ended".to_string(), |e| e.to_string());
                held.keeper = None;
                held.clock.stream_lost();
                self.unreachable(format!("lease keep-alive: {why}"));
            }
        }
    }

    async fn on_change(&mut self, change: Result<Option<WatchResponse>, etcd_client::Error>) {
        let answer = match change {
            Ok(Some(answer)) if !answer.canceled() => answer,
            Ok(Some(_)) => return self.watch = None,
            Ok(None) | Err(_) => {
                let why = change
                    .err()
                    .map_or("the stream ended".to_string(), |e| e.to_string());
                self.watch = None;
                return self.unreachable(format!("watch: {why}"));
            }
        };
        self.unreachable = false;
        for event in answer.events() {
            match (event.event_type(), event.kv()) {
                (EventType::Put, Some(kv)) => {
                    self.key_free = false;
                    self.holder(Claim::parse(kv.value()).map(|c| c.node));
                    if self.held.as_ref().is_some_and(|h| h.clock.id != kv.lease()) {
                        self.give_up(LostReason::KeyDeleted, true).await;
                    }
                }
                _ => {
                    log::debug!("etcd: the key was deleted");
                    self.key_free = true;
                    self.holder(None);
                    self.give_up(LostReason::KeyDeleted, true).await;
                    self.campaign_soon();
                }
            }
        }
    }

    /// Reads the key, deletes a stale claim of ours, and watches from the revision read.
    async fn resync(&mut self) {
        let budget = self.budget();
        let Some(mut client) = self.client.clone() else {
            return;
        };
        let key = self.s.etcd.key.clone();
        let answer = match bounded(budget, client.get(key.as_str(), None)).await {
            Ok(answer) => answer,
            Err(why) => return self.unreachable(why),
        };
        self.unreachable = false;
        let revision = answer.header().map_or(0, |h| h.revision());
        let current = answer.kvs().first().cloned();
        let held_id = self.held.as_ref().map(|h| h.clock.id);
        match &current {
            None => {
                self.key_free = true;
                self.holder(None);
                self.give_up(LostReason::KeyDeleted, false).await;
            }
            Some(kv) => {
                self.key_free = false;
                let claim = Claim::parse(kv.value());
                self.holder(claim.as_ref().map(|c| c.node));
                if held_id.is_some_and(|id| id != kv.lease()) {
                    self.give_up(LostReason::KeyDeleted, true).await;
                }
                if self.held.is_none() && claim.as_ref() == Some(&self.claim) {
                    // Ours but not held (a deadline passed, or a previous process): nobody
                    // serves it, so free it now; the watch below sees the delete.
                    let stale = Txn::new()
                        .when([Compare::mod_revision(
                            key.as_str(),
                            CompareOp::Equal,
                            kv.mod_revision(),
                        )])
                        .and_then([TxnOp::delete(key.as_str(), None)]);
                    if let Err(why) = bounded(budget, client.txn(stale)).await {
                        return self.unreachable(why);
                    }
                    log::info!(
                        "etcd: deleted our stale claim on {key} (lease {:x})",
                        kv.lease()
                    );
                }
            }
        }
        let from = WatchOptions::new().with_start_revision(revision + 1);
        match bounded(self.budget(), client.watch(key.as_str(), Some(from))).await {
            Ok(watch) => self.watch = Some(watch),
            Err(why) => return self.unreachable(format!("watch: {why}")),
        }
        self.campaign_soon();
    }

    /// Grants a lease and creates the key under it if the key is absent.
    async fn try_acquire(&mut self) {
        if !self.want || self.held.is_some() {
            return;
        }
        let Some(mut client) = self.client.clone() else {
            return;
        };
        let budget = self.budget();
        let etcd = &self.s.etcd;
        let sent = Stamp::now();
        let grant = match bounded(
            budget,
            client.lease_grant(etcd.lease_ttl.as_secs() as i64, None),
        )
        .await
        {
            Ok(grant) => grant,
            Err(why) => {
                self.campaign_at = Some(Instant::now() + budget);
                return self.unreachable(format!("lease grant: {why}"));
            }
        };
        let clock = LeaseClock::granted(
            grant.id(),
            etcd.lease_ttl,
            Duration::from_secs(grant.ttl().max(0) as u64),
            sent,
        );
        let key = etcd.key.as_str();
        let create = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                self.claim.encode(),
                Some(PutOptions::new().with_lease(clock.id)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let answer = bounded(budget, client.txn(create)).await;
        let won = matches!(&answer, Ok(a) if a.succeeded()) && clock.left(Stamp::now()).is_some();
        if !won {
            // Lost the race, or unsure: the lease must not keep a key of ours alive.
            let _ = bounded(budget, client.lease_revoke(clock.id)).await;
            match answer {
                Err(why) => {
                    self.campaign_at = Some(Instant::now() + budget);
                    self.unreachable(format!("campaign: {why}"));
                }
                Ok(answer) => {
                    self.key_free = false;
                    let holder = answer.op_responses().into_iter().find_map(|r| match r {
                        TxnOpResponse::Get(get) => {
                            get.kvs().first().and_then(|kv| Claim::parse(kv.value()))
                        }
                        _ => None,
                    });
                    self.holder(holder.map(|c| c.node));
                }
            }
            return;
        }
        let revision = answer
            .ok()
            .and_then(|a| a.header().map(|h| h.revision()))
            .unwrap_or_default();
        let lease_id = clock.id;
        self.deadline.set(Some(clock.valid_until()));
        self.held = Some(Held {
            clock,
            keeper: None,
        });
        self.key_free = false;
        self.unreachable = false;
        log::info!("etcd: elected on {key}: lease {lease_id:x}, revision {revision}");
        (self.emit)(Event::Elected { lease_id, revision });
        self.renew().await;
    }
}
