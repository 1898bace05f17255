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
use crate::status::{HandoverReply, Request};
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
    #[error("cannot serve metrics on {listen} (floating_ip.metrics.listen): {error}")]
    Metrics {
        listen: std::net::SocketAddr,
        error: std::io::Error,
    },
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

/// How often the interface is looked at (link state, the address being there). Where the
/// kernel tells of changes this is only a safety net; elsewhere once an interval: a master
/// that lost its link drops the address before any backup (which waits at least two
/// intervals) can take over.
fn poll_period(interval: Duration, watched: bool) -> Duration {
    if watched {
        return Duration::from_secs(10);
    }
    interval.clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Asks the kernel to tell the loop when the interface changes; false where it cannot.
fn watch_interface(interface: &str, loop_inputs: mpsc::SyncSender<Input>) -> bool {
    let watched = nix::net::if_::if_nametoindex(interface)
        .map_err(std::io::Error::from)
        .and_then(|index| {
            crate::net::link_watch::spawn(index, move || loop_inputs.send(Input::Interface).is_ok())
        });
    match watched {
        Ok(on) => on,
        Err(e) => {
            warn!("cannot watch {interface} for changes ({e}); polling it every interval");
            false
        }
    }
}

/// The nice value the daemon runs at: a holder whose loop waits behind busy processes
/// looks frozen to the group at short intervals, and the loop needs little CPU.
const NICE: libc::c_int = -10;

/// Raises the process's scheduling priority to [`NICE`] (never lowers it); called before
/// any thread starts, so that every thread inherits it.
fn raise_priority() {
    // SAFETY: getpriority/setpriority take plain integers and touch no memory of ours.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if current <= NICE {
        return;
    }
    // SAFETY: as above.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) } != 0 {
        warn!(
            "cannot raise the scheduling priority to nice {NICE}: {}; under CPU load the group may see this node as frozen",
            std::io::Error::last_os_error()
        );
    }
}

/// Runs until SIGTERM/SIGINT; returns after the address is released.
pub fn run(config: Config) -> Result<(), DaemonError> {
    raise_priority();
    let host = SystemHost::new(&config.interface, &config.addresses)?;
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
    let broadcaster = Broadcaster::bind(
        local.clone(),
        port,
        &config.interface,
        config.segment.clone(),
    )
    .map_err(|error| DaemonError::Broadcast { port, error })?;
    let listener = Listener::bind(port, &config.interface, config.node_addr)
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
    let interface_watched = watch_interface(&config.interface, tx.clone());
    let checks = crate::health::start(&config.track, 0, tx.clone()).map_err(DaemonError::Checks)?;
    let status_requests = tx.clone();
    let scrapes = tx.clone();
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
        "floatip {} on {} ({}): floating IP {} priority {} port {} election {}, starting as BACKUP",
        env!("CARGO_PKG_VERSION"),
        config.interface,
        config.node_addr,
        config
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
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
        events: tx.clone(),
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
        loaded: Loaded::now(&config, Vec::new(), 0),
        config,
        tracker,
        health: Health::healthy(),
        checks: Some(checks),
        generation: 0,
        inputs: Some(tx),
        election_status: crate::status::ElectionStatus {
            kind: election.kind().into(),
            ..Default::default()
        },
        election,
        campaigning: false,
        interface_watched,
    };
    exits(daemon.apply(Instant::now(), first));
    if !daemon.tracker.is_empty() {
        // No take-over before the checks' first verdict.
        daemon.health = Health::pending();
        exits(daemon.step(Instant::now(), Event::Health(Health::pending())));
    }
    let _status = start_status_server(&daemon.config, status_requests);
    start_metrics_server(&daemon.config, scrapes)?;
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
    let ask = move |request| {
        let (reply, answer) = mpsc::channel();
        loop_inputs.send(Input::Status(request, reply)).ok()?;
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

/// The Prometheus endpoint, if configured, asks the loop for a sample per scrape. A port
/// that cannot be bound stops the start: the operator asked for the metrics.
fn start_metrics_server(
    config: &Config,
    loop_inputs: mpsc::SyncSender<Input>,
) -> Result<(), DaemonError> {
    let Some(metrics) = &config.metrics else {
        return Ok(());
    };
    let scrape = move || {
        let (reply, answer) = mpsc::channel();
        loop_inputs.send(Input::Metrics(reply)).ok()?;
        answer
            .recv_timeout(Duration::from_secs(2))
            .ok()?
            .encode()
            .ok()
    };
    let listen = metrics.listen;
    crate::metrics::Server::start(listen, scrape)
        .map_err(|error| DaemonError::Metrics { listen, error })?;
    info!("metrics on http://{listen}/metrics");
    Ok(())
}

/// The configuration the daemon runs, against its file.
struct Loaded {
    at: std::time::SystemTime,
    /// A hash of the file as read, to tell whether it changed since.
    digest: Option<u64>,
    restart_needed_for: Vec<&'static str>,
    reloads: u64,
}

impl Loaded {
    fn now(config: &Config, restart_needed_for: Vec<&'static str>, reloads: u64) -> Loaded {
        Loaded {
            at: std::time::SystemTime::now(),
            digest: digest(&config.source),
            restart_needed_for,
            reloads,
        }
    }

    fn status(&self, config: &Config) -> crate::status::ConfigStatus {
        let at = self.at.duration_since(std::time::SystemTime::UNIX_EPOCH);
        let file_on_disk = match digest(&config.source) {
            None => "unreadable".to_string(),
            Some(d) if Some(d) == self.digest && self.restart_needed_for.is_empty() => {
                "same".into()
            }
            Some(d) if Some(d) == self.digest => "differs in keys that need a restart".into(),
            Some(_) => "changed since loaded (reload to apply)".into(),
        };
        crate::status::ConfigStatus {
            loaded_unix_ms: at.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            reloads: self.reloads,
            file_on_disk,
            restart_needed_for: self
                .restart_needed_for
                .iter()
                .map(|k| k.to_string())
                .collect(),
        }
    }
}

fn digest(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
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
    loaded: Loaded,
    /// The check threads of `generation` (a reload with new checks starts the next).
    checks: Option<crate::health::Checks>,
    generation: u64,
    /// For check threads started on reload; `None` in tests without threads.
    inputs: Option<mpsc::SyncSender<Input>>,
    election: Box<dyn Election>,
    /// Whether the election was asked to campaign (and not to resign since).
    campaigning: bool,
    /// The kernel tells of interface changes: the loop need not poll for them.
    interface_watched: bool,
    election_status: crate::status::ElectionStatus,
}

impl<H: Host> Daemon<H> {
    fn run_loop(&mut self, rx: Receiver<Input>) {
        let poll = poll_period(self.config.echo.interval, self.interface_watched);
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
                Some(Input::Reload) => self.reload(),
                Some(Input::Interface) => {
                    next_poll = now;
                    Event::Tick
                }
                Some(Input::Check(run)) if run.generation != self.generation => Event::Tick,
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
                Some(Input::Status(request, reply)) => self.on_request(now, request, reply),
                Some(Input::Metrics(reply)) => {
                    let checks = crate::status::CheckStatus::all(&self.tracker, now);
                    let sample =
                        self.exec
                            .sample(&self.machine, &self.config, &checks, self.loaded.reloads);
                    let _ = reply.send(sample);
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
                if let Some(observed) = self.exec.observe(&self.machine) {
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
                    self.stand(now);
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
        self.stand(now);
        result
    }

    /// Campaigns while the machine may hold the address, resigns (after it removed the
    /// address) while it may not: failing checks, a link down, shutting down.
    fn stand(&mut self, now: Instant) {
        self.election.rank(self.machine.election_rank(now));
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

    /// A status socket request: a snapshot, or a hand-over fed to the machine (answered
    /// before it runs; the refusal is the machine's own rule, asked first).
    fn on_request(&mut self, now: Instant, request: Request, reply: mpsc::Sender<String>) -> Event {
        let (answer, event) = match request {
            Request::Status => {
                let checks = crate::status::CheckStatus::all(&self.tracker, now);
                let mut snapshot = self.exec.snapshot(&self.machine, &self.config, checks);
                snapshot.config = self.loaded.status(&self.config);
                snapshot.election = self.election_status.clone();
                (serde_json::to_string(&snapshot), Event::Tick)
            }
            Request::HandOver { to } => match self.machine.handover_target(now, to) {
                Ok(to) => (
                    serde_json::to_string(&HandoverReply::HandedTo(to)),
                    Event::HandOver { to: Some(to) },
                ),
                Err(refused) => {
                    warn!("handover refused: {refused}");
                    let reply = HandoverReply::Refused(refused.to_string());
                    (serde_json::to_string(&reply), Event::Tick)
                }
            },
        };
        let _ = reply.send(answer.unwrap_or_default());
        event
    }

    /// SIGHUP: applies what can change under a running daemon, names what cannot.
    fn reload(&mut self) -> Event {
        let new = match load_enabled(&self.config.source) {
            Ok(new) => new,
            Err(e) => {
                warn!("reload rejected, keeping the running config: {e:#}");
                return Event::Tick;
            }
        };
        let restart = self.config.needs_restart_for(&new);
        let live = self.config.applied_live(&new);
        let running = self.config.reloaded(new);
        self.machine.reconfigure(running.priority, running.timing());
        self.exec.reconfigure(&self.config, &running);
        let track_changed = running.track != self.config.track;
        self.config = running;
        self.loaded = Loaded::now(&self.config, restart.clone(), self.loaded.reloads + 1);
        let applied = if live.is_empty() {
            "nothing changed".to_string()
        } else {
            format!("applied {}", live.join(", "))
        };
        info!("reload: {}: {applied}", self.config.source.display());
        if !restart.is_empty() {
            warn!(
                "reload: restart floatip to apply {} (still running the old values)",
                restart.join(", ")
            );
        }
        if track_changed {
            return self.restart_checks();
        }
        Event::Tick
    }

    /// New checks: the old threads stop, their late results are ignored by generation.
    fn restart_checks(&mut self) -> Event {
        self.checks = None;
        self.generation += 1;
        self.tracker = Tracker::new(&self.config.track);
        if let Some(inputs) = &self.inputs {
            match crate::health::start(&self.config.track, self.generation, inputs.clone()) {
                Ok(checks) => self.checks = Some(checks),
                Err(e) => error!("reload: cannot start the service check threads: {e}"),
            }
        }
        let health = if self.tracker.is_empty() {
            Health::healthy()
        } else {
            Health::pending()
        };
        self.health = health.clone();
        Event::Health(health)
    }
}
