//! UDP broadcasts on the echo port: every node announces itself each interval, a master
//! that gives the address up says so at once, and `floatip release` reports a removed copy.
//!
//! A datagram is checked for everything that needs no memory first (sender on our LAN
//! segment, form, group, tag, sender = source); only then may it touch a table (the
//! sender's budget, the replay guard, the members heard). Forged and garbage datagrams
//! cost a fixed amount of CPU and change nothing, whatever source address they carry.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use log::{debug, warn};

use super::{peer_of, trouble_of, Local, Trouble};
use crate::vocabulary::{BootId, Event, Segment, ANNOUNCE_GROUP6};
use crate::wire::{self, Kind};

pub struct Broadcaster {
    socket: UdpSocket,
    /// Where announces leave from: `socket` itself for IPv4; for IPv6 a socket on the
    /// node's own address, since the kernel would pick a link-local source for the
    /// link-local group and the sender check wants the node address.
    sender: UdpSocket,
    target: SocketAddr,
    lan: Segment,
    local: Arc<Local>,
}

impl Broadcaster {
    /// Binds `port` on `interface` only (no other interface, a WAN side, reaches it); only
    /// hosts of the segment `lan` are heard. An IPv6 segment joins [`ANNOUNCE_GROUP6`] on
    /// `interface` alone.
    pub fn bind(
        local: Arc<Local>,
        port: u16,
        interface: &str,
        lan: Segment,
    ) -> std::io::Result<Broadcaster> {
        let s = super::bind_on_interface(local.node, socket2::Type::DGRAM, port, interface)?;
        ignore_own(&s, local.boot)?;
        let sender = match local.node {
            IpAddr::V4(_) => {
                s.set_broadcast(true)?;
                s.try_clone()?.into()
            }
            IpAddr::V6(node) => {
                let index = super::interface_index(interface)?;
                s.join_multicast_v6(&ANNOUNCE_GROUP6, index)?;
                let sender =
                    socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)?;
                sender.set_multicast_if_v6(index)?;
                sender.bind(&SocketAddr::from((node, 0)).into())?;
                sender.into()
            }
        };
        let target = SocketAddr::from((lan.announce_to(), port));
        Ok(Broadcaster {
            socket: s.into(),
            sender,
            target,
            lan,
            local,
        })
    }

    pub fn send(&self, kind: Kind, successor: Option<IpAddr>) {
        let (_, bytes) = self.local.seal(kind, successor, None);
        if let Err(e) = self.sender.send_to(&bytes, self.target) {
            warn!("cannot broadcast {kind:?} to {}: {e}", self.target);
        }
    }

    /// Our announce to `node` alone, on the same port (its receiver hears unicast too).
    pub fn announce_to(&self, node: IpAddr) {
        let (_, bytes) = self.local.seal(Kind::Announce, None, None);
        // Unreachable is what we expect while the path is down: the next try follows.
        if let Err(e) = self.sender.send_to(&bytes, (node, self.target.port())) {
            debug!("announce to {node}: {e}");
        }
    }

    /// Receives forever on a clone of the socket, turning messages for our group into events.
    /// The loop's input queue is bounded: when it is full the message is dropped (and
    /// counted), never waited for, so this thread keeps draining the socket.
    pub fn spawn_receiver<T: From<Event> + Send + 'static>(
        &self,
        events: SyncSender<T>,
    ) -> std::io::Result<()> {
        let socket = self.socket.try_clone()?;
        let (local, lan) = (self.local.clone(), self.lan.clone());
        std::thread::Builder::new()
            .name("fip-announce".into())
            .spawn(move || {
                let mut buf = [0u8; wire::MAX_MESSAGE_LEN];
                loop {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let Some(event) = to_event(&buf[..n], from, &lan, &local) else {
                        continue;
                    };
                    match events.try_send(event.into()) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            local.refuse(from.ip(), Trouble::Limit, || {
                                "the daemon's input queue is full".into()
                            });
                        }
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
            })?;
        Ok(())
    }
}

/// Our own broadcasts come back to us; the kernel drops them (by our boot id, bytes
/// 32..40 of the message) so that sending an announce does not also wake our receiver.
#[cfg(target_os = "linux")]
fn ignore_own(socket: &socket2::Socket, boot: BootId) -> std::io::Result<()> {
    use socket2::SockFilter;
    // Classic BPF on a UDP socket sees the datagram from its UDP header (8 bytes) on.
    const BOOT_AT: u32 = 8 + 32;
    let [hi, lo] = [(boot.0 >> 32) as u32, boot.0 as u32];
    socket.attach_filter(&[
        SockFilter::new(BPF_LD_LEN, 0, 0, 0),
        SockFilter::new(BPF_JGE, 0, 5, BOOT_AT + 8),
        SockFilter::new(BPF_LD_WORD, 0, 0, BOOT_AT),
        SockFilter::new(BPF_JEQ, 0, 3, hi),
        SockFilter::new(BPF_LD_WORD, 0, 0, BOOT_AT + 4),
        SockFilter::new(BPF_JEQ, 0, 1, lo),
        SockFilter::new(BPF_RET, 0, 0, 0),
        SockFilter::new(BPF_RET, 0, 0, u32::MAX),
    ])
}

#[cfg(not(target_os = "linux"))]
fn ignore_own(_: &socket2::Socket, _: BootId) -> std::io::Result<()> {
    Ok(())
}

// Classic BPF opcodes (linux/filter.h).
#[cfg(target_os = "linux")]
const BPF_LD_LEN: u16 = 0x80; // A = packet length
#[cfg(target_os = "linux")]
const BPF_LD_WORD: u16 = 0x20; // A = 32-bit word at k (absolute)
#[cfg(target_os = "linux")]
const BPF_JGE: u16 = 0x35; // A >= k ? jt : jf
#[cfg(target_os = "linux")]
const BPF_JEQ: u16 = 0x15; // A == k ? jt : jf
#[cfg(target_os = "linux")]
const BPF_RET: u16 = 0x06; // keep k bytes (0: drop)

/// Decodes a datagram into an event, dropping what is not for us or not believable.
fn to_event(bytes: &[u8], from: SocketAddr, lan: &Segment, local: &Local) -> Option<Event> {
    if !lan.contains(from.ip()) {
        local.refuse(from.ip(), Trouble::Malformed, || {
            format!("datagram from outside the LAN segment {lan}")
        });
        return None;
    }
    let decoded = match wire::decode(bytes) {
        Ok(d) => d,
        Err(e) => {
            local.refuse(from.ip(), Trouble::Malformed, || {
                format!("bad datagram: {e}")
            });
            return None;
        }
    };
    let m = decoded.message;
    // Another group sharing the port (its own address) is not an attack: ignore it quietly.
    if m.vip != local.vip {
        debug!(
            "ignored {:?} from {from} for another floating IP {}",
            m.kind, m.vip
        );
        return None;
    }
    if let Err(e) = wire::authenticate(bytes, &decoded, local.auth().as_ref()) {
        local.refuse(from.ip(), trouble_of(&e), || format!("{:?}: {e}", m.kind));
        return None;
    }
    if m.boot == local.boot {
        return None;
    }
    if from.ip() != m.node {
        local.refuse(from.ip(), Trouble::Malformed, || {
            format!("{:?} claiming to be {}", m.kind, m.node)
        });
        return None;
    }
    // Everything above needs no memory; what follows is charged to the (verified) sender.
    if !local.admit_datagram(m.node, m.boot) {
        local.refuse(from.ip(), Trouble::Limit, || {
            "datagram rate limit exceeded".into()
        });
        return None;
    }
    if let Err(e) = local.check_replay(&decoded) {
        local.refuse(from.ip(), Trouble::Replay, || {
            format!("{:?} from boot {} seq {}: {e}", m.kind, m.boot, m.seq)
        });
        return None;
    }
    local.heard_member(m.node);
    match m.kind {
        Kind::Announce => Some(Event::Announce(peer_of(&m))),
        Kind::Resign => Some(Event::Resign {
            from: peer_of(&m),
            successor: m.successor,
        }),
        Kind::Released => Some(Event::Released(m.node)),
        Kind::Heartbeat | Kind::Echo => None,
    }
}

/// Tells the group that `local` removed a stale copy of the address (no daemon needed);
/// `to` is the segment's broadcast address or IPv6 group, reached through `interface`.
pub fn send_released(local: &Local, port: u16, to: IpAddr, interface: &str) -> std::io::Result<()> {
    let socket = UdpSocket::bind((local.node, 0))?;
    match to {
        IpAddr::V4(_) => socket.set_broadcast(true)?,
        IpAddr::V6(_) => {
            let index = super::interface_index(interface)?;
            socket2::SockRef::from(&socket).set_multicast_if_v6(index)?;
        }
    }
    let (_, bytes) = local.seal(Kind::Released, None, None);
    socket.send_to(&bytes, (to, port))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Auth, Key};
    use crate::heartbeat::LocalView;
    use crate::vocabulary::{BootId, Netmask, Priority, Role};
    use crate::wire::{Message, Stamp};
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12));
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 234));

    fn lan() -> Segment {
        Segment::V4 {
            node: Ipv4Addr::new(192, 0, 2, 11),
            netmask: Netmask::default(),
        }
    }

    fn local(auth: Option<Auth>) -> Arc<Local> {
        local_as(VIP, ME, auth)
    }

    fn local_as(vip: IpAddr, me: IpAddr, auth: Option<Auth>) -> Arc<Local> {
        let view = LocalView {
            role: Role::Backup,
            priority: Priority(100),
            preempt_request: false,
        };
        Local::new(
            vip,
            me,
            [2, 0, 0, 0, 0, 11],
            BootId(1),
            view,
            auth,
            Duration::from_millis(100),
        )
    }

    fn announce(node: IpAddr, seq: u64) -> Message {
        Message {
            kind: Kind::Announce,
            role: Role::Master,
            priority: Priority(100),
            preempt_request: false,
            vip: VIP,
            node,
            mac: [2, 0, 0, 0, 0, 12],
            successor: None,
            boot: BootId(7),
            seq,
        }
    }

    fn from(ip: IpAddr) -> SocketAddr {
        SocketAddr::from((ip, 61111))
    }

    #[test]
    fn forged_datagrams_in_a_members_name_never_spend_its_budget() {
        let key = Auth::new(Key::new(vec![b'k'; 32]).unwrap());
        let wrong = Auth::new(Key::new(vec![b'x'; 32]).unwrap());
        let l = local(Some(key.clone()));
        let stamp = Stamp {
            time_ms: crate::heartbeat::wall_ms(),
            reply_to: None,
        };
        for seq in 0..10_000 {
            let forged = wire::encode_authenticated(&announce(PEER, seq), &stamp, &wrong);
            assert_eq!(to_event(&forged, from(PEER), &lan(), &l), None);
            assert_eq!(to_event(&[0xff; 40], from(PEER), &lan(), &l), None);
        }
        let real = wire::encode_authenticated(&announce(PEER, 1), &stamp, &key);
        assert!(
            matches!(to_event(&real, from(PEER), &lan(), &l), Some(Event::Announce(p)) if p.node == PEER)
        );
        // A replay of it is refused, and spends nothing either.
        assert_eq!(to_event(&real, from(PEER), &lan(), &l), None);
        let next = wire::encode_authenticated(&announce(PEER, 2), &stamp, &key);
        assert!(to_event(&next, from(PEER), &lan(), &l).is_some());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn our_own_datagrams_never_reach_the_receiver() {
        let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        rx.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        ignore_own(&rx, BootId(0x0102_0304_0506_0708)).unwrap();
        let rx: UdpSocket = rx.into();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let to = rx.local_addr().unwrap();
        let with_boot = |boot| {
            wire::encode(&Message {
                boot: BootId(boot),
                ..announce(PEER, 1)
            })
        };
        tx.send_to(&with_boot(0x0102_0304_0506_0708), to).unwrap();
        tx.send_to(&with_boot(0x0102_0304_0000_0000), to).unwrap();
        tx.send_to(&[0xff; 12], to).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &with_boot(0x0102_0304_0000_0000)[..]);
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(
            n, 12,
            "short garbage still reaches the checks (and the counters)"
        );
    }

    #[test]
    fn senders_off_the_lan_segment_are_not_heard() {
        let l = local(None);
        let off = IpAddr::from([198, 51, 100, 7]);
        assert_eq!(
            to_event(&wire::encode(&announce(off, 1)), from(off), &lan(), &l),
            None
        );
        assert!(to_event(&wire::encode(&announce(PEER, 1)), from(PEER), &lan(), &l).is_some());
    }

    #[test]
    fn ipv6_senders_are_heard_from_the_link_or_our_prefixes_in_their_own_name() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let vip = ip("2001:db8::234");
        let l = local_as(vip, ip("2001:db8::11"), None);
        let lan = Segment::V6 {
            prefixes: vec![("2001:db8::11".parse().unwrap(), 64)],
        };
        let said = |node: IpAddr| {
            wire::encode(&Message {
                vip,
                ..announce(node, 1)
            })
        };
        let peer = ip("2001:db8::12");
        assert!(matches!(
            to_event(&said(peer), from(peer), &lan, &l),
            Some(Event::Announce(p)) if p.node == peer
        ));
        let link_local = ip("fe80::12");
        assert!(to_event(&said(link_local), from(link_local), &lan, &l).is_some());
        let off = ip("2001:db8:1::12");
        assert_eq!(to_event(&said(off), from(off), &lan, &l), None);
        // On the link, but in another node's name.
        assert_eq!(to_event(&said(peer), from(link_local), &lan, &l), None);
        assert_eq!(to_event(&said(PEER), from(PEER), &lan, &l), None);
    }
}
