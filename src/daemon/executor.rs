//! Carries out the state machine's actions on the host and the network, and reports to
//! the service manager. Failures become events; nothing here changes the state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, error, info, warn};

use super::outside::{Group, Notice, Supervisor};
use crate::config::Config;
use crate::heartbeat::LocalView;
use crate::metrics::Sample;
use crate::net::{arp, Host};
use crate::notify::Notifier;
use crate::state::{Holder, Machine};
use crate::status::{CheckStatus, Snapshot};
use crate::vocabulary::{Action, Event, Histogram, ProbeOutcome, Role};
use crate::wire::Kind;

pub enum Outcome {
    Done,
    Feedback(Event),
    Exit,
}

pub struct Executor<H: Host> {
    host: H,
    group: Box<dyn Group>,
    supervisor: Box<dyn Supervisor>,
    vip: std::net::IpAddr,
    watchdog: Option<Duration>,
    last_watchdog: Instant,
    /// What systemd was last told, as STATUS=.
    status: Option<crate::status::Summary>,
    notifier: Notifier,
    /// Role changes since start, for the metrics.
    transitions: BTreeMap<(Role, Role), u64>,
    takeovers: Histogram,
}

impl<H: Host> Executor<H> {
    pub fn new(
        host: H,
        group: Box<dyn Group>,
        supervisor: Box<dyn Supervisor>,
        config: &Config,
        now: Instant,
    ) -> Self {
        Executor {
            host,
            group,
            watchdog: supervisor.watchdog(),
            supervisor,
            vip: config.vip,
            last_watchdog: now,
            status: None,
            notifier: Notifier::start(
                &config.notify,
                config.vip,
                &config.addresses,
                config.node_addr,
                &config.interface,
            ),
            transitions: BTreeMap::new(),
            takeovers: Histogram::new(crate::metrics::TAKEOVER_BUCKETS),
        }
    }

    /// Applies a reloaded configuration's keys and hooks; the machine is told by the loop.
    pub fn reconfigure(&mut self, old: &Config, new: &Config) {
        if old.auth != new.auth {
            self.group.set_auth(new.auth.clone());
        }
        if old.notify != new.notify {
            self.notifier = Notifier::start(
                &new.notify,
                new.vip,
                &new.addresses,
                new.node_addr,
                &new.interface,
            );
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
                self.group.send(Kind::Announce, None);
            }
            Action::AnnounceTo(node) => {
                self.publish_view(machine);
                self.group.announce_to(node);
            }
            Action::Resign { successor } => {
                self.publish_view(machine);
                // Twice: a lost datagram would cost the group a whole detection time.
                self.group.send(Kind::Resign, successor);
                self.group.send(Kind::Resign, successor);
            }
            Action::SetProbing(on) => self.group.set_probing(on),
            Action::AskHolder => self.group.ask_holder(),
            Action::ConfirmMaster(node) => self.group.confirm_master(node),
            Action::Transition { from, to, reason } => {
                info!("{from} -> {to}: {reason}");
                if from == Role::Master {
                    // After the resignation: the backups hear it before their connection ends.
                    self.group.let_followers_go();
                }
                *self.transitions.entry((from, to)).or_default() += 1;
                if let (Role::Master, Some(seen)) = (to, machine.fault_seen()) {
                    // The address was added just before this transition's line.
                    self.takeovers.observe(seen.elapsed().as_secs_f64());
                }
                self.publish_view(machine);
                // Queued: hooks run on their own thread and never delay what follows.
                let lease = machine.lease().filter(|_| to == Role::Master);
                self.notifier
                    .transition(from, to, &reason.to_string(), lease);
            }
            Action::Note(text) => info!("{text}"),
            Action::Exit => {
                self.supervisor.notify(Notice::Stopping);
                return Outcome::Exit;
            }
        }
        Outcome::Done
    }

    /// Link state and address presence as an event, or `None` if the host cannot be read.
    pub fn observe(&self, machine: &Machine) -> Option<Event> {
        match self.host.observe() {
            Ok(o) => Some(Event::Observed {
                link_up: o.link_up,
                address_present: o.address_present(machine.role() == Role::Master),
            }),
            Err(e) => {
                warn!("cannot read the interface: {e}");
                None
            }
        }
    }

    /// What the heartbeat threads say about us must match the machine before anything is sent.
    fn publish_view(&self, machine: &Machine) {
        self.group.set_view(LocalView {
            role: machine.role(),
            priority: machine.priority(),
            preempt_request: machine.preempt_requesting(Instant::now()),
        });
    }

    /// Keeps the heartbeat threads' view, the holder they follow and systemd's STATUS=
    /// current.
    pub fn publish(&mut self, machine: &Machine, config: &Config) {
        self.publish_view(machine);
        self.group.follow(match machine.holder() {
            Holder::Alive { peer, .. } => Some((peer.node, peer.boot)),
            Holder::Unknown | Holder::Lost { .. } => None,
        });
        let status = crate::status::Summary::of(machine, config);
        if self.status.as_ref() != Some(&status) {
            self.supervisor.notify(Notice::Status(status.line(config)));
            self.status = Some(status);
        }
    }

    /// What `floatip status` shows, made when asked.
    pub fn snapshot(
        &self,
        machine: &Machine,
        config: &Config,
        checks: Vec<CheckStatus>,
    ) -> Snapshot {
        let (rejected, auth_failures) = self.group.rejected();
        let mut snapshot = Snapshot::of(
            machine,
            config,
            Instant::now(),
            SystemTime::now(),
            rejected,
            checks,
        );
        snapshot.counters.auth_failures = auth_failures;
        snapshot
    }

    /// What a Prometheus scrape shows, made when asked.
    pub fn sample(
        &self,
        machine: &Machine,
        config: &Config,
        checks: &[CheckStatus],
        reloads: u64,
    ) -> Sample {
        let (rejected, auth_failures) = self.group.rejected();
        let replayed = self.group.replayed();
        Sample {
            addresses: config.addresses.iter().map(|a| a.ip()).collect(),
            role: machine.role(),
            priority: machine.priority().0,
            peers: machine.peers().count(),
            transitions: self.transitions.clone(),
            takeover: self.takeovers.clone(),
            round_trips: self.group.round_trips(),
            dropped: rejected,
            forged: auth_failures.saturating_sub(replayed),
            replayed,
            checks: checks
                .iter()
                .map(|c| (c.name.clone(), c.state.clone()))
                .collect(),
            reloads,
        }
    }

    pub fn notify_ready(&mut self, machine: &Machine, config: &Config) {
        self.publish(machine, config);
        self.supervisor.notify(Notice::Ready);
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
                self.supervisor.notify(Notice::Watchdog);
                self.last_watchdog = now;
            }
        }
    }
}
