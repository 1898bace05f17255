//! A program started inside a lab namespace.
//!
//! `ip netns exec NS PROG` enters the namespace and then `exec`s PROG, so the
//! PID we get from `spawn` *is* the program's PID: signals reach it directly.
//! Each program leads its own process group, so that anything it starts
//! (`ping`, `ifconfig`, ...) can be killed with it.
//!
//! PID safety: a PID is only signalled while its process has not been
//! reaped by us; until then the kernel cannot hand the PID (or the process
//! group ID) to anyone else, even if the process is already a zombie.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// The shared part of a [`Proc`]; the lab keeps a weak reference so it can
/// kill what is still running when it is torn down.
pub(crate) struct ProcInner {
    name: String,
    pid: u32,
    log: PathBuf,
    /// `Some` while not yet reaped.
    child: Mutex<Option<Child>>,
    status: Mutex<Option<ExitStatus>>,
}

/// A running program in a lab namespace. Dropping it kills it (SIGKILL to
/// its process group) if it is still running.
pub struct Proc {
    inner: Arc<ProcInner>,
}

impl Proc {
    pub(crate) fn spawn(
        ip_bin: &Path,
        ns: &str,
        argv: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> (Proc, std::sync::Weak<ProcInner>) {
        assert!(!argv.is_empty(), "spawn needs a program to run");
        let out =
            File::create(&log).unwrap_or_else(|e| panic!("create log {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file handle");
        let mut cmd = Command::new(ip_bin);
        cmd.args(["netns", "exec", ns]).args(argv);
        for (k, v) in env {
            cmd.env(k, v);
        }
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?} in {ns}: {e}"));
        let inner = Arc::new(ProcInner {
            name: argv[0].to_string(),
            pid: child.id(),
            log,
            child: Mutex::new(Some(child)),
            status: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        (Proc { inner }, weak)
    }

    /// The program's PID (the same process that `ip netns exec` became).
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Path of the file that receives the program's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.inner.log
    }

    /// Everything the program has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.inner.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Sends `sig` to the program. Returns false (sending nothing) if it has
    /// already exited and been reaped.
    pub fn signal(&self, sig: Signal) -> bool {
        self.inner.signal(sig)
    }

    /// True while the program has not exited.
    pub fn is_running(&self) -> bool {
        self.inner.try_reap().is_none()
    }

    /// Waits up to `timeout` for the program to exit by itself.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        self.inner.wait_exit(timeout)
    }

    /// Polls the log until it contains `needle`, for at most `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A graceful stop: SIGTERM, wait up to 5 s, then SIGKILL.
    pub fn stop(&self) -> ExitStatus {
        self.inner.stop(Duration::from_secs(5))
    }

    /// SIGKILL (a crash), and reap it.
    pub fn kill9(&self) -> ExitStatus {
        self.inner.kill_now()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.inner.kill_now();
    }
}

impl ProcInner {
    fn signal(&self, sig: Signal) -> bool {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if child.is_none() {
            return false;
        }
        // Not reaped yet: the PID is still ours (possibly a zombie).
        kill(Pid::from_raw(self.pid as i32), sig).is_ok()
    }

    /// Reaps the program if it has exited; returns its status.
    /// Before reaping, kills whatever it left running in its process group.
    fn try_reap(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(st) = *self.status.lock().unwrap_or_else(|e| e.into_inner()) {
            return Some(st);
        }
        let c = child.as_mut()?;
        if !is_zombie(self.pid) {
            // Still running (or already reaped by someone else: try_wait tells).
            match c.try_wait() {
                Ok(None) => return None,
                Ok(Some(st)) => {
                    *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(st);
                    *child = None;
                    return Some(st);
                }
                Err(_) => return None,
            }
        }
        // Zombie: the group ID cannot be reused yet, so clean the group.
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        let st = c.wait().expect("wait for exited child");
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(st);
        *child = None;
        Some(st)
    }

    fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_reap() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn stop(&self, grace: Duration) -> ExitStatus {
        if let Some(st) = self.try_reap() {
            return st;
        }
        self.signal(Signal::SIGTERM);
        // A stopped (SIGSTOP) program cannot act on SIGTERM until continued.
        self.signal(Signal::SIGCONT);
        if let Some(st) = self.wait_exit(grace) {
            return st;
        }
        eprintln!(
            "lab: {} (pid {}) ignored SIGTERM for {grace:?}; SIGKILL",
            self.name, self.pid
        );
        self.kill_now()
    }

    pub(crate) fn kill_now(&self) -> ExitStatus {
        if let Some(st) = self.try_reap() {
            return st;
        }
        {
            let child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            if child.is_some() {
                let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
            }
        }
        // SIGKILL cannot be ignored; 10 s covers a process stuck in the kernel.
        self.wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{} (pid {}) survived SIGKILL for 10 s", self.name, self.pid))
    }
}

/// True if `/proc/<pid>/stat` says the process is a zombie (exited, not reaped).
fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Format: "pid (comm) S ..."; comm may contain spaces or parentheses.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .map(|s| s == "Z")
        .unwrap_or(false)
}
