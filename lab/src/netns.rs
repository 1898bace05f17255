//! Running Rust code inside a network namespace without forking.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling *thread* only,
//! so every helper here runs the closure on a thread of its own that enters
//! the namespace first; the test's thread never changes namespace. Sockets
//! created on such a thread stay in that namespace for their whole life, and
//! `getifaddrs()` (a netlink dump) answers for that namespace.
//!
//! `/sys` and `/proc/self/net` are *not* switched by `setns` (they belong to
//! the mount namespace): read interface state through netlink
//! (`getifaddrs`), not through `/sys/class/net`. `/proc/sys/net/...` is
//! resolved at `open()` time from the opening thread's network namespace, so
//! sysctls can be written from a namespace thread.

use std::fs::File;
use std::net::IpAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use nix::sched::{setns, CloneFlags};

/// Moves the calling thread into the named namespace (`/run/netns/<ns>`).
fn enter(ns: &str) -> Result<(), String> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {path}: {e}"))
}

/// Starts a thread that enters namespace `ns` and then runs `f`.
/// The thread panics (with the reason) if the namespace cannot be entered.
pub fn spawn_in_netns<R, F>(ns: &str, name: &str, f: F) -> JoinHandle<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let ns = ns.to_string();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            if let Err(e) = enter(&ns) {
                panic!("cannot enter network namespace {ns}: {e}");
            }
            f()
        })
        .expect("spawn namespace thread")
}

/// Runs `f` on a fresh thread inside namespace `ns` and returns its result.
pub fn in_netns<R, F>(ns: &str, f: F) -> R
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    match spawn_in_netns(ns, "fip-lab-in-netns", f).join() {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A long-lived thread parked inside one namespace that runs closures on
/// request: far cheaper than a thread (or a fork) per query, which matters
/// for samplers that ask every few milliseconds.
pub struct NsWorker {
    ns: String,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl NsWorker {
    /// Starts the worker; fails if the namespace cannot be entered.
    pub fn start(ns: &str) -> Result<NsWorker, String> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let ns_owned = ns.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("fip-lab-{ns}"))
            .spawn(move || {
                let entered = enter(&ns_owned);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                // Ends when every sender is gone (the worker is dropped).
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .map_err(|e| format!("spawn worker thread for {ns}: {e}"))?;
        let entered = ready_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| format!("worker for {ns} did not start: {e}"))?;
        if let Err(e) = entered {
            let _ = thread.join();
            return Err(e);
        }
        Ok(NsWorker {
            ns: ns.to_string(),
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `f`; the answer arrives on the returned receiver. Lets a caller
    /// ask several namespaces at once and collect afterwards.
    /// A panic in `f` is caught (the worker lives on) and handed back as
    /// the `Err` payload.
    pub fn submit<R, F>(&self, f: F) -> mpsc::Receiver<std::thread::Result<R>>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        });
        self.jobs
            .as_ref()
            .expect("worker is running")
            .send(job)
            .unwrap_or_else(|_| panic!("worker thread for {} has died", self.ns));
        rx
    }

    /// Runs `f` inside the namespace and waits for its result; a panic in
    /// `f` is re-raised on the caller's thread.
    pub fn run<R, F>(&self, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        match self.submit(f).recv() {
            Ok(Ok(r)) => r,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("worker thread for namespace {} has died", self.ns),
        }
    }
}

impl Drop for NsWorker {
    fn drop(&mut self) {
        self.jobs.take(); // closes the channel: the thread leaves its loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// True if any interface of the current thread's namespace carries `ip`.
pub fn has_ip(ip: IpAddr) -> bool {
    match getifaddrs() {
        Ok(addrs) => addrs.into_iter().any(|a| {
            let Some(s) = a.address.as_ref() else {
                return false;
            };
            let v4 = s.as_sockaddr_in().map(|s| IpAddr::V4(s.ip()));
            let v6 = s.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip()));
            v4.or(v6) == Some(ip)
        }),
        Err(e) => panic!("getifaddrs: {e}"),
    }
}

/// Flags of interface `ifname` in the current thread's namespace.
pub fn link_flags(ifname: &str) -> Option<InterfaceFlags> {
    let addrs = getifaddrs().expect("getifaddrs");
    addrs
        .into_iter()
        .find(|a| a.interface_name == ifname)
        .map(|a| a.flags)
}

/// True if `ifname` is administratively up and has carrier (`RUNNING`).
pub fn link_running(ifname: &str) -> bool {
    link_flags(ifname)
        .map(|f| f.contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING))
        .unwrap_or(false)
}

/// Sets `ifname` in the current thread's namespace administratively up or
/// down (`SIOCSIFFLAGS`, what `ip link set` does): in-process, so the change
/// is in effect when this returns, without an `ip` to start first (which can
/// take hundreds of milliseconds on a loaded machine).
pub fn set_link(ifname: &str, up: bool) -> Result<(), String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let fail = |what: &str| format!("{what} {ifname}: {}", std::io::Error::last_os_error());
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(format!("interface name {ifname:?} too long"));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain socket(2); the descriptor is owned (and closed) below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(fail("socket for"));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid ifreq naming the interface; the kernel reads
    // the name and writes the flags member of the union.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(fail("read flags of"));
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let wanted = if up {
        flags | libc::IFF_UP as libc::c_short
    } else {
        flags & !(libc::IFF_UP as libc::c_short)
    };
    req.ifr_ifru.ifru_flags = wanted;
    // SAFETY: as above; the kernel reads the name and the flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(fail("set flags of"));
    }
    Ok(())
}

/// The MAC address of `ifname` in the current thread's namespace, lowercase.
pub fn link_mac(ifname: &str) -> Option<String> {
    let addrs = getifaddrs().expect("getifaddrs");
    for a in addrs {
        if a.interface_name != ifname {
            continue;
        }
        if let Some(mac) = a
            .address
            .as_ref()
            .and_then(|s| s.as_link_addr())
            .and_then(|l| l.addr())
        {
            let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
            return Some(parts.join(":"));
        }
    }
    None
}

/// Writes a sysctl of the current thread's network namespace, e.g.
/// `net/ipv6/conf/all/disable_ipv6`.
pub fn write_sysctl(key: &str, value: &str) -> Result<(), String> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|e| format!("write {path}: {e}"))
}
