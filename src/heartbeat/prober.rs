//! The backup's side: dials the floating IP, sends a heartbeat every interval and turns
//! echoes and connection failures into events. It never decides anything itself: silence
//! is measured by the state machine's clock.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::listener::{read_message, ReadError};
use super::{peer_of, trouble_of, Local, Trouble};
use crate::vocabulary::{Event, Loss};
use crate::wire::{Challenge, Kind};

pub struct Prober {
    enabled: Arc<AtomicBool>,
    thread: Option<std::thread::Thread>,
}

/// A disabled prober sleeps until woken by [`Prober::set_enabled`]; this only bounds the sleep.
const IDLE_WAIT: Duration = Duration::from_secs(1);

impl Prober {
    /// Follows the holder while enabled, sending what it learns as `T`s (from [`Event`]s).
    pub fn start<T: From<Event> + Send + 'static>(
        local: Arc<Local>,
        port: u16,
        interval: Duration,
        dial_timeout: Duration,
        events: SyncSender<T>,
    ) -> Prober {
        let enabled = Arc::new(AtomicBool::new(false));
        let flag = enabled.clone();
        let target = SocketAddr::from((local.vip, port));
        let spawned = std::thread::Builder::new()
            .name("fip-prober".into())
            .spawn(move || loop {
                if !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(IDLE_WAIT);
                    continue;
                }
                let started = Instant::now();
                let loss = follow(&local, target, interval, dial_timeout, &flag, &events);
                if let Some(loss) = loss {
                    if events.send(Event::HolderLost(loss).into()).is_err() {
                        return; // the daemon is gone
                    }
                }
                // Redial at most once per interval, but at once after a long healthy session.
                std::thread::sleep(interval.saturating_sub(started.elapsed()));
            });
        let thread = match spawned {
            Ok(handle) => Some(handle.thread().clone()),
            Err(e) => {
                log::error!("cannot start the prober thread: {e}");
                None
            }
        };
        Prober { enabled, thread }
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.unpark();
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
    enabled: &AtomicBool,
    events: &SyncSender<T>,
) -> Option<Loss> {
    // One attempt never outlasts an interval: a SYN sent while the address is moving goes to
    // the old holder's MAC and TCP would retry only after a second; a fresh dial follows the move.
    let mut stream = match TcpStream::connect_timeout(&target, dial_timeout.min(interval)) {
        Ok(s) => s,
        Err(e) => return classify(&e),
    };
    let _ = stream.set_nodelay(true);
    let mut answered = false;
    // Bounded by the enable flag and by errors; each pass takes about one interval.
    while enabled.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let (sent_heartbeat, heartbeat) = local.seal(Kind::Heartbeat, None, None);
        if let Err(e) = stream.write_all(&heartbeat) {
            return classify(&e).filter(|_| answered);
        }
        // With a key, the echo must answer this very heartbeat: a replayed echo cannot.
        let challenge = Challenge {
            boot: sent_heartbeat.boot,
            seq: sent_heartbeat.seq,
        };
        match read_message(&mut stream, local, sent + interval) {
            Ok(d)
                if d.message.kind == Kind::Echo
                    && d.message.vip == local.vip
                    && d.stamp.map_or(true, |s| s.reply_to == Some(challenge))
                    && local.check_clock(&d).is_ok() =>
            {
                answered = true;
                local.round_trip(sent.elapsed());
                if events
                    .send(Event::Echo(peer_of(&d.message)).into())
                    .is_err()
                {
                    return None;
                }
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
            Err(ReadError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                return answered.then_some(Loss::Closed)
            }
            // A timeout: redial; the machine's clock, not this thread, measures silence.
            Err(ReadError::Io(e)) => return classify(&e).filter(|_| answered),
            Err(ReadError::Wire(e)) => {
                local.refuse(target.ip(), trouble_of(&e), || format!("echo: {e}"));
                return None;
            }
        }
        if let Some(loss) = idle_until_next(&stream, interval.saturating_sub(sent.elapsed())) {
            return loss;
        }
    }
    None
}

/// Waits out the rest of the interval, but notices at once if the holder closes the
/// connection (its daemon crashed or stopped): `Some(how the session ended)` then.
fn idle_until_next(stream: &TcpStream, rest: Duration) -> Option<Option<Loss>> {
    if rest.is_zero() {
        return None;
    }
    let mut byte = [0u8; 1];
    let waited = stream
        .set_read_timeout(Some(rest))
        .and_then(|()| stream.peek(&mut byte));
    match waited {
        Ok(0) => Some(Some(Loss::Closed)),
        // Data nobody asked for: the next echo read deals with it.
        Ok(_) => None,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
            ) =>
        {
            None
        }
        Err(e) => Some(classify(&e)),
    }
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
            let Ok(mut stream) = TcpStream::connect_timeout(&target, timeout) else {
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
