//! Raw `AF_PACKET` ARP on Linux, through socket2. The frames carry their own Ethernet
//! header, so only `bind` needs a link-layer address.

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use super::{claimant, garp_reply, garp_request, probe, ETHERTYPE_ARP, FRAME_LEN, GARP_REPEATS};
use crate::net::NetError;
use crate::vocabulary::{Mac, ProbeOutcome};

/// Non-blocking: reads return `WouldBlock` when nothing is queued; waits go through `poll`.
struct PacketSocket(Socket);

fn socket_err<'a>(what: &'static str, iface: &'a str) -> impl FnOnce(io::Error) -> NetError + 'a {
    move |error| NetError::Socket {
        what,
        iface: iface.to_string(),
        error,
    }
}

/// The interface's link-layer address for ARP, to bind a packet socket to.
fn link_addr(ifindex: i32) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: socket2 offers no constructor for `sockaddr_ll`; `view_as` asserts it fits
    // the zeroed storage (all-zero is a valid `sockaddr_ll`), and the length passed to
    // `SockAddr::new` is exactly that of the `sockaddr_ll` written, family AF_PACKET.
    unsafe {
        let ll = storage.view_as::<libc::sockaddr_ll>();
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = ETHERTYPE_ARP.to_be();
        ll.sll_ifindex = ifindex;
        SockAddr::new(
            storage,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    }
}

impl PacketSocket {
    fn open(iface: &str) -> Result<PacketSocket, NetError> {
        let ifindex = nix::net::if_::if_nametoindex(iface)
            .map_err(|e| socket_err("interface index", iface)(io::Error::from(e)))?;
        let ifindex = i32::try_from(ifindex).map_err(|_| {
            socket_err("interface index", iface)(io::Error::other("index out of range"))
        })?;
        let proto = Protocol::from(i32::from(ETHERTYPE_ARP.to_be()));
        let sock = Socket::new(Domain::PACKET, Type::RAW, Some(proto))
            .map_err(socket_err("open raw ARP socket", iface))?;
        sock.bind(&link_addr(ifindex))
            .map_err(socket_err("bind raw ARP socket", iface))?;
        sock.set_nonblocking(true)
            .map_err(socket_err("set raw ARP socket non-blocking", iface))?;
        Ok(PacketSocket(sock))
    }

    /// Sends on the bound interface; the frame's own header names the destination.
    fn send(&self, frame: &[u8; FRAME_LEN]) -> io::Result<()> {
        self.0.send(frame).map(|_| ())
    }

    /// One queued frame into `buf`, or `None` when nothing is queued.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match (&self.0).read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Discards every frame already queued.
    fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 128];
        for _ in 0..100_000 {
            if self.recv(&mut buf)?.is_none() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Waits until `deadline` for a frame showing another host using `vip`.
    fn watch(&self, vip: Ipv4Addr, ours: Mac, deadline: Instant) -> io::Result<Option<Mac>> {
        let mut buf = [0u8; 128];
        // Bounded: each pass either returns or consumes one frame or time.
        for _ in 0..10_000 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms =
                PollTimeout::try_from(left.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, ms).map_err(io::Error::from)? == 0 {
                return Ok(None);
            }
            let Some(n) = self.recv(&mut buf)? else {
                continue;
            };
            if let Some(mac) = claimant(&buf[..n], vip, ours) {
                return Ok(Some(mac));
            }
        }
        Ok(None)
    }
}

/// A raw ARP socket kept open for the daemon's lifetime: closing a packet socket waits
/// for an RCU grace period (tens of milliseconds), which must not sit on the take-over path.
pub struct Arp {
    sock: PacketSocket,
    iface: String,
}

impl Arp {
    pub fn open(iface: &str) -> Result<Arp, NetError> {
        Ok(Arp {
            sock: PacketSocket::open(iface)?,
            iface: iface.to_string(),
        })
    }

    /// Announces that `vip` is now at `mac`: request and reply forms, a few times.
    pub fn announce(&self, mac: Mac, vip: Ipv4Addr) -> Result<(), NetError> {
        for _ in 0..GARP_REPEATS {
            for f in [garp_request(mac, vip), garp_reply(mac, vip)] {
                self.sock
                    .send(&f)
                    .map_err(socket_err("send gratuitous ARP", &self.iface))?;
            }
        }
        Ok(())
    }

    /// RFC 5227-style probe: two probes over `wait`; any host claiming `vip` makes it in use.
    pub fn probe(&self, mac: Mac, vip: Ipv4Addr, wait: Duration) -> Result<ProbeOutcome, NetError> {
        let iface = &self.iface;
        // Frames queued since the last probe are history, not answers.
        self.sock.drain().map_err(socket_err("drain ARP", iface))?;
        let start = Instant::now();
        for half in 1..=2u32 {
            self.sock
                .send(&probe(mac, vip))
                .map_err(socket_err("send ARP probe", iface))?;
            let deadline = start + wait * half / 2;
            if let Some(other) = self
                .sock
                .watch(vip, mac, deadline)
                .map_err(socket_err("read ARP", iface))?
            {
                return Ok(ProbeOutcome::InUse(other));
            }
        }
        Ok(ProbeOutcome::Free)
    }
}
