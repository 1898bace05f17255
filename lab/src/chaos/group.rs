//! The three floatip daemons of a chaos run: their configs, the processes
//! now running, and what the faults do to them (all by the lab's own
//! [`Proc`] handles, so only PIDs we started are ever signalled).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::invariants::{Life, Usage};
use crate::floatip::{path_str, start, timed_config, write_config, Timing};
use crate::{Lab, Proc};

/// A key for the group (its text is the key, at least 32 bytes).
const KEY: &str = "chaos-run-group-key-not-a-secret-0123456789";
/// The least time between two starts of a daemon that keeps exiting.
const RESTART_GAP: Duration = Duration::from_secs(1);
/// How long a daemon may take to exit after SIGTERM (it releases first).
const STOP_GRACE: Duration = Duration::from_secs(5);

struct Member {
    name: String,
    cfg: PathBuf,
    proc: Option<Proc>,
    /// When its daemon was last started.
    started: Instant,
}

pub struct Group<'a> {
    lab: &'a Lab,
    bin: String,
    members: Vec<Member>,
    lives: Vec<Life>,
}

impl<'a> Group<'a> {
    /// Writes the key and one config per member (the first at priority
    /// 150, the others at the default) and starts their daemons.
    pub fn start(lab: &'a Lab, bin: &str, timing: Timing, members: &[&str]) -> Group<'a> {
        let key = lab.write_file("chaos.key", &format!("{KEY}\n"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", key.display()));
        let auth = format!("auth: {{key_file: {}}}", key.display());
        let members = members
            .iter()
            .enumerate()
            .map(|(i, &node)| {
                let mut extra = vec![auth.as_str()];
                if i == 0 {
                    extra.push("priority: 150");
                }
                let cfg = write_config(lab, node, &timed_config(timing, &extra));
                Member {
                    name: node.to_string(),
                    proc: Some(start(lab, bin, node, &cfg)),
                    cfg,
                    started: Instant::now(),
                }
            })
            .collect();
        Group {
            lab,
            bin: bin.to_string(),
            members,
            lives: Vec::new(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    fn member(&mut self, node: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.name == node)
            .unwrap_or_else(|| panic!("chaos: no member {node:?}"))
    }

    /// Starts `node`'s daemon again (after a stop or an unexpected exit).
    pub fn restart(&mut self, node: &str) {
        let (lab, bin) = (self.lab, self.bin.clone());
        let m = self.member(node);
        m.proc = Some(start(lab, &bin, node, &m.cfg));
        m.started = Instant::now();
    }

    /// SIGTERM, then waits for the exit (the daemon releases first).
    pub fn terminate(&mut self, node: &str) -> Result<(), String> {
        let p = self.take(node)?;
        p.signal(Signal::SIGTERM);
        match p.wait_exit(STOP_GRACE) {
            Some(st) if st.success() => Ok(()),
            Some(st) => Err(format!("{node} exited with {st} on SIGTERM")),
            None => {
                p.kill9();
                Err(format!(
                    "{node} did not exit within {STOP_GRACE:?} of SIGTERM"
                ))
            }
        }
    }

    /// SIGKILL, then `floatip release` as systemd's ExecStopPost would.
    pub fn kill_and_release(&mut self, node: &str) -> Result<(), String> {
        self.take(node)?.kill9();
        let cfg = self.member(node).cfg.clone();
        let out = self
            .lab
            .run(node, &[&self.bin, "release", "-c", path_str(&cfg)]);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "floatip release in {node}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// SIGSTOP (`frozen`) or SIGCONT.
    pub fn freeze(&mut self, node: &str, frozen: bool) -> Result<(), String> {
        let sig = if frozen {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        let m = self.member(node);
        match &m.proc {
            Some(p) if p.signal(sig) => Ok(()),
            _ => Err(format!("{node}: no running daemon to send {sig}")),
        }
    }

    fn take(&mut self, node: &str) -> Result<Proc, String> {
        self.member(node)
            .proc
            .take()
            .ok_or_else(|| format!("{node}: no running daemon"))
    }

    /// Daemons that have exited although no fault stopped them, each with
    /// its status and the end of its log; they are started again (at most
    /// once per [`RESTART_GAP`], so a daemon that cannot start is no fork storm).
    pub fn unexpected_exits(&mut self) -> Vec<String> {
        let mut found = Vec::new();
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            let Some(p) = m.proc.as_ref().filter(|p| !p.is_running()) else {
                continue;
            };
            if m.started.elapsed() < RESTART_GAP {
                continue;
            }
            let status = p.wait_exit(Duration::ZERO);
            let log = p.log();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            found.push(format!(
                "{} (pid {}) exited unexpectedly ({status:?}); log ends: {:?}",
                m.name,
                p.pid(),
                tail.into_iter().rev().collect::<Vec<_>>()
            ));
            let name = m.name.clone();
            self.restart(&name);
        }
        found
    }

    /// True when every daemon is running.
    pub fn all_running(&self) -> bool {
        self.members
            .iter()
            .all(|m| m.proc.as_ref().is_some_and(Proc::is_running))
    }

    /// Reads every running daemon's resources into its [`Life`] in its
    /// present role (`holder` holds the address).
    pub fn read_usage(&mut self, holder: &str) -> Result<(), String> {
        for m in &self.members {
            let Some(p) = &m.proc else { continue };
            let u = Usage::read(p.pid()).map_err(|e| format!("{}: {e}", m.name))?;
            let holds = m.name == holder;
            match self
                .lives
                .iter_mut()
                .find(|l| l.pid == p.pid() && l.holder == holds)
            {
                Some(l) => {
                    l.last = u;
                    l.readings += 1;
                }
                None => self.lives.push(Life {
                    node: m.name.clone(),
                    pid: p.pid(),
                    holder: holds,
                    first: u,
                    last: u,
                    readings: 1,
                }),
            }
        }
        Ok(())
    }

    pub fn lives(&self) -> &[Life] {
        &self.lives
    }
}
