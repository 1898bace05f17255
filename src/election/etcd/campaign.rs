//! The campaign loop on the confined runtime: watches the key, keeps a lease of its own
//! alive while campaigning, campaigns with one create-if-absent transaction under that
//! lease, and gives the key up at the local deadline. Every request is bounded in time, by
//! the time left before the deadline while holding, so no wait on etcd can outlast the
//! deadline.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, LeaseKeepAliveResponse, LeaseKeepAliveStream,
    LeaseKeeper, PutOptions, Txn, TxnOp, TxnOpResponse, WatchResponse, WatchStream,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{sleep, sleep_until, Instant, MissedTickBehavior};

use super::client::{bounded, connect, Endpoints};
use super::lease::{LeaseClock, SharedDeadline, Stamp};
use super::{Claim, Command, Event, LostReason, Settings, RANK_STEP};

/// A sleep that never ends, for select branches that are switched off.
const NEVER: Duration = Duration::from_secs(86_400);

/// After a keep-alive stream failed, the next is opened at once, then 20, 40, 80 ms, then
/// every 160 ms after the start of the previous attempt (at once after a slow one) until one
/// is acknowledged or the deadline passes: a leader change leaves little of the TTL, a
/// keep-alive period is too long to wait.
const RETRY_FIRST: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_millis(160);

/// An open keep-alive stream and the endpoint it runs to.
struct KeepAlive {
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
    endpoint: String,
}

/// This node's lease and, while it works, its keep-alive stream. While campaigning it
/// stands by with no key under it, so that a campaign is one transaction when the key is
/// freed; the transaction that creates the key under it makes it the key's lease.
struct Lease {
    clock: LeaseClock,
    keeper: Option<KeepAlive>,
    /// The key was created under this lease: this node is elected.
    holds_key: bool,
}

struct Campaign {
    s: Settings,
    claim: Claim,
    commands: UnboundedReceiver<Command>,
    deadline: Arc<SharedDeadline>,
    rank: Arc<AtomicU32>,
    emit: Box<dyn FnMut(Event) + Send>,
    client: Option<Client>,
    /// The keep-alive stream's own clients, one per endpoint.
    endpoints: Endpoints,
    /// When to reopen a failed keep-alive stream, and the wait before the one after.
    reopen_at: Option<Instant>,
    reopen_step: Duration,
    /// Asked to campaign (and not to resign since).
    want: bool,
    lease: Option<Lease>,
    watch: Option<WatchStream>,
    /// The revision at which the watched key was last read.
    read_at: i64,
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
    let endpoints = Endpoints::new(&s.etcd);
    let mut c = Campaign {
        s,
        endpoints,
        reopen_at: None,
        reopen_step: Duration::ZERO,
        claim,
        commands,
        deadline,
        rank,
        emit,
        client: None,
        want: false,
        lease: None,
        watch: None,
        read_at: 0,
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
                    c.campaign_soon().await;
                }
                Some(Command::Resign) => {
                    c.want = false;
                    c.campaign_at = None;
                    c.withdraw(LostReason::Resigned).await;
                }
                Some(Command::Shutdown) | None => {
                    c.withdraw(LostReason::Shutdown).await;
                    return;
                }
            },
            renewal = next_renewal(&mut c.lease) => c.on_renewal(renewal),
            change = next_change(&mut c.watch) => c.on_change(change).await,
            _ = sleep_until(c.campaign_at.unwrap_or_else(|| Instant::now() + NEVER)), if c.campaign_at.is_some() => {
                c.campaign_at = None;
                c.try_acquire().await;
            }
            _ = sleep_until(c.reopen_at.unwrap_or_else(|| Instant::now() + NEVER)), if c.reopen_at.is_some() => {
                c.reopen_at = None;
                if c.lease.as_ref().is_some_and(|l| l.keeper.is_none()) {
                    c.renew().await;
                }
            }
            _ = tick.tick() => c.on_tick().await,
        }
    }
}

async fn next_renewal(
    lease: &mut Option<Lease>,
) -> Result<Option<LeaseKeepAliveResponse>, etcd_client::Error> {
    match lease.as_mut().and_then(|l| l.keeper.as_mut()) {
        Some(k) => k.stream.message().await,
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
    fn holding(&self) -> bool {
        self.lease.as_ref().is_some_and(|l| l.holds_key)
    }

    /// Drops the lease once its local deadline has passed (giving the key up if it held
    /// it); the time left otherwise.
    fn check_deadline(&mut self) -> Option<Duration> {
        let clock = &self.lease.as_ref()?.clock;
        let now = Stamp::now();
        if let Some(left) = clock.left(now) {
            return Some(left);
        }
        let since_last_renewal = clock.since_renewal(now);
        if self.lose(LostReason::Deadline { since_last_renewal }) {
            // Our claim may outlive us in etcd; a resync deletes it as stale once etcd answers.
            self.watch = None;
        }
        None
    }

    /// How long a request may take: a keep-alive period while holding, and never past the
    /// deadline; a TTL otherwise (a slower answer would come too late to hold the key anyway).
    fn budget(&self) -> Duration {
        match &self.lease {
            Some(l) if l.holds_key => l
                .clock
                .left(Stamp::now())
                .map_or(Duration::ZERO, |left| left.min(self.s.etcd.keepalive)),
            _ => self.s.etcd.lease_ttl,
        }
    }

    /// Drops the lease; if it held the key, tells the daemon. True when it held the key.
    fn lose(&mut self, reason: LostReason) -> bool {
        let Some(lease) = self.lease.take() else {
            return false;
        };
        if lease.holds_key {
            self.deadline.set(None);
            (self.emit)(Event::Lost { reason });
        }
        lease.holds_key
    }

    /// Gives the key up if this node holds it; a standing-by lease stays.
    async fn give_up(&mut self, reason: LostReason, revoke: bool) {
        let id = match &self.lease {
            Some(l) if l.holds_key => l.clock.id,
            _ => return,
        };
        self.lose(reason);
        if revoke {
            self.revoke(id).await;
        }
    }

    /// Stops campaigning: gives the key up and revokes the lease, held or standing by.
    async fn withdraw(&mut self, reason: LostReason) {
        let id = self.lease.as_ref().map(|l| l.clock.id);
        self.lose(reason);
        if let Some(id) = id {
            self.revoke(id).await;
        }
    }

    /// Best effort: unrevoked, the lease expires within its TTL.
    async fn revoke(&mut self, id: i64) {
        let Some(mut client) = self.client.clone() else {
            return;
        };
        let revoked = bounded(self.s.etcd.keepalive, client.lease_revoke(id)).await;
        log::debug!("etcd: revoked lease {id:x}: {:?}", revoked.map(|_| ()));
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

    /// While the key is taken, keeps a lease standing by; once it is free and wanted,
    /// campaigns: the best live backup at once (no timer in between), the others a step
    /// later per better one.
    async fn campaign_soon(&mut self) {
        if !self.key_free {
            return self.stand_by().await;
        }
        if !self.want || self.holding() || self.campaign_at.is_some() {
            return;
        }
        let rank = self.rank.load(Ordering::Relaxed);
        log::debug!("etcd: campaigning in rank {rank}");
        if rank == 0 {
            self.try_acquire().await;
        } else {
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
        self.stand_by().await;
        self.renew().await;
        if self.watch.is_none() {
            self.resync().await;
        }
    }

    /// While campaigning, keeps a lease standing by (its keep-alives start with the next
    /// renewal), so that a campaign is one transaction once the key is freed.
    async fn stand_by(&mut self) {
        if self.want && self.lease.is_none() && self.client.is_some() {
            if let Err(why) = self.grant(self.s.etcd.keepalive).await {
                self.unreachable(format!("lease grant: {why}"));
            }
        }
    }

    /// Grants the lease this node campaigns with.
    async fn grant(&mut self, budget: Duration) -> Result<(), String> {
        let Some(mut client) = self.client.clone() else {
            return Err("not connected".into());
        };
        let ttl = self.s.etcd.lease_ttl;
        let sent = Stamp::now();
        let grant = bounded(budget, client.lease_grant(ttl.as_secs() as i64, None)).await?;
        let granted = Duration::from_secs(grant.ttl().max(0) as u64);
        self.reopen_step = Duration::ZERO;
        self.lease = Some(Lease {
            clock: LeaseClock::granted(grant.id(), ttl, granted, sent),
            keeper: None,
            holds_key: false,
        });
        Ok(())
    }

    /// A renewal was acknowledged: a held key's deadline moves on.
    fn renewed(&mut self) {
        if let Some(l) = self.lease.as_ref().filter(|l| l.holds_key) {
            self.deadline.set(Some(l.clock.valid_until()));
        }
        self.unreachable = false;
        self.reopen_at = None;
        self.reopen_step = Duration::ZERO;
    }

    /// The keep-alive stream failed (or an attempt to open one, `started` then): its
    /// outstanding keep-alives renew nothing, and the next stream opens on the next
    /// endpoint, soon.
    fn keep_alive_failed(&mut self, why: &str, started: Instant) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        let endpoint = lease.keeper.take().map(|k| k.endpoint);
        lease.clock.stream_lost();
        let since = lease.clock.since_renewal(Stamp::now());
        self.endpoints.next();
        let at = started + self.reopen_step;
        log::debug!(
            "etcd: keep-alive on {}: {why}; reopening on {} in {} ms ({} ms since the last renewal was sent)",
            endpoint.as_deref().unwrap_or("a new stream"),
            self.endpoints.current(&self.s.etcd),
            at.saturating_duration_since(Instant::now()).as_millis(),
            since.as_millis(),
        );
        self.reopen_at = Some(at);
        self.reopen_step = (self.reopen_step * 2).clamp(RETRY_FIRST, RETRY_MAX);
    }

    /// Sends a keep-alive, or opens the keep-alive stream (which renews once on opening).
    /// A stream whose oldest keep-alive went unanswered for a period (its member is cut off
    /// or hangs) is given up for the next endpoint's.
    async fn renew(&mut self) {
        let budget = self.budget();
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        if budget.is_zero() {
            return; // past the deadline: the loop gives the key up
        }
        let sent = Stamp::now();
        if let Some(k) = lease.keeper.as_mut() {
            let waiting = lease.clock.oldest_pending().map(|o| sent.saturating_sub(o));
            match waiting {
                Some(waited) if waited >= self.s.etcd.keepalive => {
                    let why = format!("no answer for {} ms", waited.as_millis());
                    self.keep_alive_failed(&why, Instant::now());
                }
                _ => {
                    lease.clock.sent(sent);
                    if let Err(why) = k.keeper.keep_alive().await {
                        self.keep_alive_failed(&why.to_string(), Instant::now());
                    }
                }
            }
            return;
        }
        let id = lease.clock.id;
        let started = Instant::now();
        let endpoint = self.endpoints.current(&self.s.etcd).to_string();
        let opened = match self.endpoints.client(&self.s.etcd, budget).await {
            Ok(mut client) => {
                let left = budget.saturating_sub(Stamp::now().saturating_sub(sent));
                bounded(left, client.lease_keep_alive(id)).await
            }
            Err(why) => Err(why),
        };
        match opened {
            Ok((keeper, stream)) => {
                log::debug!(
                    "etcd: keep-alive stream opened on {endpoint}: renewed, sent {} ms ago",
                    Stamp::now().saturating_sub(sent).as_millis()
                );
                if let Some(lease) = self.lease.as_mut() {
                    lease.clock.renewed(sent);
                    lease.keeper = Some(KeepAlive {
                        keeper,
                        stream,
                        endpoint,
                    });
                }
                self.renewed();
            }
            Err(why) if why.contains("lease not found") => {
                self.lose(LostReason::LeaseGone);
            }
            Err(why) => {
                self.keep_alive_failed(&format!("cannot open a stream: {why}"), started);
                self.unreachable(format!("lease keep-alive on {endpoint}: {why}"));
            }
        }
    }

    fn on_renewal(&mut self, renewal: Result<Option<LeaseKeepAliveResponse>, etcd_client::Error>) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        match renewal {
            Ok(Some(answer)) => {
                let sent = lease.clock.oldest_pending();
                if !lease.clock.acknowledged(answer.ttl()) {
                    self.lose(LostReason::LeaseGone);
                    return;
                }
                log::trace!(
                    "etcd: keep-alive acknowledged by member {:x} (raft term {}), sent {} ms ago",
                    answer.header().map_or(0, |h| h.member_id()),
                    answer.header().map_or(0, |h| h.raft_term()),
                    sent.map_or(0, |s| Stamp::now().saturating_sub(s).as_millis()),
                );
                self.renewed();
            }
            Ok(None) => self.keep_alive_failed("the stream ended", Instant::now()),
            Err(why) => self.keep_alive_failed(&why.to_string(), Instant::now()),
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
        let read_at = self.read_at;
        let news = answer
            .events()
            .iter()
            .filter(|e| e.kv().map_or(true, |kv| kv.mod_revision() > read_at));
        for event in news {
            match (event.event_type(), event.kv()) {
                (EventType::Put, Some(kv)) => {
                    self.key_free = false;
                    self.holder(Claim::parse(kv.value()).map(|c| c.node));
                    if self
                        .lease
                        .as_ref()
                        .is_some_and(|l| l.holds_key && l.clock.id != kv.lease())
                    {
                        self.give_up(LostReason::KeyDeleted, true).await;
                    }
                }
                _ => {
                    log::debug!("etcd: the key was deleted");
                    self.key_free = true;
                    self.holder(None);
                    self.give_up(LostReason::KeyDeleted, true).await;
                    self.campaign_soon().await;
                }
            }
        }
    }

    /// Watches the key, then reads it and deletes a stale claim of ours. Watching first, from
    /// now, keeps the watch live: one started at a past revision gets its events from etcd's
    /// catch-up loop, up to 100 ms late. Events the read already saw are skipped.
    async fn resync(&mut self) {
        let budget = self.budget();
        let Some(mut client) = self.client.clone() else {
            return;
        };
        let key = self.s.etcd.key.clone();
        let mut watch = match bounded(budget, client.watch(key.as_str(), None)).await {
            Ok(watch) => watch,
            Err(why) => return self.unreachable(format!("watch: {why}")),
        };
        // Only once etcd confirms the watch is the read sure to come after it.
        match bounded(budget, watch.message()).await {
            Ok(Some(answer)) if answer.created() && !answer.canceled() => {}
            Ok(Some(answer)) => {
                let why = format!("watch refused: {}", answer.cancel_reason());
                return self.unreachable(why);
            }
            Ok(None) => return self.unreachable("watch: the stream ended".into()),
            Err(why) => return self.unreachable(format!("watch: {why}")),
        }
        let answer = match bounded(budget, client.get(key.as_str(), None)).await {
            Ok(answer) => answer,
            Err(why) => return self.unreachable(why),
        };
        self.unreachable = false;
        self.read_at = answer.header().map_or(0, |h| h.revision());
        let current = answer.kvs().first().cloned();
        let held_id = self
            .lease
            .as_ref()
            .filter(|l| l.holds_key)
            .map(|l| l.clock.id);
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
                if !self.holding() && claim.as_ref() == Some(&self.claim) {
                    // Ours but not held (a deadline passed, or a previous process): nobody
                    // serves it, so free it now; the watch sees the delete.
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
        self.watch = Some(watch);
        self.campaign_soon().await;
    }

    /// Creates the key under our lease if the key is absent: one transaction when a lease
    /// stands by, a grant first otherwise.
    async fn try_acquire(&mut self) {
        if !self.want || self.holding() {
            return;
        }
        let Some(mut client) = self.client.clone() else {
            return;
        };
        let budget = self.budget();
        if self.lease.is_none() {
            if let Err(why) = self.grant(budget).await {
                self.campaign_at = Some(Instant::now() + budget);
                return self.unreachable(format!("lease grant: {why}"));
            }
        }
        let Some(id) = self.lease.as_ref().map(|l| l.clock.id) else {
            return;
        };
        let key = self.s.etcd.key.as_str();
        let create = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                self.claim.encode(),
                Some(PutOptions::new().with_lease(id)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let answer = bounded(budget, client.txn(create)).await;
        let in_time = self
            .lease
            .as_ref()
            .is_some_and(|l| l.clock.left(Stamp::now()).is_some());
        match answer {
            Ok(answer) if answer.succeeded() && in_time => {
                let revision = answer.header().map_or(0, |h| h.revision());
                self.elected(revision).await;
            }
            Ok(answer) if !answer.succeeded() => {
                // Lost the race: nothing was put under the lease; it stands by for the next.
                self.key_free = false;
                let holder = answer.op_responses().into_iter().find_map(|r| match r {
                    TxnOpResponse::Get(get) => {
                        get.kvs().first().and_then(|kv| Claim::parse(kv.value()))
                    }
                    _ => None,
                });
                self.holder(holder.map(|c| c.node));
            }
            unsure => {
                // Unsure, or elected past the deadline: no key of ours may live on that lease.
                self.lease = None;
                self.revoke(id).await;
                match unsure {
                    // The standing-by lease was gone (revoked by hand): again with a fresh one.
                    Err(why) if why.contains("lease not found") => {
                        self.campaign_at = Some(Instant::now());
                    }
                    Err(why) => {
                        self.campaign_at = Some(Instant::now() + budget);
                        self.unreachable(format!("campaign: {why}"));
                    }
                    Ok(_) => {}
                }
            }
        }
    }

    async fn elected(&mut self, revision: i64) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        lease.holds_key = true;
        let lease_id = lease.clock.id;
        let kept_alive = lease.keeper.is_some();
        self.deadline.set(Some(lease.clock.valid_until()));
        self.key_free = false;
        self.unreachable = false;
        log::info!(
            "etcd: elected on {}: lease {lease_id:x}, revision {revision}",
            self.s.etcd.key
        );
        (self.emit)(Event::Elected { lease_id, revision });
        if !kept_alive {
            self.renew().await;
        }
    }
}
