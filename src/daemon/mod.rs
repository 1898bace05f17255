//! The one loop that owns the state: it receives events from the heartbeat threads,
//! signals and its own timers, hands them to the state machine and carries out the
//! actions that come back through [`crate::net::Host`].

mod executor;
mod input;
mod outside;
mod signals;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use log::{error, info, warn};

use crate::config::{self, Config, ConfigError};
use crate::election::{etcd, Election, Lan};
use crate::health::Tracker;
use crate::heartbeat::{Broadcaster, Listener, Local, LocalView, Prober};
use crate::net::{Host, SystemHost};
use crate::state::Machine;
use crate::vocabulary::{Action, BootId, Event, Health, Role};
use executor::Executor;
use input::Input;
use outside::{Heartbeats, Systemd};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error("cannot listen on TCP port {port} (is another floatip running?): {error}")]
    Listen { port: u16, error: std::io::Error },
    #[error("cannot open UDP port {port} for announcements: {error}")]
    Broadcast { port: u16, error: std::io::Error },
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the heartbeat listener thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot start the service check threads: {0}")]
    Checks(std::io::Error),
    #[error("cannot draw a random boot id: {0}")]
    BootId(getrandom::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Election(#[from] etcd::Error),
}

/// Reads the configuration again (on SIGHUP); unknown keys are logged, as at start.
fn load_enabled(path: &Path) -> Result<Config, DaemonError> {
    let (loaded, unknown_keys) = config::load(path, &crate::net::discover()?)?;
    for line in unknown_keys {
        warn!("{line}");
    }
    Ok(loaded.enabled(path)?)
}

/// Inputs the loop's queue holds; a loop turn takes well under a millisecond.
const INPUT_QUEUE: usize = 1024;

/// How often the interface is looked at (link state, the address being there). Once an
/// interval: a master that lost its link drops the address before any backup (which
/// waits at least two intervals) can take over.
fn poll_period(interval: Duration) -> Duration {
    interval.clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Runs until SIGTERM/SIGINT; returns after the address is released.
pub fn run(config: Config) -> Result<(), DaemonError> {
    let host = SystemHost::new(&config.interface, config.vip, config.netmask)?;
    let boot = BootId::random().map_err(DaemonError::BootId)?;
    let local = Local::new(
        config.vip,
        config.node_addr,
        host.mac(),
        boot,
        LocalView {
            role: Role::Backup,
            priority: config.priority,
            preempt_request: false,
        },
        config.auth.clone(),
        config.echo.interval,
    );
    let port = config.echo.port;
    let broadcaster = Broadcaster::bind(local.clone(), port, &config.interface, config.netmask)
        .map_err(|error| DaemonError::Broadcast { port, error })?;
    let listener = Listener::bind(port, &config.interface)
        .map_err(|error| DaemonError::Listen { port, error })?;

    // Nothing from an earlier run may survive: a crash can leave the address behind.
    if host.remove_address()? {
        warn!(
            "removed a stale copy of {} from {} left by an earlier run",
            config.vip, config.interface
        );
        broadcaster.send(crate::wire::Kind::Released, None);
    }

    // Bounded: a flood of believable datagrams (possible without a key) is dropped at the
    // receiver instead of growing the queue; signals and checks wait for room instead.
    let (tx, rx) = mpsc::sync_channel(INPUT_QUEUE);
    signals::spawn(tx.clone()).map_err(DaemonError::Signals)?;
    broadcaster
        .spawn_receiver(tx.clone())
        .map_err(|error| DaemonError::Broadcast { port, error })?;
    let read_deadline = config.echo.timeout + config.echo.interval;
    let serving = local.clone();
    std::thread::Builder::new()
        .name("fip-listener".into())
        .spawn(move || listener.serve(serving, read_deadline))
        .map_err(DaemonError::Thread)?;
    crate::health::start(&config.track, tx.clone()).map_err(DaemonError::Checks)?;
    let status_requests = tx.clone();
    let prober = Prober::start(
        local.clone(),
        port,
        config.echo.interval,
        config.echo.dial_timeout,
        tx.clone(),
    );

    let (mut machine, first) = Machine::new(config.me(boot), config.timing(), Instant::now());
    let election = start_election(&config, tx.clone())?;
    if let config::Election::Etcd(_) = config.election {
        machine.gate_on_lease();
    }
    info!(
        "floatip {} on {} ({}): floating IP {}/{} priority {} port {} election {}, starting as BACKUP",
        env!("CARGO_PKG_VERSION"),
        config.interface,
        config.node_addr,
        config.vip,
        config.netmask.prefix_len(),
        config.priority,
        port,
        election.kind()
    );
    let tracker = Tracker::new(&config.track);
    let group = Heartbeats {
        broadcaster,
        prober,
        local,
        port,
        dial_timeout: config.echo.dial_timeout.min(config.echo.interval),
        events: tx,
    };
    let exec = Executor::new(
        host,
        Box::new(group),
        Box::new(Systemd),
        &config,
        Instant::now(),
    );
    let mut daemon = Daemon {
        machine,
        max_steps: MAX_STEPS,
        exec,
        config,
        tracker,
        health: Health::healthy(),
        election_status: crate::status::ElectionStatus {
            kind: election.kind().into(),
            ..Default::default()
        },
        election,
        campaigning: false,
    };
    exits(daemon.apply(Instant::now(), first));
    if !daemon.tracker.is_empty() {
        // No take-over before the checks' first verdict.
        daemon.health = Health::pending();
        exits(daemon.step(Instant::now(), Event::Health(Health::pending())));
    }
    let _status = start_status_server(&daemon.config, status_requests);
    daemon.exec.notify_ready(&daemon.machine, &daemon.config);
    daemon.run_loop(rx);
    // The address is gone: dropping the election revokes its lease, and backups watching
    // the key take over at once.
    drop(daemon);
    crate::exec::kill_all();
    Ok(())
}

/// The LAN election lives in the machine; etcd's campaign runs on its own thread and
/// reports into the loop's queue.
fn start_election(
    config: &Config,
    loop_inputs: mpsc::SyncSender<Input>,
) -> Result<Box<dyn Election>, DaemonError> {
    let config::Election::Etcd(settings) = &config.election else {
        return Ok(Box::new(Lan));
    };
    let settings = etcd::Settings {
        etcd: (**settings).clone(),
        node: config.node_addr,
        priority: config.priority,
    };
    let campaign = etcd::Campaign::start(settings, move |event| {
        // Fails only while the loop shuts down, when nothing is left to tell.
        let _ = loop_inputs.send(Input::from(event));
    })?;
    Ok(Box::new(campaign))
}

/// The status socket asks the loop for a snapshot through its own channel.
fn start_status_server(
    config: &Config,
    loop_inputs: mpsc::SyncSender<Input>,
) -> Option<crate::status::Server> {
    let ask = move || {
        let (reply, answer) = mpsc::channel();
        loop_inputs.send(Input::Status(reply)).ok()?;
        answer.recv_timeout(Duration::from_secs(2)).ok()
    };
    match crate::status::Server::start(&config.status_socket, ask) {
        Ok(server) => Some(server),
        Err(e) => {
            warn!(
                "status socket {} unavailable: {e}; `floatip status` will not work",
                config.status_socket.display()
            );
            None
        }
    }
}

/// Actions one event may lead to, follow-ups included. Each action yields at most one
/// follow-up event and the machine never loops on them, so reaching this is a bug.
const MAX_STEPS: usize = 64;

/// One event led to more actions than [`MAX_STEPS`]; the rest were not carried out.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("one event led to more than {steps} actions; left undone: {undone:?}")]
struct TooManySteps {
    steps: usize,
    undone: Vec<Action>,
}

fn lease_deadline_passed() -> Event {
    Event::ElectionLost {
        reason: "the lease's local deadline passed".into(),
    }
}

/// A runaway is logged, the loop goes on; true when the daemon must exit.
fn exits(result: Result<bool, TooManySteps>) -> bool {
    result.unwrap_or_else(|e| {
        error!("{e}");
        false
    })
}

struct Daemon<H: Host> {
    machine: Machine,
    max_steps: usize,
    exec: Executor<H>,
    config: Config,
    tracker: Tracker,
    /// The service checks' verdict as last told to the machine.
    health: Health,
    election: Box<dyn Election>,
    /// Whether the election was asked to campaign (and not to resign since).
    campaigning: bool,
    election_status: crate::status::ElectionStatus,
}

impl<H: Host> Daemon<H> {
    fn run_loop(&mut self, rx: Receiver<Input>) {
        let poll = poll_period(self.config.echo.interval);
        let mut next_poll = Instant::now();
        loop {
            let now = Instant::now();
            let wake = self
                .machine
                .next_deadline()
                .min(next_poll)
                .min(self.exec.next_watchdog(now))
                .min(self.lease_deadline(now));
            let input = match rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Input::Machine(Event::Shutdown)),
            };
            let now = Instant::now();
            // Before anything else, a thaw included: remove first, ask later.
            if self.lease_expired() && exits(self.step(now, lease_deadline_passed())) {
                return;
            }
            self.exec.watchdog(now);
            let event = match input {
                Some(Input::Machine(e)) => e,
                Some(Input::Reload) => {
                    self.reload();
                    Event::Tick
                }
                Some(Input::Check(run)) => self.on_check(now, run.index, run.sample),
                Some(Input::KeyHolder(node)) => {
                    self.election_status.key_holder = node;
                    self.election_status.unreachable = None;
                    Event::Tick
                }
                Some(Input::ElectionUnreachable(why)) => {
                    warn!(
                        "election unreachable: {why}; nobody holds {} until it answers",
                        self.config.vip
                    );
                    self.election_status.key_holder = None;
                    self.election_status.unreachable = Some(why);
                    Event::Tick
                }
                Some(Input::Status(reply)) => {
                    let mut snapshot = self.exec.snapshot(
                        &self.machine,
                        &self.config,
                        crate::status::CheckStatus::all(&self.tracker, now),
                    );
                    snapshot.election = self.election_status.clone();
                    let _ = reply.send(serde_json::to_string(&snapshot).unwrap_or_default());
                    Event::Tick
                }
                None => Event::Tick,
            };
            if exits(self.step(now, event)) {
                return;
            }
            // A poll due within a tenth of its period rides on this wake-up instead of its own.
            if now + poll / 10 >= next_poll {
                next_poll = now + poll;
                if let Some(observed) = self.exec.observe() {
                    if exits(self.step(now, observed)) {
                        return;
                    }
                }
            }
        }
    }

    /// Feeds one event and every outcome it leads to; `Ok(true)` when the daemon must exit.
    fn step(&mut self, now: Instant, event: Event) -> Result<bool, TooManySteps> {
        let actions = self.machine.handle(now, event);
        self.apply(now, actions)
    }

    fn apply(&mut self, now: Instant, actions: Vec<Action>) -> Result<bool, TooManySteps> {
        let mut queue: VecDeque<_> = actions.into();
        let mut steps = 0;
        let mut result = Ok(false);
        while let Some(action) = queue.pop_front() {
            if steps == self.max_steps {
                queue.push_front(action);
                result = Err(TooManySteps {
                    steps,
                    undone: queue.into(),
                });
                break;
            }
            steps += 1;
            if matches!(action, Action::AddAddress | Action::SendGarp) && self.lease_expired() {
                // Frozen between deciding and acting: the deadline passed meanwhile.
                queue = self
                    .machine
                    .handle(Instant::now(), lease_deadline_passed())
                    .into();
                continue;
            }
            match self.exec.execute(&self.machine, action) {
                executor::Outcome::Done => {}
                executor::Outcome::Exit => {
                    // The address is gone: give the seat up now, not after the clean-up.
                    self.stand();
                    return Ok(true);
                }
                executor::Outcome::Feedback(event) => {
                    let more = self.machine.handle(now, event);
                    for (i, a) in more.into_iter().enumerate() {
                        queue.insert(i, a);
                    }
                }
            }
        }
        self.exec.publish(&self.machine, &self.config);
        self.stand();
        result
    }

    /// Campaigns while the machine may hold the address, resigns (after it removed the
    /// address) while it may not: failing checks, a link down, shutting down.
    fn stand(&mut self) {
        let wanted = self.machine.wants_election();
        if wanted != self.campaigning {
            self.campaigning = wanted;
            if wanted {
                self.election.campaign();
            } else {
                self.election.resign();
            }
        }
    }

    /// A lease is held but its local deadline passed: it may expire in etcd any moment.
    fn lease_expired(&self) -> bool {
        self.machine.lease().is_some() && self.election.holds_for().is_none()
    }

    /// While a lease is held, the loop wakes no later than its local deadline.
    fn lease_deadline(&self, now: Instant) -> Instant {
        let far = now + Duration::from_secs(3600);
        if self.machine.lease().is_none() {
            return far;
        }
        self.election
            .holds_for()
            .map_or(now, |left| now.checked_add(left).unwrap_or(far).min(far))
    }

    /// Records a check result; a changed verdict or penalty becomes the machine's event.
    fn on_check(&mut self, now: Instant, index: usize, sample: crate::health::Sample) -> Event {
        if !sample.ok {
            log::debug!(
                "check {:?} failed in {} ms: {}",
                self.tracker.name(index),
                sample.took.as_millis(),
                sample.detail
            );
        }
        if let Some(change) = self.tracker.record(index, sample, now) {
            info!("{change}");
        }
        let health = self.tracker.health();
        if (health.verdict, health.penalty) == (self.health.verdict, self.health.penalty) {
            return Event::Tick;
        }
        self.health = health.clone();
        Event::Health(health)
    }

    fn reload(&mut self) {
        match load_enabled(&self.config.source) {
            Ok(new) if !self.config.needs_restart_for(&new).is_empty() => {
                warn!(
                    "reload: {} changes {}; restart floatip to apply it (keeping the running config)",
                    self.config.source.display(),
                    self.config.needs_restart_for(&new).join(", ")
                );
            }
            Ok(new) => {
                self.machine.set_timing(new.timing());
                info!(
                    "reload: timings and preemption updated from {}",
                    new.source.display()
                );
                self.config = new;
            }
            Err(e) => warn!("reload rejected, keeping the running config: {e:#}"),
        }
    }
}
