//! What the executor drives besides the host: the group (the heartbeat threads) and the
//! service manager. Each behind a trait so the loop runs in tests with fakes.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use super::input::Input;
use crate::auth::Auth;
use crate::heartbeat::{confirm_master, Broadcaster, Local, LocalView, Prober};
use crate::vocabulary::{BootId, Histogram};
use crate::wire::Kind;

/// The group: what the heartbeat threads say about us, send and follow.
pub trait Group {
    /// What every message says about us from now on.
    fn set_view(&self, view: LocalView);
    fn send(&self, kind: Kind, successor: Option<IpAddr>);
    /// Our announce to `node` alone.
    fn announce_to(&self, node: IpAddr);
    fn set_probing(&self, on: bool);
    /// Asks the holder over the prober's open connection whether it is alive.
    fn ask_holder(&self);
    /// We gave the address up: the backups that followed us need not stay connected.
    fn let_followers_go(&self);
    /// The holder the machine follows now (node and boot), if it knows one.
    fn follow(&self, holder: Option<(IpAddr, BootId)>);
    /// Asks `node` whether it is a master; an answer comes back as an event.
    fn confirm_master(&self, node: IpAddr);
    /// Messages rejected, and of those the ones that failed authentication.
    fn rejected(&self) -> (u64, u64);
    /// Of the authentication failures, the replays.
    fn replayed(&self) -> u64;
    fn round_trips(&self) -> Histogram;
    /// New keys, for the next message on.
    fn set_auth(&self, auth: Option<Auth>);
}

/// The real group: the broadcaster, the prober and their shared state.
pub struct Heartbeats {
    pub broadcaster: Broadcaster,
    pub prober: Prober,
    pub local: Arc<Local>,
    pub port: u16,
    pub dial_timeout: Duration,
    /// For answers that come back later (a master confirming its claim).
    pub events: SyncSender<Input>,
}

impl Group for Heartbeats {
    fn set_view(&self, view: LocalView) {
        self.local.set_view(view);
    }
    fn send(&self, kind: Kind, successor: Option<IpAddr>) {
        self.broadcaster.send(kind, successor);
    }
    fn announce_to(&self, node: IpAddr) {
        self.broadcaster.announce_to(node);
    }
    fn set_probing(&self, on: bool) {
        self.prober.set_enabled(on);
    }
    fn follow(&self, holder: Option<(IpAddr, BootId)>) {
        self.prober.follow(holder);
    }
    fn let_followers_go(&self) {
        self.local.let_followers_go();
    }
    fn ask_holder(&self) {
        self.prober.ask();
    }
    fn confirm_master(&self, node: IpAddr) {
        confirm_master(
            self.local.clone(),
            node,
            self.port,
            self.dial_timeout,
            self.events.clone(),
        );
    }
    fn rejected(&self) -> (u64, u64) {
        (
            self.local.rejected.load(Ordering::Relaxed),
            self.local.auth_failures.load(Ordering::Relaxed),
        )
    }
    fn replayed(&self) -> u64 {
        self.local.replayed.load(Ordering::Relaxed)
    }
    fn round_trips(&self) -> Histogram {
        let h = self.local.round_trips.lock();
        h.unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn set_auth(&self, auth: Option<Auth>) {
        self.local.set_auth(auth);
    }
}

/// What the service manager is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Ready,
    Status(String),
    Watchdog,
    Stopping,
}

/// The service manager (systemd, or nothing outside it).
pub trait Supervisor {
    fn notify(&self, notice: Notice);
    /// The watchdog period, if the service manager wants pings.
    fn watchdog(&self) -> Option<Duration>;
}

/// systemd through `$NOTIFY_SOCKET`; a no-op when it is not set.
pub struct Systemd;

impl Supervisor for Systemd {
    fn notify(&self, notice: Notice) {
        let state = match &notice {
            Notice::Ready => NotifyState::Ready,
            Notice::Status(s) => NotifyState::Status(s),
            Notice::Watchdog => NotifyState::Watchdog,
            Notice::Stopping => NotifyState::Stopping,
        };
        let _ = sd_notify::notify(&[state]);
    }
    fn watchdog(&self) -> Option<Duration> {
        sd_notify::watchdog_enabled()
    }
}
