//! Raw `AF_PACKET` ARP on Linux. The only unsafe code in floatip: building a
//! `sockaddr_ll`, which neither nix nor socket2 constructs safely.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{claimant, garp_reply, garp_request, probe, ETHERTYPE_ARP, FRAME_LEN, GARP_REPEATS};
use crate::net::NetError;
use crate::vocabulary::{Mac, ProbeOutcome};

struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

fn socket_err<'a>(what: &'static str, iface: &'a str) -> impl FnOnce(io::Error) -> NetError + 'a {
    move |error| NetError::Socket {
        what,
        iface: iface.to_string(),
        error,
    }
}

impl PacketSocket {
    fn open(iface: &str) -> Result<PacketSocket, NetError> {
        let ifindex = nix::net::if_::if_nametoindex(iface)
            .map_err(|e| socket_err("interface index", iface)(io::Error::from(e)))?
            as i32;
        let proto = i32::from(ETHERTYPE_ARP.to_be());
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if raw < 0 {
            return Err(socket_err("open raw ARP socket", iface)(
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = PacketSocket { fd, ifindex };
        let addr = sock.link_addr(&[0; 6]);
        // SAFETY: `addr` is a fully initialised sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(socket_err("bind raw ARP socket", iface)(
                io::Error::last_os_error(),
            ));
        }
        Ok(sock)
    }

    fn link_addr(&self, dst: &Mac) -> libc::sockaddr_ll {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        a.sll_family = libc::AF_PACKET as u16;
        a.sll_protocol = ETHERTYPE_ARP.to_be();
        a.sll_ifindex = self.ifindex;
        a.sll_halen = 6;
        a.sll_addr[..6].copy_from_slice(dst);
        a
    }

    fn send(&self, frame: &[u8; FRAME_LEN]) -> io::Result<()> {
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[0..6]);
        let addr = self.link_addr(&dst);
        // SAFETY: the buffer and address are valid for the lengths passed.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Discards every frame already queued.
    fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 128];
        for _ in 0..100_000 {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(())
                } else {
                    Err(e)
                };
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
            let mut fds = [PollFd::new(
                std::os::fd::AsFd::as_fd(&self.fd),
                PollFlags::POLLIN,
            )];
            if poll(&mut fds, ms).map_err(io::Error::from)? == 0 {
                return Ok(None);
            }
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if let Some(mac) = claimant(&buf[..n as usize], vip, ours) {
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
