//! The holder's side: accepts heartbeat connections and answers each heartbeat with an echo.
//! Hostile peers are bounded: connection caps (per source, and in all with a share kept
//! for members), a connection rate per source, a deadline per message (not per read, so a
//! byte now and then does not hold a slot) and a fixed maximum message size.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{trouble_of, Local, Trouble};
use crate::vocabulary::BootId;
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
        for stream in self.socket.incoming() {
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
                    if let Err(e) = answer(stream, &conn_local, read_deadline) {
                        if e.rejected {
                            conn_local.refuse(from, e.trouble, || e.why.clone());
                        } else {
                            debug!("heartbeat connection from {from} ended: {e}");
                        }
                    }
                    conn_local.connection_closed(from, member);
                });
            if spawned.is_err() {
                local.connection_closed(from, member);
            }
        }
    }
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

fn answer(mut stream: TcpStream, local: &Local, read_deadline: Duration) -> Result<(), Ended> {
    stream
        .set_write_timeout(Some(read_deadline))
        .map_err(io_end)?;
    stream.set_nodelay(true).map_err(io_end)?;
    // Within one connection a prober's sequence only grows.
    let mut last: Option<(BootId, u64)> = None;
    loop {
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
