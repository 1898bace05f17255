//! Adding and removing an IPv6 address on Linux straight through the kernel's rtnetlink:
//! one request, one answer, no `ip` process to start (milliseconds on a busy host, on both
//! sides of a hand-over). The kernel's answer says what happened, so nobody looks again.

use std::fmt;
use std::net::Ipv6Addr;

use super::NetError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
}

/// One IPv6 address change on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub iface: String,
    pub ip: Ipv6Addr,
    /// The prefix length: the kernel removes an address only with the one it carries.
    pub prefix: u8,
}

/// In iproute2's words, for logs and errors: `netlink: add 2001:db8::234/64 dev eth0 nodad`.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let Request {
            ip, prefix, iface, ..
        } = self;
        match self.op {
            Op::Add => write!(f, "netlink: add {ip}/{prefix} dev {iface} nodad"),
            Op::Remove => write!(f, "netlink: del {ip}/{prefix} dev {iface}"),
        }
    }
}

impl Request {
    pub fn new(op: Op, iface: &str, ip: Ipv6Addr, prefix: u8) -> Request {
        Request {
            op,
            iface: iface.to_string(),
            ip,
            prefix,
        }
    }

    /// Sends it and waits for the kernel's answer: true if the kernel made the change,
    /// false if there was none to make (the address was already there, or already gone).
    pub fn send(&self) -> Result<bool, NetError> {
        imp::send(self).map_err(|detail| NetError::Command {
            command: self.to_string(),
            detail,
        })
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::mem::size_of;
    use std::net::Ipv6Addr;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use nix::errno::Errno;
    use nix::net::if_::if_nametoindex;
    use nix::sys::socket::{
        recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
        SockProtocol, SockType,
    };
    use nix::sys::time::{TimeVal, TimeValLike};

    use super::{Op, Request};

    /// The kernel answers in microseconds; this bounds a kernel stuck on its routing lock,
    /// so the daemon's loop fails the action instead of stalling.
    const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

    const HEADER: usize = size_of::<libc::nlmsghdr>();
    const ATTRIBUTE: usize = size_of::<libc::rtattr>() + 16;
    const MESSAGE: usize = HEADER + size_of::<libc::ifaddrmsg>() + 2 * ATTRIBUTE;

    /// Numbers each request, so an answer is matched to the request it answers.
    static SEQUENCE: AtomicU32 = AtomicU32::new(1);

    pub fn send(request: &Request) -> Result<bool, String> {
        let fail = |e: Errno| e.to_string();
        let ifindex = if_nametoindex(request.iface.as_str()).map_err(fail)?;
        // A socket of its own: no other request's answer, no notification, arrives on it.
        let fd: OwnedFd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(fail)?;
        let timeout = TimeVal::milliseconds(ANSWER_TIMEOUT.as_millis() as i64);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(fail)?;
        ask_for_reasons(&fd);
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let message = message(request.op, seq, ifindex, request.ip, request.prefix);
        let kernel = NetlinkAddr::new(0, 0);
        sendto(fd.as_raw_fd(), &message, &kernel, MsgFlags::empty()).map_err(fail)?;
        let mut buf = [0u8; 1024];
        // The answer is the first message on this socket; a few reads bound a stray one.
        for _ in 0..4 {
            let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    return Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()))
                }
                Err(e) => return Err(fail(e)),
            };
            if let Some(answer) = answer(&buf[..n], seq) {
                return outcome(request.op, answer).map_err(|r| r.to_string());
            }
        }
        Err("no answer from the kernel".into())
    }

    /// Asks the kernel to say why it refuses a request (extended acks, Linux 4.12); an
    /// older kernel that cannot still gives the errno, so a failure here is no error.
    fn ask_for_reasons(fd: &OwnedFd) {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a pointer to an int of the length given.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_EXT_ACK,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    /// The kernel refused a request: its errno and, where it says one, its reason.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) struct Refused {
        pub errno: Errno,
        pub reason: Option<String>,
    }

    impl From<Errno> for Refused {
        fn from(errno: Errno) -> Refused {
            Refused {
                errno,
                reason: None,
            }
        }
    }

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            match &self.reason {
                Some(reason) => write!(f, "{} (the kernel: {reason})", self.errno),
                None => write!(f, "{}", self.errno),
            }
        }
    }

    /// What the kernel's answer means for `op`: an address already there (add) or already
    /// gone (remove) is what was asked for, with nothing done.
    pub(super) fn outcome(op: Op, answer: Result<(), Refused>) -> Result<bool, Refused> {
        match (op, answer) {
            (_, Ok(())) => Ok(true),
            (Op::Add, Err(r)) if r.errno == Errno::EEXIST => Ok(false),
            (Op::Remove, Err(r)) if r.errno == Errno::EADDRNOTAVAIL => Ok(false),
            (_, Err(r)) => Err(r),
        }
    }

    /// The request: the netlink header, the address header (IPv6, prefix length, `nodad`
    /// on an add, the interface), then the address as both local and peer, as `ip` sends
    /// it. An add must create the address, never change one that is there.
    pub(super) fn message(op: Op, seq: u32, ifindex: u32, ip: Ipv6Addr, prefix: u8) -> Vec<u8> {
        let ack = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let (kind, flags, address_flags) = match op {
            Op::Add => (
                libc::RTM_NEWADDR,
                ack | (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
                libc::IFA_F_NODAD as u8,
            ),
            Op::Remove => (libc::RTM_DELADDR, ack, 0),
        };
        let mut m = Vec::with_capacity(MESSAGE);
        m.extend((MESSAGE as u32).to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(flags.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(0u32.to_ne_bytes()); // to the kernel
        let scope = libc::RT_SCOPE_UNIVERSE;
        m.extend([libc::AF_INET6 as u8, prefix, address_flags, scope]);
        m.extend(ifindex.to_ne_bytes());
        for attribute in [libc::IFA_LOCAL, libc::IFA_ADDRESS] {
            m.extend((ATTRIBUTE as u16).to_ne_bytes());
            m.extend(attribute.to_ne_bytes());
            m.extend(ip.octets());
        }
        m
    }

    /// The kernel's answer to request `seq` in `datagram`, if it holds one: its error
    /// message, whose code is 0 for done or a negative errno, with the kernel's reason.
    pub(super) fn answer(mut datagram: &[u8], seq: u32) -> Option<Result<(), Refused>> {
        let field = |m: &[u8], at: usize| -> Option<[u8; 4]> { m.get(at..at + 4)?.try_into().ok() };
        while datagram.len() >= HEADER {
            let len = usize::try_from(u32::from_ne_bytes(field(datagram, 0)?)).ok()?;
            if len < HEADER || len > datagram.len() {
                return Some(Err(Errno::EBADMSG.into()));
            }
            let kind = u16::from_ne_bytes([datagram[4], datagram[5]]);
            let ours = u32::from_ne_bytes(field(datagram, 8)?) == seq;
            if kind == libc::NLMSG_ERROR as u16 && ours {
                let Some(code) = field(datagram, HEADER).filter(|_| len >= HEADER + 4) else {
                    return Some(Err(Errno::EBADMSG.into()));
                };
                return Some(match i32::from_ne_bytes(code) {
                    0 => Ok(()),
                    code => Err(Refused {
                        errno: Errno::from_raw(code.saturating_neg()),
                        reason: reason(&datagram[..len]),
                    }),
                });
            }
            datagram = &datagram[((len + 3) & !3).min(datagram.len())..];
        }
        None
    }

    /// The reason in an error message's extended ack: after the code and the request
    /// (its header alone when the kernel capped it), attributes, of which type 1
    /// (`NLMSGERR_ATTR_MSG`) is a NUL-terminated text.
    fn reason(message: &[u8]) -> Option<String> {
        const NLMSGERR_ATTR_MSG: u16 = 1;
        let flags = u16::from_ne_bytes([message[6], message[7]]);
        if flags & libc::NLM_F_ACK_TLVS as u16 == 0 {
            return None;
        }
        let request = message.get(HEADER + 4..HEADER + 8)?;
        let request_len = u32::from_ne_bytes(request.try_into().ok()?) as usize;
        let echoed = if flags & libc::NLM_F_CAPPED as u16 != 0 {
            HEADER
        } else {
            request_len
        };
        let mut attributes = message.get(HEADER + 4 + ((echoed + 3) & !3)..)?;
        while attributes.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([attributes[0], attributes[1]]));
            let kind = u16::from_ne_bytes([attributes[2], attributes[3]]);
            let value = attributes.get(4..len)?;
            if kind == NLMSGERR_ATTR_MSG {
                let text = value.split(|&b| b == 0).next()?;
                return Some(String::from_utf8_lossy(text).into_owned());
            }
            attributes = attributes.get(((len + 3) & !3).max(4)..)?;
        }
        None
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn send(_: &super::Request) -> Result<bool, String> {
        Err("rtnetlink is Linux's".into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::imp::{answer, message, outcome, Refused};
    use super::*;
    use nix::errno::Errno;

    const IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x234);

    #[test]
    fn requests_read_like_ip_commands() {
        assert_eq!(
            Request::new(Op::Add, "eth0", IP, 64).to_string(),
            "netlink: add 2001:db8::234/64 dev eth0 nodad"
        );
        assert_eq!(
            Request::new(Op::Remove, "eth0", IP, 64).to_string(),
            "netlink: del 2001:db8::234/64 dev eth0"
        );
    }

    /// Byte for byte what `ip -6 addr add 2001:db8::234/64 dev <index 7> nodad` sends.
    #[test]
    #[cfg(target_endian = "little")]
    fn add_request_bytes() {
        let address = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x34,
        ];
        let mut want = vec![
            64, 0, 0, 0, // length
            20, 0, // RTM_NEWADDR
            0x05, 0x06, // request, ack, exclusive, create
            42, 0, 0, 0, // sequence
            0, 0, 0, 0, // to the kernel
            10, 64, 0x02, 0, // AF_INET6, /64, nodad, universe scope
            7, 0, 0, 0, // interface index
        ];
        for kind in [2, 1] {
            want.extend([20, 0, kind, 0]); // IFA_LOCAL, then IFA_ADDRESS
            want.extend(address);
        }
        assert_eq!(message(Op::Add, 42, 7, IP, 64), want);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn remove_request_names_the_prefix_without_flags() {
        let m = message(Op::Remove, 42, 7, IP, 48);
        assert_eq!(m.len(), 64);
        assert_eq!(
            m[4..8],
            [21, 0, 0x05, 0],
            "RTM_DELADDR, request and ack only"
        );
        assert_eq!(
            m[16..20],
            [10, 48, 0, 0],
            "the prefix the copy carries, no flags"
        );
        assert_eq!(m[..16], message(Op::Remove, 42, 7, IP, 64)[..16]);
    }

    /// The kernel's error message: header, code, then (at least) the request's header.
    fn error_message(seq: u32, code: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(36u32.to_ne_bytes());
        m.extend((libc::NLMSG_ERROR as u16).to_ne_bytes());
        m.extend(0u16.to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(1234u32.to_ne_bytes());
        m.extend(code.to_ne_bytes());
        m.extend(message(Op::Add, seq, 7, IP, 64)[..16].iter());
        m
    }

    #[test]
    fn the_answer_is_the_error_message_of_our_request() {
        assert_eq!(answer(&error_message(9, 0), 9), Some(Ok(())));
        assert_eq!(
            answer(&error_message(9, -libc::EACCES), 9),
            Some(Err(Errno::EACCES.into()))
        );
        assert_eq!(answer(&error_message(8, 0), 9), None, "another request's");
        let mut two = error_message(8, -libc::EEXIST);
        two.extend(error_message(9, -libc::EEXIST));
        assert_eq!(answer(&two, 9), Some(Err(Errno::EEXIST.into())));
        assert_eq!(answer(&[], 9), None);
    }

    #[test]
    fn already_there_or_already_gone_is_nothing_to_do() {
        fn refused<T>(e: Errno) -> Result<T, Refused> {
            Err(Refused::from(e))
        }
        assert_eq!(outcome(Op::Add, Ok(())), Ok(true));
        assert_eq!(outcome(Op::Remove, Ok(())), Ok(true));
        assert_eq!(outcome(Op::Add, refused(Errno::EEXIST)), Ok(false));
        assert_eq!(
            outcome(Op::Remove, refused(Errno::EADDRNOTAVAIL)),
            Ok(false)
        );
        assert_eq!(
            outcome(Op::Remove, refused(Errno::EEXIST)),
            refused(Errno::EEXIST)
        );
        assert_eq!(
            outcome(Op::Add, refused(Errno::EACCES)),
            refused(Errno::EACCES)
        );
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        let mut long = error_message(9, 0);
        long[0..4].copy_from_slice(&400u32.to_ne_bytes());
        assert_eq!(answer(&long, 9), Some(Err(Errno::EBADMSG.into())));
        let mut short = error_message(9, 0);
        short[0..4].copy_from_slice(&18u32.to_ne_bytes());
        assert_eq!(
            answer(&short, 9),
            Some(Err(Errno::EBADMSG.into())),
            "no code"
        );
    }

    /// An extended ack as Linux sends it: the request capped to its header, then the
    /// reason as attribute 1 (NUL-terminated, padded to 4 bytes).
    #[test]
    fn the_kernels_reason_is_read_from_an_extended_ack() {
        let mut m = error_message(9, -libc::EACCES);
        let flags = (libc::NLM_F_CAPPED | libc::NLM_F_ACK_TLVS) as u16;
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
        m[20..24].copy_from_slice(&64u32.to_ne_bytes()); // the request's full length
        let text = b"IPv6 is disabled on this device\0";
        m.extend((4 + text.len() as u16).to_ne_bytes());
        m.extend(1u16.to_ne_bytes());
        m.extend(text);
        m.resize((m.len() + 3) & !3, 0);
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        let Some(Err(refused)) = answer(&m, 9) else {
            panic!("a refusal")
        };
        assert_eq!(
            refused.to_string(),
            "EACCES: Permission denied (the kernel: IPv6 is disabled on this device)"
        );
        // Without the flag the same bytes carry no reason.
        m[6..8].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(answer(&m, 9), Some(Err(Errno::EACCES.into())));
    }
}
