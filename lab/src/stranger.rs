//! A keyless stranger on the lab's LAN: a node that runs no floatip and attacks the
//! heartbeat port from outside the group. It can
//!
//! - [`Stranger::flood`]: send UDP datagrams with any (forged) source address, at a given
//!   rate, for a bounded time and count (a raw IPv4 socket, the header written by us);
//! - [`Stranger::capture`]: record the datagrams that reach its port (the bridge floods the
//!   group's broadcasts to every port), bounded in time and count;
//! - [`Stranger::replay`]: send a captured datagram again, from its original source;
//! - [`Stranger::hold_connections`]: hold TCP connections open from many addresses of its
//!   own ([`Stranger::take_addresses`]), trickling bytes to keep them busy.
//!
//! Every socket is made inside the stranger's namespace, so nothing leaves the lab.
//!
//! ```ignore
//! let Some(lab) = Lab::new("t", &["n1", "n2", "evil"]) else { return };
//! let evil = Stranger::new(&lab, "evil");
//! let cap = evil.capture(61111, Duration::from_secs(10), 1000);
//! // ... the group talks ...
//! let seen = cap.stop();
//! let flood = evil.flood(Flood { from: lab.ip("n2"), to: lab.ip("n1"), port: 61111,
//!     per_second: 3000, duration: Duration::from_secs(3), max: 20_000 }, noise);
//! evil.replay(&seen[0], lab.ip("n2"));
//! let sent = flood.join().unwrap();
//! ```

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::Lab;

/// A datagram the stranger received: who sent it (as the IP header says) and its payload.
#[derive(Debug, Clone)]
pub struct Captured {
    pub from: SocketAddrV4,
    pub at: Instant,
    pub bytes: Vec<u8>,
}

/// One flood: datagrams to `to:port` claiming to come from `from`, `per_second` of them,
/// for at most `duration` and at most `max` datagrams.
#[derive(Debug, Clone, Copy)]
pub struct Flood {
    pub from: Ipv4Addr,
    pub to: Ipv4Addr,
    pub port: u16,
    pub per_second: u32,
    pub duration: Duration,
    pub max: u64,
}

/// Slow connections: from each of `sources`, `per_source` connections to `to:port`, each
/// sent the next byte of `trickle` (cycling) every `every`, reopened when closed, for
/// `duration`.
#[derive(Debug, Clone)]
pub struct Hold {
    pub to: Ipv4Addr,
    pub port: u16,
    pub sources: Vec<Ipv4Addr>,
    pub per_source: usize,
    pub every: Duration,
    pub trickle: Vec<u8>,
    pub duration: Duration,
}

/// What [`Stranger::hold_connections`] achieved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Held {
    /// Connections opened in all (reopenings included).
    pub opened: u64,
    /// The most connections open at once.
    pub most_at_once: usize,
}

/// A capture running in the background; [`Capture::stop`] returns what it saw.
pub struct Capture {
    on: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Captured>>,
}

impl Capture {
    pub fn stop(self) -> Vec<Captured> {
        self.on.store(false, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The attacker; see the module docs.
pub struct Stranger {
    raw: Arc<Socket>,
    /// The stranger's own address: its captures leave out what it sent itself.
    own: Ipv4Addr,
    node: String,
    ns: String,
}

/// Datagrams sent between two looks at the clock.
const BATCH: u32 = 16;

impl Stranger {
    /// The stranger is lab node `node` (which must run no floatip).
    pub fn new(lab: &Lab, node: &str) -> Stranger {
        let raw = lab.in_ns(node, || {
            // IPPROTO_RAW: we write the IP header ourselves (IP_HDRINCL), source address included.
            let s = Socket::new(
                Domain::IPV4,
                Type::RAW,
                Some(Protocol::from(libc::IPPROTO_RAW)),
            )
            .unwrap_or_else(|e| panic!("stranger: raw socket: {e}"));
            s.set_broadcast(true)
                .unwrap_or_else(|e| panic!("stranger: SO_BROADCAST: {e}"));
            s
        });
        Stranger {
            raw: Arc::new(raw),
            own: lab.ip(node),
            node: node.to_string(),
            ns: lab.ns(node),
        }
    }

    /// Adds `n` more addresses (192.0.2.`first`, ...) to the stranger's eth0 and returns them.
    pub fn take_addresses(&self, lab: &Lab, first: u8, n: u8) -> Vec<Ipv4Addr> {
        (first..first.saturating_add(n))
            .map(|last| {
                let ip = Ipv4Addr::new(192, 0, 2, last);
                lab.sh_ok(
                    &self.node,
                    &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
                );
                ip
            })
            .collect()
    }

    /// Holds slow connections in the background (see [`Hold`]).
    pub fn hold_connections(&self, h: Hold) -> JoinHandle<Held> {
        crate::netns::spawn_in_netns(&self.ns, "fip-stranger-hold", move || {
            let start = Instant::now();
            let slots = h.sources.len() * h.per_source;
            let mut open: Vec<Option<(TcpStream, usize)>> = (0..slots).map(|_| None).collect();
            let mut held = Held::default();
            while start.elapsed() < h.duration {
                for (i, slot) in open.iter_mut().enumerate() {
                    if slot.is_none() {
                        *slot = dial(h.sources[i / h.per_source], SocketAddrV4::new(h.to, h.port))
                            .map(|s| (s, 0));
                        held.opened += u64::from(slot.is_some());
                    }
                    if let Some((s, at)) = slot {
                        let byte = h
                            .trickle
                            .get(*at % h.trickle.len().max(1))
                            .copied()
                            .unwrap_or(0);
                        if s.write_all(&[byte]).is_ok() {
                            *at += 1;
                        } else {
                            *slot = None;
                        }
                    }
                }
                held.most_at_once = held.most_at_once.max(open.iter().flatten().count());
                std::thread::sleep(h.every.min(h.duration));
            }
            held
        })
    }

    /// Sends one UDP datagram with a forged source `from` (port `port`, like a member).
    pub fn send_as(
        &self,
        from: Ipv4Addr,
        to: Ipv4Addr,
        port: u16,
        payload: &[u8],
    ) -> std::io::Result<()> {
        send_raw(
            &self.raw,
            SocketAddrV4::new(from, port),
            SocketAddrV4::new(to, port),
            payload,
        )
    }

    /// Replays `c` to `to` (an address or the broadcast), from its original source.
    pub fn replay(&self, c: &Captured, to: Ipv4Addr) -> std::io::Result<()> {
        send_raw(
            &self.raw,
            c.from,
            SocketAddrV4::new(to, c.from.port()),
            &c.bytes,
        )
    }

    /// Floods in the background; the thread returns how many datagrams went out.
    /// `payload(i)` makes the i-th datagram.
    pub fn flood(
        &self,
        f: Flood,
        mut payload: impl FnMut(u64) -> Vec<u8> + Send + 'static,
    ) -> JoinHandle<u64> {
        let raw = self.raw.clone();
        std::thread::spawn(move || {
            let (start, mut sent) = (Instant::now(), 0u64);
            let (from, to) = (
                SocketAddrV4::new(f.from, f.port),
                SocketAddrV4::new(f.to, f.port),
            );
            while sent < f.max && start.elapsed() < f.duration {
                for _ in 0..BATCH {
                    if send_raw(&raw, from, to, &payload(sent)).is_ok() {
                        sent += 1;
                    }
                }
                // Keep to the rate: wait until the schedule has caught up with what was sent.
                let due = Duration::from_secs_f64(sent as f64 / f64::from(f.per_second.max(1)));
                if let Some(ahead) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(ahead.min(f.duration));
                }
            }
            sent
        })
    }

    /// Records datagrams arriving at `port` (other than the stranger's own) until stopped,
    /// for at most `duration` and `max` datagrams.
    pub fn capture(&self, port: u16, duration: Duration, max: usize) -> Capture {
        let (on, own) = (Arc::new(AtomicBool::new(true)), self.own);
        let running = on.clone();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = crate::netns::spawn_in_netns(&self.ns, "fip-stranger-capture", move || {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("stranger: capture socket");
            s.set_reuse_address(true).expect("SO_REUSEADDR");
            s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())
                .expect("stranger: bind capture port");
            let sock = UdpSocket::from(s);
            sock.set_read_timeout(Some(Duration::from_millis(20)))
                .expect("read timeout");
            let _ = ready_tx.send(());
            let (start, mut got, mut buf) = (Instant::now(), Vec::new(), [0u8; 2048]);
            while running.load(Ordering::Relaxed) && start.elapsed() < duration && got.len() < max {
                if let Ok((n, SocketAddr::V4(from))) = sock.recv_from(&mut buf) {
                    if *from.ip() != own {
                        got.push(Captured {
                            from,
                            at: Instant::now(),
                            bytes: buf[..n].to_vec(),
                        });
                    }
                }
            }
            got
        });
        // Listening before the caller goes on, so nothing sent afterwards is missed.
        let _ = ready.recv_timeout(Duration::from_secs(5));
        Capture { on, thread }
    }
}

/// A connection from `source` (any port), or `None` if it is not accepted quickly.
fn dial(source: Ipv4Addr, to: SocketAddrV4) -> Option<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    s.bind(&SocketAddr::from((source, 0)).into()).ok()?;
    s.connect_timeout(&SocketAddr::V4(to).into(), Duration::from_millis(50))
        .ok()?;
    s.set_tcp_nodelay(true).ok()?;
    Some(TcpStream::from(s))
}

/// Random bytes of varied length (1..=300): the simplest garbage payload for [`Stranger::flood`].
pub fn noise(i: u64) -> Vec<u8> {
    noise_of(i, 1 + (i % 300) as usize)
}

/// `n` pseudo-random bytes from `seed` (xorshift: cheap and reproducible).
pub fn noise_of(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One IPv4 + UDP datagram, header written by hand (the kernel fills the IP checksum and
/// id; a UDP checksum of 0 means none, which IPv4 allows).
fn send_raw(
    raw: &Socket,
    from: SocketAddrV4,
    to: SocketAddrV4,
    payload: &[u8],
) -> std::io::Result<()> {
    let total = 20 + 8 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&from.ip().octets());
    p.extend_from_slice(&to.ip().octets());
    let udp_len = (8 + payload.len()) as u16;
    for v in [from.port(), to.port(), udp_len, 0] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p.extend_from_slice(payload);
    raw.send_to(&p, &SockAddr::from(to)).map(|_| ())
}
