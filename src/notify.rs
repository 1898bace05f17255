//! State-change hooks (`floating_ip.notify`): the executor queues one job per transition;
//! one worker thread runs them one at a time, in transition order, each bounded by the
//! timeout (killed if it overruns). Queuing never blocks, so a slow hook never delays a
//! take-over.
//!
//! For each transition, the hook for the new state (`master`, `backup`, `fault`) runs,
//! then `any` with the new state and the reason appended as arguments. Every hook gets
//! `FLOATIP_STATE`, `FLOATIP_PREVIOUS`, `FLOATIP_REASON`, `FLOATIP_VIP`, `FLOATIP_ADDRESSES`
//! (every floating address, space-separated), `FLOATIP_NODE`, `FLOATIP_INTERFACE` and `FLOATIP_SEQ` (1 for the first transition, then +1 each);
//! under an etcd election a new master's hooks also get `FLOATIP_FENCING_TOKEN` (the
//! key's revision, growing with every take-over) and `FLOATIP_LEASE_ID`.
//!
//! Coalescing: while hooks run, at most one transition per new state waits — a newer
//! change to the same state replaces the waiting one (and moves to the back). So a
//! flapping node queues at most three jobs, the last job run is always the current
//! state, and a gap in `FLOATIP_SEQ` shows that transitions were skipped.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use log::{info, warn};

use crate::config::Notify;
use crate::vocabulary::{Floating, Lease, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub seq: u64,
    pub from: Role,
    pub to: Role,
    pub reason: String,
    /// The election's lease when one decides and this node holds it.
    pub lease: Option<Lease>,
}

/// Who we are, for the hooks' environment.
#[derive(Debug, Clone)]
struct Context {
    hooks: Notify,
    vip: IpAddr,
    /// Every floating address of the group, space-separated.
    addresses: String,
    node: IpAddr,
    interface: String,
}

/// Jobs waiting for the worker, shared with it.
#[derive(Default)]
struct Queue {
    state: Mutex<Waiting>,
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Job>,
    /// The notifier is gone: the worker exits once the queue is empty.
    closed: bool,
}

pub struct Notifier {
    queue: Option<Arc<Queue>>,
    seq: u64,
}

impl Notifier {
    /// Starts the worker thread, unless no hook is configured.
    pub fn start(
        hooks: &Notify,
        vip: IpAddr,
        addresses: &[Floating],
        node: IpAddr,
        interface: &str,
    ) -> Notifier {
        if hooks.is_empty() {
            return Notifier {
                queue: None,
                seq: 0,
            };
        }
        let ctx = Context {
            hooks: hooks.clone(),
            vip,
            addresses: addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            node,
            interface: interface.to_string(),
        };
        let queue = Arc::new(Queue::default());
        let shared = queue.clone();
        let started = std::thread::Builder::new()
            .name("fip-notify".into())
            .spawn(move || {
                while let Some(job) = shared.next() {
                    for (what, argv) in hooks_for(&ctx.hooks, &job) {
                        run_hook(&ctx, &job, what, &argv);
                    }
                }
            });
        match started {
            Ok(_) => Notifier {
                queue: Some(queue),
                seq: 0,
            },
            Err(e) => {
                warn!("cannot start the notify thread: {e}; hooks will not run");
                Notifier {
                    queue: None,
                    seq: 0,
                }
            }
        }
    }

    /// Queues the hooks of one transition; returns at once.
    pub fn transition(&mut self, from: Role, to: Role, reason: &str, lease: Option<Lease>) {
        let Some(queue) = &self.queue else { return };
        self.seq += 1;
        let job = Job {
            seq: self.seq,
            from,
            to,
            reason: reason.to_string(),
            lease,
        };
        let mut waiting = queue.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = coalesce(&mut waiting.jobs, job) {
            info!(
                "notify: hooks of seq {} ({}) skipped: superseded by seq {} ({to}) before they ran",
                old.seq, old.to, self.seq
            );
        }
        queue.wake.notify_one();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(queue) = &self.queue {
            queue.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
            queue.wake.notify_one();
        }
    }
}

impl Queue {
    /// The next job, waiting for one; `None` once the notifier is gone and nothing waits.
    fn next(&self) -> Option<Job> {
        let mut waiting = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = waiting.jobs.pop_front() {
                return Some(job);
            }
            if waiting.closed {
                return None;
            }
            waiting = self.wake.wait(waiting).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Adds `job` to the waiting jobs, replacing a waiting job to the same state (returned).
pub fn coalesce(jobs: &mut VecDeque<Job>, job: Job) -> Option<Job> {
    let replaced = jobs
        .iter()
        .position(|j| j.to == job.to)
        .and_then(|i| jobs.remove(i));
    jobs.push_back(job);
    replaced
}

/// The hooks of `job`, in the order they run, with their full argv.
pub fn hooks_for(hooks: &Notify, job: &Job) -> Vec<(&'static str, Vec<String>)> {
    let own = match job.to {
        Role::Master => ("notify.master", &hooks.master),
        Role::Backup => ("notify.backup", &hooks.backup),
        Role::Fault => ("notify.fault", &hooks.fault),
    };
    let mut out = Vec::new();
    if let Some(argv) = own.1 {
        out.push((own.0, argv.clone()));
    }
    if let Some(argv) = &hooks.any {
        let mut argv = argv.clone();
        argv.push(job.to.to_string());
        argv.push(job.reason.clone());
        out.push(("notify.any", argv));
    }
    out
}

/// The environment every hook of `job` gets.
fn environment(ctx: &Context, job: &Job) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("FLOATIP_STATE", job.to.to_string()),
        ("FLOATIP_PREVIOUS", job.from.to_string()),
        ("FLOATIP_REASON", job.reason.clone()),
        ("FLOATIP_VIP", ctx.vip.to_string()),
        ("FLOATIP_ADDRESSES", ctx.addresses.clone()),
        ("FLOATIP_NODE", ctx.node.to_string()),
        ("FLOATIP_INTERFACE", ctx.interface.clone()),
        ("FLOATIP_SEQ", job.seq.to_string()),
    ];
    if let Some(lease) = job.lease {
        env.push(("FLOATIP_FENCING_TOKEN", lease.revision.to_string()));
        // Hexadecimal, as etcdctl and our log show lease ids.
        env.push(("FLOATIP_LEASE_ID", format!("{:x}", lease.id)));
    }
    env
}

fn run_hook(ctx: &Context, job: &Job, what: &str, argv: &[String]) {
    let ran = crate::exec::run(argv, &environment(ctx, job), ctx.hooks.timeout);
    let ms = |d: Duration| d.as_millis();
    if ran.success() {
        info!(
            "{what} (seq {}, {}) ran in {} ms",
            job.seq,
            job.to,
            ms(ran.took)
        );
        if !ran.output.is_empty() {
            log::debug!("{what} (seq {}) output: {}", job.seq, ran.output);
        }
    } else {
        warn!(
            "{what} (seq {}, {}) failed after {} ms: {}{}",
            job.seq,
            job.to,
            ms(ran.took),
            ran.exit,
            if ran.output.is_empty() {
                String::new()
            } else {
                format!("; output: {}", ran.output)
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    fn argv(a: &[&str]) -> Option<Vec<String>> {
        Some(a.iter().map(|s| s.to_string()).collect())
    }

    /// A notifier (VIP 192.0.2.234 and 2001:db8::234/64, node 192.0.2.11, eth0) whose `any` hook runs
    /// `sh -c "SCRIPT >> FILE"` with `args` appended. Returns it with the test's
    /// folder (to remove at the end) and FILE.
    fn appending_notifier(test: &str, script: &str, args: &[&str]) -> (Notifier, PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("fip-notify-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hooks.log");
        let line = format!("{script} >> {}", file.display());
        let mut command = vec!["/bin/sh", "-c", &line];
        command.extend(args);
        let hooks = Notify {
            any: argv(&command),
            ..Notify::default()
        };
        let vip = Ipv4Addr::new(192, 0, 2, 234);
        let vip6 = "2001:db8::234".parse().unwrap();
        let n = Notifier::start(
            &hooks,
            IpAddr::V4(vip),
            &[
                Floating::V4(
                    vip,
                    crate::vocabulary::Netmask::new(Ipv4Addr::new(255, 255, 255, 0)).unwrap(),
                ),
                Floating::V6(vip6, 64),
            ],
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)),
            "eth0",
        );
        (n, dir, file)
    }

    /// The file's text once `done` holds for it, or once `timeout` has passed.
    fn read_until(file: &Path, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let mut text = String::new();
        while Instant::now() < deadline && !done(&text) {
            std::thread::sleep(Duration::from_millis(20));
            text = std::fs::read_to_string(file).unwrap_or_default();
        }
        text
    }

    fn job(seq: u64, to: Role) -> Job {
        Job {
            seq,
            from: Role::Backup,
            to,
            reason: "holder 192.0.2.12 silent".into(),
            lease: None,
        }
    }

    #[test]
    fn the_state_hook_runs_then_any_with_state_and_reason() {
        let hooks = Notify {
            master: argv(&["/bin/m"]),
            fault: argv(&["/bin/f", "x"]),
            any: argv(&["/bin/a"]),
            ..Notify::default()
        };
        assert_eq!(
            hooks_for(&hooks, &job(1, Role::Master)),
            vec![
                ("notify.master", vec!["/bin/m".to_string()]),
                (
                    "notify.any",
                    vec![
                        "/bin/a".to_string(),
                        "MASTER".to_string(),
                        "holder 192.0.2.12 silent".to_string()
                    ]
                ),
            ]
        );
        assert_eq!(
            hooks_for(&hooks, &job(2, Role::Backup)).len(),
            1,
            "no backup hook: only any"
        );
        assert_eq!(
            hooks_for(&hooks, &job(3, Role::Fault))[0].1,
            vec!["/bin/f".to_string(), "x".to_string()]
        );
    }

    #[test]
    fn hooks_run_in_order_with_environment_and_do_not_block() {
        let (mut n, dir, file) = appending_notifier(
            "test",
            "sleep 0.1; echo $FLOATIP_SEQ $FLOATIP_PREVIOUS $FLOATIP_STATE $FLOATIP_VIP \"$1\" $FLOATIP_ADDRESSES",
            &["hook"],
        );
        let t0 = Instant::now();
        n.transition(Role::Backup, Role::Master, "no holder", None);
        n.transition(Role::Master, Role::Fault, "checks failing", None);
        n.transition(Role::Fault, Role::Backup, "checks pass", None);
        assert!(
            t0.elapsed() < Duration::from_millis(50),
            "queuing blocked for {:?}",
            t0.elapsed()
        );
        let text = read_until(&file, Duration::from_secs(5), |t| t.lines().count() >= 3);
        let _ = std::fs::remove_dir_all(&dir);
        // sh -c's $1 is the first appended argument: the new state.
        assert_eq!(
            text,
            [
                "1 BACKUP MASTER 192.0.2.234 MASTER",
                "2 MASTER FAULT 192.0.2.234 FAULT",
                "3 FAULT BACKUP 192.0.2.234 BACKUP",
            ]
            .map(|line| format!("{line} 192.0.2.234/24 2001:db8::234/64\n"))
            .concat()
        );
    }

    #[test]
    fn no_hooks_no_thread() {
        let mut n = Notifier::start(
            &Notify::default(),
            Ipv4Addr::LOCALHOST.into(),
            &[],
            Ipv4Addr::LOCALHOST.into(),
            "lo",
        );
        assert!(n.queue.is_none());
        n.transition(Role::Backup, Role::Master, "x", None);
        assert_eq!(n.seq, 0);
    }

    #[test]
    fn waiting_jobs_keep_the_latest_per_state_in_order() {
        let mut jobs = VecDeque::new();
        let roles = [
            Role::Master,
            Role::Backup,
            Role::Master,
            Role::Fault,
            Role::Backup,
            Role::Master,
        ];
        let mut replaced = Vec::new();
        for (i, to) in roles.into_iter().enumerate() {
            replaced.extend(coalesce(&mut jobs, job(i as u64 + 1, to)).map(|j| j.seq));
        }
        assert_eq!(replaced, [1, 2, 3]);
        let left: Vec<(u64, Role)> = jobs.iter().map(|j| (j.seq, j.to)).collect();
        assert_eq!(
            left,
            [(4, Role::Fault), (5, Role::Backup), (6, Role::Master)],
            "the last one is the current state"
        );
        for seq in 7..1000 {
            coalesce(
                &mut jobs,
                job(seq, [Role::Master, Role::Backup][seq as usize % 2]),
            );
        }
        assert_eq!(
            jobs.len(),
            3,
            "a flapping node never queues more than one job per state"
        );
    }

    #[test]
    fn a_flapping_node_runs_few_hooks_and_ends_on_its_current_state() {
        let (mut n, dir, file) =
            appending_notifier("flap", "sleep 0.2; echo $FLOATIP_SEQ $FLOATIP_STATE", &[]);
        for i in 0..500 {
            let (from, to) = if i % 2 == 0 {
                (Role::Backup, Role::Master)
            } else {
                (Role::Master, Role::Backup)
            };
            n.transition(from, to, "flap", None);
        }
        n.transition(Role::Backup, Role::Fault, "checks failing", None);
        read_until(&file, Duration::from_secs(10), |t| t.contains("FAULT"));
        std::thread::sleep(Duration::from_millis(500));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let runs: Vec<&str> = text.lines().collect();
        assert!(
            runs.len() <= 4,
            "501 transitions ran {} hooks: {runs:?}",
            runs.len()
        );
        assert_eq!(runs.last(), Some(&"501 FAULT"), "{runs:?}");
    }
}
