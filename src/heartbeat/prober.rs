//! The backup's side: dials the floating IP, proves who holds it by one heartbeat and its
//! echo, then keeps the connection open and silent. The holder's periodic announce tells
//! that it is alive; the connection tells the moment its process dies (the kernel closes
//! it). It never decides anything itself: silence is measured by the state machine's clock.

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::listener::{read_message, ReadError};
use super::{peer_of, trouble_of, Local, Trouble};
use crate::vocabulary::{BootId, Event, Loss};
use crate::wire::{Challenge, Kind};

/// Who answered a session's heartbeat: node and boot.
type Answerer = (IpAddr, BootId);

pub struct Prober {
    control: Arc<Control>,
    local: Arc<Local>,
    thread: Option<std::thread::Thread>,
}

/// What the daemon tells the prober thread, and the open session it may have to end.
#[derive(Default)]
struct Control {
    enabled: AtomicBool,
    /// The holder the daemon follows, when it knows one.
    following: Mutex<Option<Answerer>>,
    session: Mutex<Option<Session>>,
    /// The session was ended from here, not by the holder.
    ended_here: AtomicBool,
    /// The heartbeat sent on the open session by [`Prober::ask`], awaiting its echo.
    asked: Mutex<Option<Challenge>>,
}

/// An open, silent connection to the holder that answered it.
struct Session {
    holder: Answerer,
    stream: TcpStream,
}

impl Control {
    fn session(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        // A poisoned lock only means a panicking holder; the value is still valid.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn following(&self) -> Option<Answerer> {
        *self.following.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a session with `holder` should not go on: disabled, or another holder followed.
    fn unwanted(&self, holder: Answerer) -> bool {
        !self.enabled.load(Ordering::Relaxed) || self.following().is_some_and(|f| f != holder)
    }

    /// Ends the open session, if any, waking its thread; it then reports no loss.
    fn end_session(&self, only_if: impl FnOnce(Answerer) -> bool) {
        if let Some(s) = &*self.session() {
            if only_if(s.holder) {
                self.ended_here.store(true, Ordering::Relaxed);
                let _ = s.stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Prober {
    /// Follows the holder while enabled, sending what it learns as `T`s (from [`Event`]s).
    pub fn start<T: From<Event> + Send + 'static>(
        local: Arc<Local>,
        port: u16,
        interval: Duration,
        dial_timeout: Duration,
        events: SyncSender<T>,
    ) -> Prober {
        let control = Arc::new(Control::default());
        let shared = control.clone();
        let prober_local = local.clone();
        let target = SocketAddr::from((local.vip, port));
        let spawned = std::thread::Builder::new()
            .name("fip-prober".into())
            .spawn(move || loop {
                if !shared.enabled.load(Ordering::Relaxed) {
                    // Until [`Prober::set_enabled`] wakes it (a spurious wake-up just loops).
                    std::thread::park();
                    continue;
                }
                let started = Instant::now();
                let loss = follow(&local, target, interval, dial_timeout, &shared, &events);
                if let Some(loss) = loss {
                    if events.send(Event::HolderLost(loss).into()).is_err() {
                        return; // the daemon is gone
                    }
                }
                // Redial at most once per interval, but at once after a long session.
                std::thread::sleep(interval.saturating_sub(started.elapsed()));
            });
        let thread = match spawned {
            Ok(handle) => Some(handle.thread().clone()),
            Err(e) => {
                log::error!("cannot start the prober thread: {e}");
                None
            }
        };
        Prober {
            control,
            local: prober_local,
            thread,
        }
    }

    /// Sends one heartbeat on the open session (the holder's announces are late); the
    /// prober thread reads the echo and reports it as [`Event::Echo`]. Nothing without
    /// a session: then the dial in progress answers the same question.
    pub fn ask(&self) {
        let session = self.control.session();
        let Some(s) = &*session else { return };
        let (sent, bytes) = self.local.seal(Kind::Heartbeat, None, None);
        *self.control.asked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Challenge {
            boot: sent.boot,
            seq: sent.seq,
        });
        // A failed write ends the session by itself: its reader sees the error.
        let _ = (&s.stream).write_all(&bytes);
    }

    pub fn set_enabled(&self, on: bool) {
        self.control.enabled.store(on, Ordering::Relaxed);
        if !on {
            self.control.end_session(|_| true);
        }
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }

    /// The holder the daemon follows now (`None`: it knows none). A session with another
    /// holder is ended and the address dialled again: it moved while we were connected.
    pub fn follow(&self, holder: Option<(IpAddr, BootId)>) {
        *self
            .control
            .following
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = holder;
        if let Some(h) = holder {
            self.control.end_session(|s| s != h);
        }
    }
}

/// One session with the holder; returns how it ended, if that says something about the holder.
/// Only a session the holder answered can end in evidence of a crash: a connection closed
/// before any verified echo may be a listener at its cap (strangers holding the slots), or
/// not the holder at all, and is just redialled.
fn follow<T: From<Event>>(
    local: &Local,
    target: SocketAddr,
    interval: Duration,
    dial_timeout: Duration,
    control: &Control,
    events: &SyncSender<T>,
) -> Option<Loss> {
    // One attempt never outlasts an interval: a SYN sent while the address is moving goes to
    // the old holder's MAC and TCP would retry only after a second; a fresh dial follows the move.
    let mut stream = match TcpStream::connect_timeout(&target, dial_timeout.min(interval)) {
        Ok(s) => s,
        Err(e) => return classify(&e),
    };
    let _ = stream.set_nodelay(true);
    let sent = Instant::now();
    let (sent_heartbeat, heartbeat) = local.seal(Kind::Heartbeat, None, None);
    if stream.write_all(&heartbeat).is_err() {
        return None;
    }
    // With a key, the echo must answer this very heartbeat: a replayed echo cannot.
    let challenge = Challenge {
        boot: sent_heartbeat.boot,
        seq: sent_heartbeat.seq,
    };
    let holder = match read_message(&mut stream, local, sent + interval) {
        Ok(d)
            if d.message.kind == Kind::Echo
                && d.message.vip == local.vip
                && d.stamp.map_or(true, |s| s.reply_to == Some(challenge))
                && local.check_clock(&d).is_ok() =>
        {
            local.round_trip(sent.elapsed());
            if events
                .send(Event::Echo(peer_of(&d.message)).into())
                .is_err()
            {
                return None;
            }
            (d.message.node, d.message.boot)
        }
        Ok(d) => {
            local.refuse(
                target.ip(),
                if local.authenticated() {
                    Trouble::Auth
                } else {
                    Trouble::Malformed
                },
                || {
                    format!(
                        "unexpected or stale {:?} answering our heartbeat",
                        d.message.kind
                    )
                },
            );
            return None;
        }
        // Closed or timed out before an answer: redial; the machine's clock, not this
        // thread, measures silence.
        Err(ReadError::Io(_)) => return None,
        Err(ReadError::Wire(e)) => {
            local.refuse(target.ip(), trouble_of(&e), || format!("echo: {e}"));
            return None;
        }
    };
    wait_for_close(stream, holder, local, interval, control, events)
}

/// Keeps the answered session open and silent until the holder closes it (its daemon
/// crashed or stopped: `Some(how)`) or the daemon ends it from here (`None`). Echoes to
/// heartbeats sent by [`Prober::ask`] are reported on the way.
fn wait_for_close<T: From<Event>>(
    mut stream: TcpStream,
    holder: Answerer,
    local: &Local,
    interval: Duration,
    control: &Control,
    events: &SyncSender<T>,
) -> Option<Loss> {
    let Ok(handle) = stream.try_clone() else {
        return None;
    };
    {
        let mut session = control.session();
        control.ended_here.store(false, Ordering::Relaxed);
        *session = Some(Session {
            holder,
            stream: handle,
        });
    }
    // Told before the session was registered.
    if control.unwanted(holder) {
        control.end_session(|_| true);
    }
    let ended = loop {
        let mut byte = [0u8; 1];
        let waited = stream.set_read_timeout(None).and_then(|()| loop {
            match stream.peek(&mut byte) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        });
        if control.ended_here.load(Ordering::Relaxed) {
            break None;
        }
        match waited {
            Ok(0) => break Some(Loss::Closed),
            Ok(_) => {}
            Err(e) => break classify(&e),
        }
        let asked = control
            .asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match read_message(&mut stream, local, Instant::now() + interval) {
            Ok(d)
                if asked.is_some()
                    && d.message.kind == Kind::Echo
                    && d.message.vip == local.vip
                    && (d.message.node, d.message.boot) == holder
                    && d.stamp.map_or(true, |s| s.reply_to == asked)
                    && local.check_clock(&d).is_ok() =>
            {
                if events
                    .send(Event::Echo(peer_of(&d.message)).into())
                    .is_err()
                {
                    break None;
                }
            }
            // Data nobody asked for, or an echo that came too late: a fresh session
            // sorts it out.
            _ => break None,
        }
    };
    *control.session() = None;
    control.ended_here.store(false, Ordering::Relaxed);
    ended
}

fn classify(e: &std::io::Error) -> Option<Loss> {
    match e.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => Some(Loss::Closed),
        _ => None,
    }
}

/// Longest single connection attempt of [`dial_until`]: a SYN lost to a path that is just
/// healing is retransmitted by the kernel only after a second; a new attempt is not.
const REDIAL: Duration = Duration::from_millis(20);

/// Connects to `target`, dialling again every [`REDIAL`] until `deadline`.
fn dial_until(target: SocketAddr, deadline: Instant) -> Option<TcpStream> {
    loop {
        let started = Instant::now();
        let left = deadline.checked_duration_since(started)?;
        if left.is_zero() {
            return None;
        }
        if let Ok(stream) = TcpStream::connect_timeout(&target, left.min(REDIAL)) {
            return Some(stream);
        }
        // A refusal comes at once: wait out the attempt rather than spin.
        std::thread::sleep((started + REDIAL).saturating_duration_since(Instant::now()));
    }
}

/// Asks `node` itself, by one heartbeat exchange on its own short thread, what it is; its
/// echo comes back as [`Event::MasterConfirmed`]. A claim forged in an unauthenticated
/// announce (from an address nobody has, or in a real node's name) gets no such echo.
pub fn confirm_master<T: From<Event> + Send + 'static>(
    local: Arc<Local>,
    node: std::net::IpAddr,
    port: u16,
    timeout: Duration,
    events: SyncSender<T>,
) {
    let spawned = std::thread::Builder::new()
        .name("fip-confirm".into())
        .spawn(move || {
            let deadline = Instant::now() + timeout;
            let target = SocketAddr::from((node, port));
            let Some(mut stream) = dial_until(target, deadline) else {
                log::debug!("{node} could not be reached to confirm its claim to be master");
                return;
            };
            let _ = stream.set_nodelay(true);
            let (asked, heartbeat) = local.seal(Kind::Heartbeat, None, None);
            if stream.write_all(&heartbeat).is_err() {
                return;
            }
            let challenge = Challenge {
                boot: asked.boot,
                seq: asked.seq,
            };
            match read_message(&mut stream, &local, deadline) {
                Ok(d)
                    if d.message.kind == Kind::Echo
                        && d.message.vip == local.vip
                        && d.message.node == node
                        && d.stamp.map_or(true, |s| s.reply_to == Some(challenge)) =>
                {
                    let _ = events.send(Event::MasterConfirmed(peer_of(&d.message)).into());
                }
                _ => log::debug!("{node} did not confirm its claim to be master"),
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot ask {node} to confirm its claim: {e}");
    }
}
