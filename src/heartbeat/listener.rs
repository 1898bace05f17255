//! The holder's side: accepts heartbeat connections and answers each heartbeat with an echo.
//! Hostile peers are bounded: connection caps (per source, and in all with a share kept
//! for members), a connection rate per source, a deadline per message (not per read, so a
//! byte now and then does not hold a slot) and a fixed maximum message size. A connection
//! whose heartbeat was answered may then stay open and silent for as long as it likes:
//! that is how a backup follows the holder.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{trouble_of, Local, Trouble};
use crate::vocabulary::{BootId, Role};
use crate::wire::{self, Challenge, Decoded, Kind};

pub struct Listener {
    socket: TcpListener,
    port: u16,
}

impl Listener {
    /// Listens on `port` of `interface` only, in the family of `node` (the heartbeat's).
    pub fn bind(port: u16, interface: &str, node: IpAddr) -> std::io::Result<Listener> {
        let s = super::bind_on_interface(node, socket2::Type::STREAM, port, interface)?;
        s.listen(64)?;
        Ok(Listener {
            socket: s.into(),
            port,
        })
    }

    /// Serves forever on the current thread; each connection gets its own bounded thread.
    pub fn serve(self, local: Arc<Local>, read_deadline: Duration) {
        if !local.authenticated() {
            warn!(
                "heartbeat port {} is unauthenticated: any host on the LAN can move the floating IP; set floating_ip.auth.key_file (see docs/security.md)",
                self.port
            );
        }
        for (id, stream) in (0u64..).zip(self.socket.incoming()) {
            let Ok(stream) = stream else { continue };
            let Ok(from) = stream.peer_addr().map(|a| a.ip()) else {
                continue;
            };
            let Some(member) = local.admit_connection(from) else {
                local.refuse(from, Trouble::Limit, || {
                    format!(
                        "connection refused: over the per-source rate, {} open from it, or {} open in all",
                        super::CONNECTIONS_PER_SOURCE,
                        super::MAX_CONNECTIONS
                    )
                });
                continue;
            };
            let conn_local = local.clone();
            let spawned = std::thread::Builder::new()
                .name("fip-conn".into())
                .spawn(move || {
                    let follower = Follower {
                        from,
                        id,
                        all: &conn_local.followers,
                    };
                    if let Err(e) = answer(stream, &conn_local, read_deadline, &follower) {
                        if e.rejected {
                            conn_local.refuse(from, e.trouble, || e.why.clone());
                        } else {
                            debug!("heartbeat connection from {from} ended: {e}");
                        }
                    }
                    conn_local.followers.forget(from, id);
                    conn_local.connection_closed(from, member);
                });
            if spawned.is_err() {
                local.connection_closed(from, member);
            }
        }
    }
}

/// The silent connections of backups that follow us, one per source: a backup dials
/// again when its old connection may be dead (a cut, a partition), and the FIN of the old
/// one may never arrive; the new one replaces it, so none lingers.
#[derive(Debug, Default)]
pub(super) struct Followers(Mutex<HashMap<IpAddr, (u64, TcpStream)>>);

impl Followers {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u64, TcpStream)>> {
        // A poisoned lock only means a panicking holder; the table is still valid.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connection `id` from `from` was answered: it replaces any older one from there.
    fn answered(&self, from: IpAddr, id: u64, stream: &TcpStream) {
        let Ok(handle) = stream.try_clone() else {
            return;
        };
        if let Some((_, old)) = self.table().insert(from, (id, handle)) {
            let _ = old.shutdown(Shutdown::Both);
        }
    }

    /// Ends every follower's connection: we no longer hold the address, and a connection
    /// whose end was lost (a cut, a partition) would otherwise stay open for good.
    pub(super) fn let_go(&self) {
        for (_, (_, stream)) in self.table().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn forget(&self, from: IpAddr, id: u64) {
        let mut table = self.table();
        if table.get(&from).is_some_and(|(current, _)| *current == id) {
            table.remove(&from);
        }
    }
}

/// One connection's place among the [`Followers`].
struct Follower<'a> {
    from: IpAddr,
    id: u64,
    all: &'a Followers,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Wire(#[from] wire::WireError),
}

/// Reads one framed message, never more than [`wire::MAX_MESSAGE_LEN`] bytes, whole by
/// `deadline` however the bytes trickle in, and applies the authentication policy.
pub fn read_message(
    stream: &mut TcpStream,
    local: &Local,
    deadline: Instant,
) -> Result<Decoded, ReadError> {
    let mut buf = [0u8; wire::MAX_MESSAGE_LEN];
    read_by(stream, &mut buf[..wire::HEADER_LEN], deadline)?;
    let len = wire::frame_len(&buf[..wire::HEADER_LEN])?;
    read_by(stream, &mut buf[wire::HEADER_LEN..len], deadline)?;
    Ok(local.open(&buf[..len])?)
}

/// `read_exact` with one deadline for all its reads; a timeout is `TimedOut`.
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why a heartbeat connection ended; `rejected` when the peer sent something unacceptable.
#[derive(Debug)]
struct Ended {
    why: String,
    rejected: bool,
    trouble: Trouble,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

fn io_end(e: std::io::Error) -> Ended {
    Ended {
        why: e.to_string(),
        rejected: false,
        trouble: Trouble::Malformed,
    }
}

fn refused(why: String, trouble: Trouble) -> Ended {
    Ended {
        why,
        rejected: true,
        trouble,
    }
}

/// Blocks until the peer sends again; an error once it closed.
fn wait_for_more(stream: &TcpStream) -> Result<(), Ended> {
    stream.set_read_timeout(None).map_err(io_end)?;
    let mut byte = [0u8; 1];
    loop {
        match stream.peek(&mut byte) {
            Ok(0) => return Err(io_end(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_end(e)),
        }
    }
}

fn answer(
    mut stream: TcpStream,
    local: &Local,
    read_deadline: Duration,
    follower: &Follower<'_>,
) -> Result<(), Ended> {
    stream
        .set_write_timeout(Some(read_deadline))
        .map_err(io_end)?;
    stream.set_nodelay(true).map_err(io_end)?;
    // Within one connection a prober's sequence only grows.
    let mut last: Option<(BootId, u64)> = None;
    loop {
        // A prober that was answered keeps the connection open and silent (its closing is
        // how it learns we died); only a message that has begun must arrive whole in time.
        if last.is_some() {
            wait_for_more(&stream)?;
        }
        let d = match read_message(&mut stream, local, Instant::now() + read_deadline) {
            Ok(d) => d,
            Err(ReadError::Io(e)) => return Err(io_end(e)),
            Err(ReadError::Wire(e)) => {
                return Err(refused(format!("heartbeat: {e}"), trouble_of(&e)))
            }
        };
        let m = d.message;
        if m.kind != Kind::Heartbeat || m.vip != local.vip {
            return Err(refused(
                format!(
                    "unexpected {:?} for {} on the heartbeat port",
                    m.kind, m.vip
                ),
                Trouble::Malformed,
            ));
        }
        if let Err(e) = local.check_clock(&d) {
            return Err(refused(format!("heartbeat: {e}"), Trouble::Auth));
        }
        if last.is_some_and(|(boot, seq)| boot != m.boot || m.seq <= seq) {
            return Err(refused(
                format!("heartbeat seq {} replayed or reordered", m.seq),
                Trouble::Replay,
            ));
        }
        // A master asking us to confirm our claim is no follower.
        if last.is_none() && m.role != Role::Master {
            follower.all.answered(follower.from, follower.id, &stream);
        }
        last = Some((m.boot, m.seq));
        let (_, echo) = local.seal(
            Kind::Echo,
            None,
            Some(Challenge {
                boot: m.boot,
                seq: m.seq,
            }),
        );
        stream.write_all(&echo).map_err(io_end)?;
    }
}
