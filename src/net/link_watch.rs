//! The kernel tells us when the interface changes (carrier, addresses): a netlink
//! socket subscribed to link and address (IPv4 and IPv6) notifications, so nobody polls for them.
//! What changed is read again with [`super::Host::observe`]; this only says when.

use std::io;

/// Calls `changed` whenever a link or address notification names the interface
/// with index `ifindex` (or notifications were lost), on a thread of its own, until
/// `changed` returns false. Linux only: elsewhere `Ok(false)` and the caller polls.
pub fn spawn(ifindex: u32, changed: impl FnMut() -> bool + Send + 'static) -> io::Result<bool> {
    imp::spawn(ifindex, changed)
}

/// The interface index a netlink link or address message is about: both `ifinfomsg` and
/// `ifaddrmsg` carry it in bytes 4..8 after the 16-byte message header.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn ifindex_of(message: &[u8]) -> Option<u32> {
    let b = message.get(20..24)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether any message in a netlink datagram concerns `ifindex`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn concerns(mut datagram: &[u8], ifindex: u32) -> bool {
    // Each message: u32 length (header included), then the rest; aligned to 4 bytes.
    while datagram.len() >= 16 {
        let len = u32::from_ne_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len < 16 || len > datagram.len() {
            return true; // malformed: look rather than miss a change
        }
        if ifindex_of(&datagram[..len]) == Some(ifindex) {
            return true;
        }
        datagram = &datagram[((len + 3) & !3).min(datagram.len())..];
    }
    false
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::errno::Errno;
    use nix::sys::socket::{
        bind, recv, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
    };

    pub fn spawn(
        ifindex: u32,
        mut changed: impl FnMut() -> bool + Send + 'static,
    ) -> io::Result<bool> {
        let fd: OwnedFd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        let groups =
            (libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR) as u32;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        std::thread::Builder::new()
            .name("fip-link".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let relevant = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                        Ok(n) => super::concerns(&buf[..n], ifindex),
                        // Notifications were dropped: something may have changed.
                        Err(Errno::ENOBUFS) => true,
                        Err(Errno::EINTR) => false,
                        Err(e) => {
                            log::error!("interface notifications stopped: {e}; polling instead");
                            return;
                        }
                    };
                    if relevant && !changed() {
                        return;
                    }
                }
            })?;
        Ok(true)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn spawn(_: u32, _: impl FnMut() -> bool + Send + 'static) -> std::io::Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message of `len` bytes about `ifindex`.
    fn message(len: u32, ifindex: u32) -> Vec<u8> {
        let mut m = vec![0u8; len as usize];
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m[20..24].copy_from_slice(&ifindex.to_ne_bytes());
        m
    }

    #[test]
    fn only_messages_about_our_interface_count() {
        let mut two = message(32, 3);
        two.extend(message(32, 7));
        assert!(concerns(&two, 7));
        assert!(concerns(&two, 3));
        assert!(!concerns(&two, 5));
        assert!(!concerns(&[], 5));
    }

    #[test]
    fn a_malformed_datagram_is_looked_at() {
        let mut m = message(32, 3);
        m[0..4].copy_from_slice(&400u32.to_ne_bytes());
        assert!(concerns(&m, 5));
    }
}
