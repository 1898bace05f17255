//! The holder's side: accepts heartbeat connections and answers each heartbeat with an echo.
//! Hostile peers are bounded: a connection cap, a read deadline per message and a fixed
//! maximum message size.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::debug;

use super::Local;
use crate::wire::{self, Kind};

/// More simultaneous heartbeat connections than any real group needs.
pub const MAX_CONNECTIONS: usize = 32;

pub struct Listener {
    socket: TcpListener,
}

impl Listener {
    pub fn bind(port: u16) -> std::io::Result<Listener> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
        s.listen(64)?;
        Ok(Listener { socket: s.into() })
    }

    /// Serves forever on the current thread; each connection gets its own bounded thread.
    pub fn serve(self, local: Arc<Local>, read_deadline: Duration) {
        let open = Arc::new(AtomicUsize::new(0));
        for stream in self.socket.incoming() {
            let Ok(stream) = stream else { continue };
            if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                debug!("heartbeat connection refused: {MAX_CONNECTIONS} already open");
                continue;
            }
            open.fetch_add(1, Ordering::Relaxed);
            let (local, still_open) = (local.clone(), open.clone());
            let spawned = std::thread::Builder::new().name("fip-conn".into()).spawn(move || {
                let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                if let Err(e) = answer(stream, &local, read_deadline) {
                    debug!("heartbeat connection from {peer} ended: {e}");
                    if e.rejected {
                        local.reject();
                    }
                }
                still_open.fetch_sub(1, Ordering::Relaxed);
            });
            if spawned.is_err() {
                open.fetch_sub(1, Ordering::Relaxed);
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

/// Reads one framed message, never more than [`wire::MAX_MESSAGE_LEN`] bytes.
pub fn read_message(stream: &mut TcpStream) -> Result<wire::Message, ReadError> {
    let mut buf = [0u8; wire::MAX_MESSAGE_LEN];
    stream.read_exact(&mut buf[..wire::HEADER_LEN])?;
    let len = wire::frame_len(&buf[..wire::HEADER_LEN])?;
    stream.read_exact(&mut buf[wire::HEADER_LEN..len])?;
    Ok(wire::decode(&buf[..len])?)
}

/// Why a heartbeat connection ended; `rejected` when the peer sent something unacceptable.
#[derive(Debug)]
struct Ended {
    why: String,
    rejected: bool,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

fn io_end(e: std::io::Error) -> Ended {
    Ended { why: e.to_string(), rejected: false }
}

fn answer(mut stream: TcpStream, local: &Local, read_deadline: Duration) -> Result<(), Ended> {
    stream.set_read_timeout(Some(read_deadline)).map_err(io_end)?;
    stream.set_write_timeout(Some(read_deadline)).map_err(io_end)?;
    stream.set_nodelay(true).map_err(io_end)?;
    loop {
        let m = match read_message(&mut stream) {
            Ok(m) => m,
            Err(ReadError::Io(e)) => return Err(io_end(e)),
            Err(ReadError::Wire(e)) => return Err(Ended { why: e.to_string(), rejected: true }),
        };
        if m.kind != Kind::Heartbeat || m.vip != local.vip {
            return Err(Ended { why: format!("unexpected {:?} for {}", m.kind, m.vip), rejected: true });
        }
        let echo = wire::encode(&local.message(Kind::Echo, None));
        stream.write_all(&echo).map_err(io_end)?;
    }
}
