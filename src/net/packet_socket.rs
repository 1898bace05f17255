//! Raw `AF_PACKET` sockets on Linux, through socket2, for ARP and IPv6 neighbour
//! discovery. Frames carry their own Ethernet header, so only `bind` needs a link-layer
//! address; the socket sees the one EtherType it was opened for.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use crate::net::NetError;
use crate::vocabulary::Mac;

/// Longer frames are read truncated: what floatip looks at fits in their first bytes.
const READ_LEN: usize = 256;

/// Non-blocking: reads return `WouldBlock` when nothing is queued; waits go through `poll`.
///
/// Kept open for the daemon's lifetime: closing a packet socket waits for an RCU grace
/// period (tens of milliseconds), which must not sit on the take-over path.
pub struct PacketSocket {
    sock: Socket,
    iface: String,
}

pub fn socket_err<'a>(
    what: &'static str,
    iface: &'a str,
) -> impl FnOnce(io::Error) -> NetError + 'a {
    move |error| NetError::Socket {
        what,
        iface: iface.to_string(),
        error,
    }
}

/// The interface's link-layer address for `ethertype`, to bind a packet socket to.
fn link_addr(ifindex: i32, ethertype: u16) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: socket2 offers no constructor for `sockaddr_ll`; `view_as` asserts it fits
    // the zeroed storage (all-zero is a valid `sockaddr_ll`), and the length passed to
    // `SockAddr::new` is exactly that of the `sockaddr_ll` written, family AF_PACKET.
    unsafe {
        let ll = storage.view_as::<libc::sockaddr_ll>();
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = ethertype.to_be();
        ll.sll_ifindex = ifindex;
        SockAddr::new(
            storage,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    }
}

impl PacketSocket {
    /// A socket on `iface` that sends and receives frames of `ethertype`.
    pub fn open(iface: &str, ethertype: u16) -> Result<PacketSocket, NetError> {
        let ifindex = nix::net::if_::if_nametoindex(iface)
            .map_err(|e| socket_err("interface index", iface)(io::Error::from(e)))?;
        let ifindex = i32::try_from(ifindex).map_err(|_| {
            socket_err("interface index", iface)(io::Error::other("index out of range"))
        })?;
        let proto = Protocol::from(i32::from(ethertype.to_be()));
        let sock = Socket::new(Domain::PACKET, Type::RAW, Some(proto))
            .map_err(socket_err("open raw packet socket", iface))?;
        sock.bind(&link_addr(ifindex, ethertype))
            .map_err(socket_err("bind raw packet socket", iface))?;
        sock.set_nonblocking(true)
            .map_err(socket_err("set raw packet socket non-blocking", iface))?;
        Ok(PacketSocket {
            sock,
            iface: iface.to_string(),
        })
    }

    /// Lets only frames `filter` (a classic BPF program) accepts reach this socket, so a
    /// socket kept open for the daemon's lifetime does not copy the LAN's other traffic.
    pub fn keep_only(self, filter: &[socket2::SockFilter]) -> Result<PacketSocket, NetError> {
        self.sock
            .attach_filter(filter)
            .map_err(socket_err("filter raw packet socket", &self.iface))?;
        Ok(self)
    }

    /// Sends on the bound interface; the frame's own header names the destination.
    pub fn send(&self, what: &'static str, frame: &[u8]) -> Result<(), NetError> {
        self.sock
            .send(frame)
            .map(|_| ())
            .map_err(socket_err(what, &self.iface))
    }

    /// One queued frame into `buf`, or `None` when nothing is queued.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match (&self.sock).read(buf) {
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
        let mut buf = [0u8; READ_LEN];
        for _ in 0..100_000 {
            if self.recv(&mut buf)?.is_none() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Waits until `deadline` for a frame that `claimant` says shows another host.
    fn watch(
        &self,
        deadline: Instant,
        claimant: &impl Fn(&[u8]) -> Option<Mac>,
    ) -> io::Result<Option<Mac>> {
        let mut buf = [0u8; READ_LEN];
        // Bounded: each pass either returns or consumes one frame or time.
        for _ in 0..10_000 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms =
                PollTimeout::try_from(left.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, ms).map_err(io::Error::from)? == 0 {
                return Ok(None);
            }
            let Some(n) = self.recv(&mut buf)? else {
                continue;
            };
            if let Some(mac) = claimant(&buf[..n]) {
                return Ok(Some(mac));
            }
        }
        Ok(None)
    }

    /// A probe in two rounds over `wait`: `probes` sent, then a watch for a frame that
    /// `claimant` recognises as another host using an address; that host's MAC.
    pub fn probe(
        &self,
        probes: &[Vec<u8>],
        wait: Duration,
        claimant: impl Fn(&[u8]) -> Option<Mac>,
    ) -> Result<Option<Mac>, NetError> {
        let iface = &self.iface;
        // Frames queued since the last probe are history, not answers.
        self.drain()
            .map_err(socket_err("drain queued frames", iface))?;
        let start = Instant::now();
        for half in 1..=2u32 {
            for p in probes {
                self.send("send probe", p)?;
            }
            let deadline = start + wait * half / 2;
            let seen = self
                .watch(deadline, &claimant)
                .map_err(socket_err("read probe answers", iface))?;
            if seen.is_some() {
                return Ok(seen);
            }
        }
        Ok(None)
    }
}
