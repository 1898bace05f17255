//! UDP broadcasts on the echo port: every node announces itself each interval, a master
//! that gives the address up says so at once, and `floatip release` reports a removed copy.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use log::{debug, warn};

use super::{peer_of, Local};
use crate::daemon::Input;
use crate::state::Event;
use crate::wire::{self, Kind};

pub struct Broadcaster {
    socket: UdpSocket,
    target: SocketAddrV4,
    local: Arc<Local>,
}

impl Broadcaster {
    pub fn bind(local: Arc<Local>, port: u16, broadcast: Ipv4Addr) -> std::io::Result<Broadcaster> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        s.set_reuse_address(true)?;
        s.set_broadcast(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
        Ok(Broadcaster { socket: s.into(), target: SocketAddrV4::new(broadcast, port), local })
    }

    pub fn send(&self, kind: Kind, successor: Option<Ipv4Addr>) {
        let bytes = wire::encode(&self.local.message(kind, successor));
        if let Err(e) = self.socket.send_to(&bytes, self.target) {
            warn!("cannot broadcast {kind:?} to {}: {e}", self.target);
        }
    }

    /// Receives forever on a clone of the socket, turning messages for our group into events.
    pub fn spawn_receiver(&self, events: Sender<Input>) -> std::io::Result<()> {
        let socket = self.socket.try_clone()?;
        let local = self.local.clone();
        std::thread::Builder::new().name("fip-announce".into()).spawn(move || {
            let mut buf = [0u8; wire::MAX_MESSAGE_LEN];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                let Some(event) = to_event(&buf[..n], from, &local) else { continue };
                if events.send(Input::Machine(event)).is_err() {
                    return;
                }
            }
        })?;
        Ok(())
    }
}

/// Decodes a datagram into an event, dropping what is not for us or not believable.
fn to_event(bytes: &[u8], from: SocketAddr, local: &Local) -> Option<Event> {
    let m = match wire::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            local.reject();
            debug!("dropped datagram from {from}: {e}");
            return None;
        }
    };
    if m.vip != local.vip || m.boot == local.boot {
        return None;
    }
    if from.ip() != std::net::IpAddr::V4(m.node) {
        local.reject();
        debug!("dropped {:?} from {from} claiming to be {}", m.kind, m.node);
        return None;
    }
    match m.kind {
        Kind::Announce => Some(Event::Announce(peer_of(&m))),
        Kind::Resign => Some(Event::Resign { from: peer_of(&m), successor: m.successor }),
        Kind::Released => Some(Event::Released(m.node)),
        Kind::Heartbeat | Kind::Echo => None,
    }
}

/// Tells the group that `local` removed a stale copy of the address (no daemon needed).
pub fn send_released(local: &Local, port: u16, broadcast: Ipv4Addr) -> std::io::Result<()> {
    let socket = UdpSocket::bind((local.node, 0))?;
    socket.set_broadcast(true)?;
    let bytes = wire::encode(&local.message(Kind::Released, None));
    socket.send_to(&bytes, (broadcast, port))?;
    Ok(())
}
