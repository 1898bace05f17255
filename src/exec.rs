//! Runs a configured program (an `exec` check or a notify hook): no shell, its own
//! process group, output captured, and the whole group killed if it overruns its timeout.
//!
//! Only the calling thread reaps the child, so a PID is signalled only while it is still
//! ours (running or a zombie), never after it could have been reused.

use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Output kept per stream; the rest is read and dropped.
const OUTPUT_CAP: usize = 4096;
/// How long to wait for output after the program ended (a background child may keep the pipe).
const OUTPUT_GRACE: Duration = Duration::from_millis(100);

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

/// Runs `argv` (argv[0] an absolute path) with extra environment `env`, killing its process
/// group after `timeout`.
pub fn run(argv: &[String], env: &[(&str, String)], timeout: Duration) -> Ran {
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        return Ran { exit: Exit::NotStarted("empty command".into()), output: String::new(), took: Duration::ZERO };
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
        Err(e) => return Ran { exit: Exit::NotStarted(format!("{program}: {e}")), output: String::new(), took: started.elapsed() },
    };
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let exit = wait(&mut child, started + timeout, timeout);
    let ended = Instant::now();
    let mut output = String::new();
    for (kept, done) in [stdout, stderr] {
        let left = (ended + OUTPUT_GRACE).saturating_duration_since(Instant::now());
        let _ = done.recv_timeout(left);
        let bytes = kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        if !text.is_empty() {
            if !output.is_empty() {
                output.push('\n');
            }
            output.push_str(text);
        }
    }
    Ran { exit, output, took: ended - started }
}

/// Polls the child until it exits or `deadline` passes (then kills its group and reaps it).
fn wait(child: &mut Child, deadline: Instant, timeout: Duration) -> Exit {
    let pid = child.id();
    let mut pause = Duration::from_millis(1);
    loop {
        {
            // Reap and forget under the lock, so kill_all never signals a reaped PID.
            let mut running = lock_running();
            match child.try_wait() {
                Ok(Some(status)) => {
                    running.retain(|p| *p != pid);
                    return match (status.code(), status.signal()) {
                        (Some(c), _) => Exit::Code(c),
                        (None, Some(s)) => Exit::Signal(s),
                        (None, None) => Exit::Code(-1),
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    running.retain(|p| *p != pid);
                    return Exit::NotStarted(format!("cannot wait for it: {e}"));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                // Not reaped yet: the group is still ours.
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let _ = child.wait();
                running.retain(|p| *p != pid);
                return Exit::TimedOut(timeout);
            }
            pause = pause.min(deadline - now);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Reads a pipe to its end on a thread, keeping the first [`OUTPUT_CAP`] bytes; the
/// receiver hears when the pipe is closed, the buffer has what was read so far.
fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        let buffer = kept.clone();
        let _ = std::thread::Builder::new().name("fip-exec-out".into()).spawn(move || {
            let mut buf = [0u8; 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut kept = buffer.lock().unwrap_or_else(|e| e.into_inner());
                        let room = OUTPUT_CAP.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
            let _ = tx.send(());
        });
    }
    (kept, rx)
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
        let ran = run(&argv(&["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]), &[], Duration::from_secs(5));
        assert_eq!(ran.exit, Exit::Code(3));
        assert_eq!(ran.output, "out\nerr");
        assert_eq!(ran.summary(), "exit 3: err");
        assert!(!ran.success());
        assert!(run(&argv(&["/bin/true"]), &[], Duration::from_secs(5)).success());
    }

    #[test]
    fn environment_is_passed() {
        let ran = run(&argv(&["/bin/sh", "-c", "echo $FLOATIP_X"]), &[("FLOATIP_X", "hello".into())], Duration::from_secs(5));
        assert_eq!(ran.output, "hello");
    }

    #[test]
    fn overrun_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("fip-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("late");
        // A background grandchild too: it must die with the group.
        let script = format!("(sleep 1; touch {m}) & sleep 5; touch {m}", m = marker.display());
        let t0 = Instant::now();
        let ran = run(&argv(&["/bin/sh", "-c", &script]), &[], Duration::from_millis(200));
        assert_eq!(ran.exit, Exit::TimedOut(Duration::from_millis(200)));
        assert!(t0.elapsed() < Duration::from_millis(1000), "returned after {:?}", t0.elapsed());
        std::thread::sleep(Duration::from_millis(1300));
        assert!(!marker.exists(), "a process of the group survived the kill");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(lock_running().is_empty());
    }

    #[test]
    fn missing_program_is_not_started() {
        let ran = run(&argv(&["/nonexistent/check"]), &[], Duration::from_secs(1));
        assert!(matches!(ran.exit, Exit::NotStarted(_)), "{:?}", ran.exit);
        assert!(ran.summary().contains("/nonexistent/check"), "{}", ran.summary());
    }

    #[test]
    fn background_child_holding_the_pipe_does_not_block() {
        let t0 = Instant::now();
        let ran = run(&argv(&["/bin/sh", "-c", "echo hi; sleep 3 & exit 0"]), &[], Duration::from_secs(5));
        assert!(ran.success());
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert_eq!(ran.output, "hi", "output read before the pipe closed is kept");
    }
}
