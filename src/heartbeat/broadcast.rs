//! UDP broadcasts on the echo port: every node announces itself each interval, a master
//! that gives the address up says so at once, and `floatip release` reports a removed copy.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use log::{debug, warn};

use super::{peer_of, trouble_of, Local, Trouble};
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
        let (_, bytes) = self.local.seal(kind, successor, None);
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
                if !local.admit_datagram(from.ip()) {
                    local.refuse(from.ip(), Trouble::Limit, || "datagram rate limit exceeded".into());
                    continue;
                }
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
    let decoded = match wire::decode(bytes) {
        Ok(d) => d,
        Err(e) => {
            local.refuse(from.ip(), Trouble::Malformed, || format!("bad datagram: {e}"));
            return None;
        }
    };
    let m = decoded.message;
    // Another group sharing the port (its own address) is not an attack: ignore it quietly.
    if m.vip != local.vip {
        debug!("ignored {:?} from {from} for another floating IP {}", m.kind, m.vip);
        return None;
    }
    if let Err(e) = wire::authenticate(bytes, &decoded, local.auth.as_ref()) {
        local.refuse(from.ip(), trouble_of(&e), || format!("{:?}: {e}", m.kind));
        return None;
    }
    if m.boot == local.boot {
        return None;
    }
    if from.ip() != std::net::IpAddr::V4(m.node) {
        local.refuse(from.ip(), Trouble::Malformed, || format!("{:?} claiming to be {}", m.kind, m.node));
        return None;
    }
    if let Err(e) = local.check_replay(&decoded) {
        local.refuse(from.ip(), Trouble::Auth, || format!("{:?} from boot {:016x} seq {}: {e}", m.kind, m.boot, m.seq));
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
    let (_, bytes) = local.seal(Kind::Released, None, None);
    socket.send_to(&bytes, (broadcast, port))?;
    Ok(())
}
