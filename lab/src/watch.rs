//! Watching a floating IP the way a client and an operator would.
//!
//! A [`Watch`] runs, until stopped:
//! - a UDP responder in every node namespace that answers each datagram with
//!   `"<node> <seq>"`;
//! - a client in the client namespace that sends a numbered datagram to the
//!   VIP every [`PROBE_INTERVAL`] and records who answered, and when;
//! - a sampler that records which nodes hold the VIP every
//!   [`SAMPLE_INTERVAL`].
//!
//! [`Watch::stop`] turns the recordings into a [`Report`] with [`analyze`], a
//! pure function (unit-tested below, no root needed).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::{has_ip, spawn_in_netns, NsWorker};

/// How often the client sends a probe to the VIP.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(2);
/// How often the holders of the VIP are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(5);
/// An answer this close to the end of the watch counts as "answering now".
pub const ANSWERING_AT_END: Duration = Duration::from_millis(100);

/// Which nodes held the VIP at one moment (`at` is time since watch start).
#[derive(Clone, Debug, PartialEq)]
pub struct HolderSample {
    pub at: Duration,
    pub holders: Vec<String>,
}

/// One answered probe: `node` answered probe `seq`, received at `at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub at: Duration,
    pub seq: u64,
    pub node: String,
}

/// What a watch saw. All times are measured from the start of the watch.
#[derive(Clone, Debug)]
pub struct Report {
    /// Longest time without an answer, from the first answer to the end of
    /// the watch (the silence after the last answer counts). If nothing ever
    /// answered, the whole watch.
    pub outage: Duration,
    /// Total sampled time with two or more holders.
    pub dual_holder: Duration,
    /// Total sampled time with no holder, counted from the first sample that
    /// had a holder (the start-up before any node took the VIP is not
    /// counted).
    pub no_holder: Duration,
    /// How many times the answering node changed between consecutive answers.
    pub flips: usize,
    /// Holders in the last sample (taken when the watch stopped).
    pub final_holders: Vec<String>,
    /// The node of the last answer, if it came within [`ANSWERING_AT_END`]
    /// of the end.
    pub answered_by_at_end: Option<String>,
    /// The answering nodes in order, consecutive repeats collapsed
    /// (e.g. `["n1", "n2"]`).
    pub answer_order: Vec<String>,
    /// The holder sets in order, consecutive repeats collapsed, with the time
    /// each one was first seen.
    pub holder_history: Vec<(Duration, Vec<String>)>,
    /// When the first answer came (the client's first ARP request for an
    /// address nobody holds yet is retried only after 1 s).
    pub first_answer: Option<Duration>,
    /// Number of holder samples and of answered probes.
    pub samples: usize,
    pub answers: usize,
    /// Probes sent.
    pub probes: u64,
    /// Length of the watch.
    pub duration: Duration,
    /// Marks set with [`Watch::mark`], in order.
    pub marks: Vec<(String, Duration)>,
    /// The raw recordings.
    pub answer_log: Vec<Answer>,
    pub holder_log: Vec<HolderSample>,
}

impl Report {
    /// Time of the mark named `label`; panics listing the marks if absent.
    pub fn mark(&self, label: &str) -> Duration {
        self.marks
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("no mark {label:?}; marks: {:?}", self.marks))
    }

    /// Longest time without an answer at or after the mark `label`: the gap
    /// that spans the mark counts from the mark, and the silence after the
    /// last answer counts up to the end of the watch. This is "how long
    /// clients waited after the fault was injected".
    pub fn outage_after(&self, label: &str) -> Duration {
        let from = self.mark(label);
        let times: Vec<Duration> = self.answer_log.iter().map(|a| a.at).collect();
        longest_gap_after(&times, from, self.duration)
    }

    /// Like [`Report::outage_after`] but only up to the mark `until`.
    pub fn outage_between(&self, from: &str, until: &str) -> Duration {
        let (a, b) = (self.mark(from), self.mark(until));
        let times: Vec<Duration> = self
            .answer_log
            .iter()
            .map(|x| x.at)
            .filter(|t| *t <= b)
            .collect();
        longest_gap_after(&times, a, b)
    }

    /// Total time with two or more holders at or after the mark `label`.
    pub fn dual_holder_after(&self, label: &str) -> Duration {
        holder_time_after(&self.holder_log, self.mark(label), self.duration, |n| {
            n >= 2
        })
    }

    /// Total time with no holder at or after the mark `label`.
    pub fn no_holder_after(&self, label: &str) -> Duration {
        holder_time_after(&self.holder_log, self.mark(label), self.duration, |n| {
            n == 0
        })
    }

    /// A few lines for test output.
    pub fn summary(&self) -> String {
        let history: Vec<String> = self
            .holder_history
            .iter()
            .map(|(t, h)| format!("{:.3}s {:?}", t.as_secs_f64(), h))
            .collect();
        format!(
            "watch {:.3}s: probes {} answers {} (first at {:?}) samples {}; outage {:?}; dual {:?}; none {:?}; flips {}; \
             answer order {:?}; holders {}; final {:?}; answering at end {:?}; marks {:?}",
            self.duration.as_secs_f64(),
            self.probes,
            self.answers,
            self.first_answer,
            self.samples,
            self.outage,
            self.dual_holder,
            self.no_holder,
            self.flips,
            self.answer_order,
            history.join(" -> "),
            self.final_holders,
            self.answered_by_at_end,
            self.marks,
        )
    }
}

/// Longest gap in `times` (sorted answer times) counted from `from` to `end`:
/// a gap spanning `from` starts at `from`, the tail to `end` counts.
fn longest_gap_after(times: &[Duration], from: Duration, end: Duration) -> Duration {
    let mut prev = from;
    let mut longest = Duration::ZERO;
    for &t in times.iter().filter(|t| **t > from) {
        longest = longest.max(t - prev);
        prev = t;
    }
    longest.max(end.saturating_sub(prev))
}

/// Time at or after `from` during which the holder count satisfied `pred`;
/// each sample stands for the time until the next one (the last until `end`).
fn holder_time_after(
    samples: &[HolderSample],
    from: Duration,
    end: Duration,
    pred: impl Fn(usize) -> bool,
) -> Duration {
    let mut total = Duration::ZERO;
    for (i, s) in samples.iter().enumerate() {
        let next = samples.get(i + 1).map(|n| n.at).unwrap_or(end).max(s.at);
        let start = s.at.max(from);
        if next > start && pred(s.holders.len()) {
            total += next - start;
        }
    }
    total
}

/// Turns recordings into a [`Report`]. `answers` and `samples` must be in
/// time order; `end` is the length of the watch.
pub fn analyze(
    samples: &[HolderSample],
    answers: &[Answer],
    marks: &[(String, Duration)],
    probes: u64,
    end: Duration,
) -> Report {
    let times: Vec<Duration> = answers.iter().map(|a| a.at).collect();
    let outage = match times.first() {
        Some(&first) => longest_gap_after(&times, first, end),
        None => end,
    };
    let dual_holder = holder_time_after(samples, Duration::ZERO, end, |n| n >= 2);
    let first_held = samples.iter().find(|s| !s.holders.is_empty()).map(|s| s.at);
    let no_holder = match first_held {
        Some(t) => holder_time_after(samples, t, end, |n| n == 0),
        None => Duration::ZERO,
    };
    let mut answer_order: Vec<String> = Vec::new();
    for a in answers {
        if answer_order.last() != Some(&a.node) {
            answer_order.push(a.node.clone());
        }
    }
    let mut holder_history: Vec<(Duration, Vec<String>)> = Vec::new();
    for s in samples {
        if holder_history.last().map(|(_, h)| h) != Some(&s.holders) {
            holder_history.push((s.at, s.holders.clone()));
        }
    }
    let answered_by_at_end = answers
        .last()
        .filter(|a| end.saturating_sub(a.at) <= ANSWERING_AT_END)
        .map(|a| a.node.clone());
    Report {
        outage,
        dual_holder,
        no_holder,
        flips: answer_order.len().saturating_sub(1),
        final_holders: samples
            .last()
            .map(|s| s.holders.clone())
            .unwrap_or_default(),
        answered_by_at_end,
        answer_order,
        holder_history,
        first_answer: answers.first().map(|a| a.at),
        samples: samples.len(),
        answers: answers.len(),
        probes,
        duration: end,
        marks: marks.to_vec(),
        answer_log: answers.to_vec(),
        holder_log: samples.to_vec(),
    }
}

/// Which of `nodes` hold `vip`, asking all their namespaces at once.
pub(crate) fn holders_of(workers: &[(String, Arc<NsWorker>)], vip: IpAddr) -> Vec<String> {
    let pending: Vec<_> = workers
        .iter()
        .map(|(n, w)| (n, w.submit(move || has_ip(vip))))
        .collect();
    pending
        .into_iter()
        .filter(|(n, rx)| match rx.recv() {
            Ok(Ok(held)) => held,
            Ok(Err(p)) => std::panic::resume_unwind(p),
            Err(_) => panic!("holder query in {n}: worker thread has died"),
        })
        .map(|(n, _)| n.clone())
        .collect()
}

/// A running watch; see the module docs. Dropping it stops its threads.
pub struct Watch {
    t0: Instant,
    stop: Arc<AtomicBool>,
    marks: Arc<Mutex<Vec<(String, Duration)>>>,
    last_answer: Arc<Mutex<Option<Answer>>>,
    workers: Vec<(String, Arc<NsWorker>)>,
    vip: IpAddr,
    responders: Vec<JoinHandle<()>>,
    client: Option<JoinHandle<(Vec<Answer>, u64)>>,
    sampler: Option<JoinHandle<Vec<HolderSample>>>,
}

impl Watch {
    pub(crate) fn start(
        vip: IpAddr,
        port: u16,
        nodes: &[(String, String)],
        client_ns: &str,
        workers: Vec<(String, Arc<NsWorker>)>,
    ) -> Watch {
        let t0 = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let mut responders = Vec::new();
        for (node, ns) in nodes {
            let (stop, ready, node) = (stop.clone(), ready_tx.clone(), node.clone());
            responders.push(spawn_in_netns(ns, "fip-lab-responder", move || {
                respond(&node, unspecified(vip), port, &stop, ready)
            }));
        }
        drop(ready_tx);
        let mut watch = Watch {
            t0,
            stop: stop.clone(),
            marks: Arc::new(Mutex::new(Vec::new())),
            last_answer: Arc::new(Mutex::new(None)),
            workers: workers.clone(),
            vip,
            responders,
            client: None,
            sampler: None,
        };
        for _ in nodes {
            match ready_rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("watch: {e}"),
                Err(e) => panic!("watch: responder did not start: {e}"),
            }
        }
        let (s, last) = (stop.clone(), watch.last_answer.clone());
        watch.client = Some(spawn_in_netns(client_ns, "fip-lab-client", move || {
            probe(vip, port, t0, &s, &last)
        }));
        let s = stop.clone();
        watch.sampler = Some(
            std::thread::Builder::new()
                .name("fip-lab-sampler".into())
                .spawn(move || sample(&workers, vip, t0, &s))
                .expect("spawn sampler thread"),
        );
        watch
    }

    /// Records the current time under `label` (e.g. "kill n1").
    pub fn mark(&self, label: &str) {
        self.marks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((label.to_string(), self.t0.elapsed()));
    }

    /// The most recent answer so far, if any.
    pub fn last_answer(&self) -> Option<Answer> {
        self.last_answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for an answer from `node` received after this
    /// call began.
    pub fn wait_answer_from(&self, node: &str, timeout: Duration) -> bool {
        let since = self.t0.elapsed();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self.last_answer() {
                if a.node == node && a.at >= since {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops all threads and analyses what was recorded.
    pub fn stop(mut self) -> Report {
        // The watch ends now, not after the threads have wound down: joining
        // the responders takes up to their 20 ms read timeout, which would
        // otherwise count as silence at the end (an outage floor of ~20 ms).
        let last = HolderSample {
            at: self.t0.elapsed(),
            holders: holders_of(&self.workers, self.vip),
        };
        let end = self.t0.elapsed();
        let (mut answers, probes, mut samples) = self.halt();
        answers.retain(|a| a.at <= end);
        samples.retain(|s| s.at < last.at);
        samples.push(last);
        let marks = self.marks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        analyze(&samples, &answers, &marks, probes, end)
    }

    fn halt(&mut self) -> (Vec<Answer>, u64, Vec<HolderSample>) {
        self.stop.store(true, Ordering::SeqCst);
        let (answers, probes) = self
            .client
            .take()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .unwrap_or_default();
        let samples = self
            .sampler
            .take()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .unwrap_or_default();
        for r in self.responders.drain(..) {
            let _ = r.join();
        }
        (answers, probes, samples)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.client.take() {
            let _ = h.join();
        }
        if let Some(h) = self.sampler.take() {
            let _ = h.join();
        }
        for r in self.responders.drain(..) {
            let _ = r.join();
        }
    }
}

/// The any-address of `ip`'s family: sockets of a watch of an IPv6 address are IPv6 ones.
fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Responder loop (runs inside a node namespace).
fn respond(
    node: &str,
    any: IpAddr,
    port: u16,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let sock = match UdpSocket::bind(SocketAddr::new(any, port)) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("bind UDP port {port} in node {node}: {e}")));
            return;
        }
    };
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("set responder timeout");
    let _ = ready.send(Ok(()));
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let seq = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = sock.send_to(format!("{node} {seq}").as_bytes(), from);
        }
    }
}

/// Client loop (runs inside the client namespace). Returns answers and the
/// number of probes sent.
fn probe(
    vip: IpAddr,
    port: u16,
    t0: Instant,
    stop: &AtomicBool,
    last: &Mutex<Option<Answer>>,
) -> (Vec<Answer>, u64) {
    let sock =
        UdpSocket::bind(SocketAddr::new(unspecified(vip), 0)).expect("bind probe socket in client");
    sock.set_nonblocking(true)
        .expect("non-blocking probe socket");
    let target = SocketAddr::new(vip, port);
    let mut answers: Vec<Answer> = Vec::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut seq: u64 = 0;
    let mut next_send = Instant::now();
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_send {
            seq += 1;
            // Errors (no ARP answer yet: EHOSTUNREACH) just mean "no answer".
            let _ = sock.send_to(seq.to_string().as_bytes(), target);
            next_send += PROBE_INTERVAL;
            if next_send < now {
                next_send = now + PROBE_INTERVAL;
            }
        }
        // SO_RCVTIMEO counts in jiffies (4-10 ms): far too coarse for a
        // 2 ms probe. ppoll() sleeps on a high-resolution timer.
        let wait = next_send.saturating_duration_since(Instant::now());
        if !readable_within(&sock, wait) {
            continue;
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let at = t0.elapsed();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let mut parts = text.split(' ');
            let (Some(node), Some(Ok(s))) = (parts.next(), parts.next().map(|s| s.parse::<u64>()))
            else {
                continue;
            };
            // A probe answered twice (two holders) counts once.
            if !seen.insert(s) {
                continue;
            }
            let a = Answer {
                at,
                seq: s,
                node: node.to_string(),
            };
            *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(a.clone());
            answers.push(a);
        }
    }
    (answers, seq)
}

/// Waits up to `wait` (high-resolution) for `sock` to become readable.
fn readable_within(sock: &UdpSocket, wait: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: wait.as_secs() as libc::time_t,
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

/// Sampler loop: holders of `vip` every [`SAMPLE_INTERVAL`].
fn sample(
    workers: &[(String, Arc<NsWorker>)],
    vip: IpAddr,
    t0: Instant,
    stop: &AtomicBool,
) -> Vec<HolderSample> {
    let mut samples = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let at = t0.elapsed();
        samples.push(HolderSample {
            at,
            holders: holders_of(workers, vip),
        });
        next += SAMPLE_INTERVAL;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn s(at: u64, holders: &[&str]) -> HolderSample {
        HolderSample {
            at: ms(at),
            holders: holders.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn a(at: u64, seq: u64, node: &str) -> Answer {
        Answer {
            at: ms(at),
            seq,
            node: node.to_string(),
        }
    }

    #[test]
    fn failover_report() {
        let samples = vec![
            s(0, &[]),
            s(5, &["n1"]),
            s(10, &["n1"]),
            s(15, &[]),
            s(20, &[]),
            s(25, &["n2"]),
            s(30, &["n1", "n2"]),
            s(35, &["n2"]),
            s(40, &["n2"]),
        ];
        let answers = vec![
            a(6, 3, "n1"),
            a(8, 4, "n1"),
            a(10, 5, "n1"),
            a(27, 13, "n2"),
            a(29, 14, "n2"),
            a(40, 20, "n2"),
        ];
        let marks = vec![("kill".to_string(), ms(12))];
        let r = analyze(&samples, &answers, &marks, 20, ms(41));
        assert_eq!(r.outage, ms(17)); // 10 -> 27
        assert_eq!(r.outage_after("kill"), ms(15)); // 12 -> 27
        assert_eq!(r.dual_holder, ms(5));
        assert_eq!(r.no_holder, ms(10)); // 15..25; 0..5 is start-up
        assert_eq!(r.flips, 1);
        assert_eq!(r.answer_order, vec!["n1", "n2"]);
        assert_eq!(r.final_holders, vec!["n2"]);
        assert_eq!(r.answered_by_at_end.as_deref(), Some("n2"));
        assert_eq!(r.samples, 9);
        assert_eq!(r.answers, 6);
        assert_eq!(r.probes, 20);
        let sets: Vec<Vec<String>> = r.holder_history.iter().map(|(_, h)| h.clone()).collect();
        assert_eq!(
            sets,
            vec![
                vec![],
                vec!["n1".to_string()],
                vec![],
                vec!["n2".to_string()],
                vec!["n1".into(), "n2".into()],
                vec!["n2".to_string()]
            ]
        );
        assert_eq!(r.dual_holder_after("kill"), ms(5));
        assert_eq!(r.no_holder_after("kill"), ms(10));
    }

    #[test]
    fn silence_at_the_end_is_an_outage() {
        let answers = vec![a(1, 1, "n1"), a(3, 2, "n1")];
        let marks = vec![("stop".to_string(), ms(2))];
        let r = analyze(&[s(0, &["n1"]), s(5, &[])], &answers, &marks, 100, ms(500));
        assert_eq!(r.outage, ms(497));
        assert_eq!(r.outage_after("stop"), ms(497));
        assert_eq!(r.answered_by_at_end, None);
        assert_eq!(r.no_holder, ms(495));
        assert_eq!(r.final_holders, Vec::<String>::new());
    }

    #[test]
    fn nothing_answered_is_a_full_outage() {
        let r = analyze(&[], &[], &[], 10, ms(100));
        assert_eq!(r.outage, ms(100));
        assert_eq!(r.flips, 0);
        assert_eq!(r.no_holder, Duration::ZERO);
        assert_eq!(r.dual_holder, Duration::ZERO);
        assert!(r.answer_order.is_empty());
        assert_eq!(r.answered_by_at_end, None);
    }

    #[test]
    fn flips_count_every_change_of_answering_node() {
        let answers = vec![
            a(1, 1, "n1"),
            a(2, 2, "n2"),
            a(3, 3, "n1"),
            a(4, 4, "n1"),
            a(5, 5, "n2"),
        ];
        let r = analyze(&[], &answers, &[], 5, ms(6));
        assert_eq!(r.flips, 3);
        assert_eq!(r.answer_order, vec!["n1", "n2", "n1", "n2"]);
        assert_eq!(r.outage, ms(1));
    }

    #[test]
    fn outage_between_marks_ignores_later_silence() {
        let answers = vec![a(0, 1, "n1"), a(10, 2, "n1"), a(30, 3, "n2")];
        let marks = vec![("a".to_string(), ms(5)), ("b".to_string(), ms(40))];
        let r = analyze(&[], &answers, &marks, 3, ms(1000));
        assert_eq!(r.outage_between("a", "b"), ms(20));
        assert_eq!(r.outage_after("a"), ms(970));
    }

    #[test]
    #[should_panic(expected = "no mark")]
    fn unknown_mark_panics_with_the_list() {
        analyze(&[], &[], &[], 0, ms(1)).outage_after("nope");
    }
}
