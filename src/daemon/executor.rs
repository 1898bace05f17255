//! Carries out the state machine's actions on the host and the network, and reports to
//! the service manager. Failures become events; nothing here changes the state.

use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, error, info, warn};
use sd_notify::NotifyState;

use super::input::Input;
use crate::config::Config;
use crate::heartbeat::{Broadcaster, Local, LocalView, Prober};
use crate::net::{arp, Host};
use crate::notify::Notifier;
use crate::state::Machine;
use crate::status::{CheckStatus, Snapshot};
use crate::vocabulary::{Action, Event, ProbeOutcome};
use crate::wire::Kind;

pub enum Outcome {
    Done,
    Feedback(Event),
    Exit,
}

pub struct Executor<H: Host> {
    host: H,
    broadcaster: Broadcaster,
    prober: Prober,
    local: std::sync::Arc<Local>,
    vip: std::net::Ipv4Addr,
    watchdog: Option<Duration>,
    last_watchdog: Instant,
    status: String,
    notifier: Notifier,
    /// For answers that come back later (a master confirming its claim).
    events: SyncSender<Input>,
    port: u16,
    dial_timeout: Duration,
}

impl<H: Host> Executor<H> {
    pub fn new(
        host: H,
        broadcaster: Broadcaster,
        prober: Prober,
        local: std::sync::Arc<Local>,
        config: &Config,
        events: SyncSender<Input>,
    ) -> Self {
        Executor {
            host,
            broadcaster,
            prober,
            local,
            vip: config.vip,
            watchdog: sd_notify::watchdog_enabled(),
            last_watchdog: Instant::now(),
            status: String::new(),
            notifier: Notifier::start(
                &config.notify,
                config.vip,
                config.node_addr,
                &config.interface,
            ),
            events,
            port: config.echo.port,
            dial_timeout: config.echo.dial_timeout.min(config.echo.interval),
        }
    }

    pub fn execute(&mut self, machine: &Machine, action: Action) -> Outcome {
        match action {
            Action::AddAddress => {
                let started = Instant::now();
                if let Err(e) = self.host.add_address() {
                    error!("cannot add {}: {e}", self.vip);
                    return Outcome::Feedback(Event::ActionFailed(e.to_string()));
                }
                debug!("added {} in {} µs", self.vip, started.elapsed().as_micros());
            }
            Action::RemoveAddress => match self.host.remove_address() {
                Ok(true) => debug!("removed {}", self.vip),
                Ok(false) => {}
                Err(e) => error!("cannot remove {}: {e}", self.vip),
            },
            Action::ProbeAddress | Action::ProbeHandedOver => {
                // The holder that handed over already removed the address: a short look will do.
                let wait = if action == Action::ProbeHandedOver {
                    arp::HANDOVER_PROBE_WAIT
                } else {
                    arp::PROBE_WAIT
                };
                return Outcome::Feedback(Event::Probe(self.host.probe(wait).unwrap_or_else(
                    |e| {
                        // Unable to look means unable to prove the address free: never add it blind.
                        error!("cannot probe {}: {e}; treating it as in use", self.vip);
                        ProbeOutcome::InUse([0; 6])
                    },
                )));
            }
            Action::SendGarp => {
                if let Err(e) = self.host.announce() {
                    warn!("gratuitous ARP for {} failed: {e}", self.vip);
                }
            }
            Action::Announce => {
                self.publish_view(machine);
                self.broadcaster.send(Kind::Announce, None);
            }
            Action::Resign { successor } => {
                self.publish_view(machine);
                // Twice: a lost datagram would cost the group a whole detection time.
                self.broadcaster.send(Kind::Resign, successor);
                self.broadcaster.send(Kind::Resign, successor);
            }
            Action::SetProbing(on) => self.prober.set_enabled(on),
            Action::ConfirmMaster(node) => {
                crate::heartbeat::confirm_master(
                    self.local.clone(),
                    node,
                    self.port,
                    self.dial_timeout,
                    self.events.clone(),
                );
            }
            Action::Transition { from, to, reason } => {
                info!("{from} -> {to}: {reason}");
                self.publish_view(machine);
                // Queued: hooks run on their own thread and never delay what follows.
                self.notifier.transition(from, to, &reason.to_string());
            }
            Action::Note(text) => info!("{text}"),
            Action::Exit => {
                let _ = sd_notify::notify(&[NotifyState::Stopping]);
                return Outcome::Exit;
            }
        }
        Outcome::Done
    }

    /// Link state and address presence as an event, or `None` if the host cannot be read.
    pub fn observe(&self) -> Option<Event> {
        match self.host.observe() {
            Ok(o) => Some(Event::Observed {
                link_up: o.link_up,
                address_present: o.address_present,
            }),
            Err(e) => {
                warn!("cannot read the interface: {e}");
                None
            }
        }
    }

    /// What the heartbeat threads say about us must match the machine before anything is sent.
    fn publish_view(&self, machine: &Machine) {
        self.local.set_view(LocalView {
            role: machine.role(),
            priority: machine.priority(),
            preempt_request: machine.preempt_requesting(Instant::now()),
        });
    }

    /// Keeps the heartbeat threads' view and systemd's STATUS= current.
    pub fn publish(&mut self, machine: &Machine, config: &Config) {
        self.publish_view(machine);
        let status = crate::status::one_line(machine, config);
        if status != self.status {
            let _ = sd_notify::notify(&[NotifyState::Status(&status)]);
            self.status = status;
        }
    }

    /// What `floatip status` shows, made when asked.
    pub fn snapshot(
        &self,
        machine: &Machine,
        config: &Config,
        checks: Vec<CheckStatus>,
    ) -> Snapshot {
        let rejected = self
            .local
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut snapshot = Snapshot::of(
            machine,
            config,
            Instant::now(),
            SystemTime::now(),
            rejected,
            checks,
        );
        snapshot.counters.auth_failures = self
            .local
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed);
        snapshot
    }

    pub fn notify_ready(&mut self, machine: &Machine, config: &Config) {
        self.publish(machine, config);
        let _ = sd_notify::notify(&[NotifyState::Ready]);
    }

    /// When the loop must wake for the watchdog at the latest (half the systemd period).
    pub fn next_watchdog(&self, now: Instant) -> Instant {
        self.watchdog.map_or(now + Duration::from_secs(3600), |w| {
            self.last_watchdog + w / 2
        })
    }

    /// Pings systemd's watchdog from the loop that owns the state, so a stuck loop is caught.
    pub fn watchdog(&mut self, now: Instant) {
        if let Some(w) = self.watchdog {
            if now >= self.last_watchdog + w / 2 {
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
                self.last_watchdog = now;
            }
        }
    }
}
