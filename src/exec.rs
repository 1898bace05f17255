//! The one way floatip runs a program — an `exec` check, a notify hook, or `ifconfig`,
//! `ip` and `ping`: no shell, its own process group, output captured, always a timeout.
//!
//! When the program ends (or overruns), its whole process group is killed: a check or hook
//! leaves nothing running behind it. Output is read on the calling thread with `poll`, so
//! a background child that keeps the pipes open costs no thread, and the pipes are closed
//! when the run returns. Only the calling thread reaps the child, and on Linux the group is
//! killed before the child is reaped, so a group ID is signalled only while it is ours.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Output kept per stream; the rest is read and dropped.
const OUTPUT_CAP: usize = 4096;
/// After the program ended, how long output from its background children is still read
/// before the group is killed and the pipes closed.
const OUTPUT_GRACE: Duration = Duration::from_millis(20);
/// Longest pause between two looks at the child.
const MAX_PAUSE: Duration = Duration::from_millis(5);
/// The first wait for the exit once the output has closed.
const EXIT_PAUSE: Duration = Duration::from_micros(50);

/// Process groups of the programs running now, for [`kill_all`] at exit.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Overran its timeout; its process group was killed.
    TimedOut(Duration),
    NotStarted(String),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut(t) => write!(f, "timed out after {} ms, killed", t.as_millis()),
            Exit::NotStarted(why) => write!(f, "cannot start: {why}"),
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Ran {
    pub exit: Exit,
    /// stdout then stderr, each cut at a few KiB, trimmed.
    pub output: String,
    pub took: Duration,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// `exit 1: <last line of output>` for logs and status.
    pub fn summary(&self) -> String {
        match self.output.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => format!("{}: {}", self.exit, cut(line.trim(), 200)),
            None => self.exit.to_string(),
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// Runs `argv` (argv[0] an absolute path) with extra environment `env`. The run ends when
/// the program has exited and its output is closed (or [`OUTPUT_GRACE`] later), or at
/// `timeout`; either way its process group is killed then.
pub fn run(argv: &[String], env: &[(&str, String)], timeout: Duration) -> Ran {
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        return Ran {
            exit: Exit::NotStarted("empty command".into()),
            output: String::new(),
            took: Duration::ZERO,
        };
    };
    let spawned = {
        // The Command (and its copies of the pipe ends) is dropped right after spawning.
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut running = lock_running();
        let spawned = cmd.spawn();
        if let Ok(child) = &spawned {
            running.push(child.id());
        }
        spawned
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                exit: Exit::NotStarted(format!("{program}: {e}")),
                output: String::new(),
                took: started.elapsed(),
            }
        }
    };
    let mut output = Output::new([
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ]);
    let deadline = started + timeout;
    let mut exited_at: Option<Instant> = None;
    let mut pause = Duration::from_millis(1);
    let timed_out = loop {
        let now = Instant::now();
        if exited_at.is_none() {
            match has_exited(&mut child) {
                Ok(true) => exited_at = Some(now),
                Ok(false) => {}
                Err(e) => {
                    let _ = end_group(&mut child);
                    return Ran {
                        exit: Exit::NotStarted(format!("cannot wait for it: {e}")),
                        output: output.text(),
                        took: started.elapsed(),
                    };
                }
            }
        }
        let limit = match exited_at {
            Some(at) if output.closed() || now >= at + OUTPUT_GRACE => break false,
            Some(at) => at + OUTPUT_GRACE,
            None if now >= deadline => break true,
            None => deadline,
        };
        let was_open = !output.closed();
        output.read_for(pause.min(limit - now));
        // Output closes as the program exits: look for the exit again at once, not after
        // the pause grown while it ran (that cost every `ifconfig` a few ms).
        pause = if was_open && output.closed() {
            EXIT_PAUSE
        } else {
            (pause * 2).min(MAX_PAUSE)
        };
    };
    let status = end_group(&mut child);
    let ended = Instant::now();
    let exit = match status {
        _ if timed_out => Exit::TimedOut(timeout),
        Ok(status) => match (status.code(), status.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Code(-1),
        },
        Err(e) => Exit::NotStarted(format!("cannot wait for it: {e}")),
    };
    Ran {
        exit,
        output: output.text(),
        took: ended - started,
    }
}

/// True once the child has exited. Linux: without reaping it, so its PID (the group's ID)
/// stays ours until [`end_group`].
#[cfg(target_os = "linux")]
fn has_exited(child: &mut Child) -> std::io::Result<bool> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(child.id() as i32)), flags) {
        Ok(WaitStatus::StillAlive) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// True once the child has exited (reaped here: macOS has no dependable `waitid`; the
/// group's ID could be reused before [`end_group`] only after a PID wrap-around).
#[cfg(not(target_os = "linux"))]
fn has_exited(child: &mut Child) -> std::io::Result<bool> {
    Ok(child.try_wait()?.is_some())
}

/// Kills the child's whole process group, then reaps the child (under the lock, so
/// [`kill_all`] never signals a reaped group).
fn end_group(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    let pid = child.id();
    let mut running = lock_running();
    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    let status = child.wait();
    running.retain(|p| *p != pid);
    status
}

/// The child's stdout and stderr, read as they become ready, each kept up to [`OUTPUT_CAP`].
struct Output {
    pipes: Vec<Pipe>,
}

struct Pipe {
    file: File,
    kept: Vec<u8>,
    open: bool,
}

impl Output {
    fn new(fds: [Option<OwnedFd>; 2]) -> Output {
        let pipes = fds
            .into_iter()
            .flatten()
            .map(|fd| Pipe {
                file: File::from(fd),
                kept: Vec::new(),
                open: true,
            })
            .collect();
        Output { pipes }
    }

    fn closed(&self) -> bool {
        self.pipes.iter().all(|p| !p.open)
    }

    /// Waits up to `limit` for output, reading what is ready; sleeps when all pipes are closed.
    fn read_for(&mut self, limit: Duration) {
        let open: Vec<usize> = (0..self.pipes.len())
            .filter(|&i| self.pipes[i].open)
            .collect();
        if open.is_empty() {
            std::thread::sleep(limit);
            return;
        }
        let ms = u16::try_from(limit.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|&i| PollFd::new(self.pipes[i].file.as_fd(), PollFlags::POLLIN))
                .collect();
            if poll(&mut fds, PollTimeout::from(ms)).is_err() {
                return; // EINTR: the caller looks again
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        for (i, ready) in open.into_iter().zip(ready) {
            if ready {
                self.pipes[i].read_ready();
            }
        }
    }

    /// stdout then stderr, each trimmed, joined by a newline.
    fn text(&self) -> String {
        let parts: Vec<String> = self
            .pipes
            .iter()
            .map(|p| String::from_utf8_lossy(&p.kept).trim().to_string())
            .collect();
        parts
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Pipe {
    /// One read of a pipe `poll` reported ready (so it does not block).
    fn read_ready(&mut self) {
        let mut buf = [0u8; 4096];
        match self.file.read(&mut buf) {
            Ok(0) => self.open = false,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => self.open = false,
        }
    }
}

fn lock_running() -> std::sync::MutexGuard<'static, Vec<u32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills the process groups of every check and hook still running (the daemon is exiting).
pub fn kill_all() {
    for pid in lock_running().drain(..) {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exit_codes_and_output() {
        let ran = run(
            &argv(&["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]),
            &[],
            Duration::from_secs(5),
        );
        assert_eq!(ran.exit, Exit::Code(3));
        assert_eq!(ran.output, "out\nerr");
        assert_eq!(ran.summary(), "exit 3: err");
        assert!(!ran.success());
        assert!(run(&argv(&["/bin/true"]), &[], Duration::from_secs(5)).success());
    }

    #[test]
    fn environment_is_passed() {
        let ran = run(
            &argv(&["/bin/sh", "-c", "echo $FLOATIP_X"]),
            &[("FLOATIP_X", "hello".into())],
            Duration::from_secs(5),
        );
        assert_eq!(ran.output, "hello");
    }

    #[test]
    fn overrun_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("fip-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("late");
        // A background grandchild too: it must die with the group.
        let script = format!(
            "(sleep 1; touch {m}) & sleep 5; touch {m}",
            m = marker.display()
        );
        let t0 = Instant::now();
        let ran = run(
            &argv(&["/bin/sh", "-c", &script]),
            &[],
            Duration::from_millis(200),
        );
        assert_eq!(ran.exit, Exit::TimedOut(Duration::from_millis(200)));
        assert!(
            t0.elapsed() < Duration::from_millis(1000),
            "returned after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(1300));
        assert!(!marker.exists(), "a process of the group survived the kill");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(lock_running().is_empty());
    }

    #[test]
    fn missing_program_is_not_started() {
        let ran = run(&argv(&["/nonexistent/check"]), &[], Duration::from_secs(1));
        assert!(matches!(ran.exit, Exit::NotStarted(_)), "{:?}", ran.exit);
        assert!(
            ran.summary().contains("/nonexistent/check"),
            "{}",
            ran.summary()
        );
    }

    #[test]
    fn background_child_holding_the_pipe_does_not_block() {
        let t0 = Instant::now();
        let ran = run(
            &argv(&["/bin/sh", "-c", "echo hi; sleep 3 & exit 0"]),
            &[],
            Duration::from_secs(5),
        );
        assert!(ran.success());
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert_eq!(
            ran.output, "hi",
            "output read before the pipe closed is kept"
        );
    }

    #[test]
    fn a_clean_exit_kills_the_group_too() {
        let dir = std::env::temp_dir().join(format!("fip-exec-clean-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("late");
        // The background child does not hold the pipes: the run ends at once, then its group dies.
        let script = format!(
            "(sleep 0.3; touch {}) >/dev/null 2>&1 & exit 0",
            marker.display()
        );
        let ran = run(
            &argv(&["/bin/sh", "-c", &script]),
            &[],
            Duration::from_secs(5),
        );
        assert!(ran.success(), "{:?}", ran.exit);
        assert!(ran.took < Duration::from_millis(300), "{:?}", ran.took);
        std::thread::sleep(Duration::from_millis(600));
        assert!(!marker.exists(), "a background child outlived the run");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
