//! `floatip status`: reads the daemon's snapshot and prints it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{HandoverReply, Request, Snapshot};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "no floatip daemon answers on {path}: {error} (is it running? is status_socket the same?)"
    )]
    Connect { path: String, error: std::io::Error },
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} sent something that is not a floatip status: {error}")]
    Parse {
        path: String,
        error: serde_json::Error,
    },
}

pub fn fetch(path: &Path) -> Result<(Snapshot, String), StatusError> {
    let body = ask(path, Request::Status)?;
    let snapshot = serde_json::from_str(&body).map_err(|error| StatusError::Parse {
        path: path.display().to_string(),
        error,
    })?;
    Ok((snapshot, body))
}

/// Asks the daemon to hand its address over (to `to`, or the best backup).
pub fn hand_over(path: &Path, to: Option<std::net::IpAddr>) -> Result<HandoverReply, StatusError> {
    let body = ask(path, Request::HandOver { to })?;
    serde_json::from_str(&body).map_err(|error| StatusError::Parse {
        path: path.display().to_string(),
        error,
    })
}

fn ask(path: &Path, request: Request) -> Result<String, StatusError> {
    let p = path.display().to_string();
    let mut stream = UnixStream::connect(path).map_err(|error| StatusError::Connect {
        path: p.clone(),
        error,
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let mut body = String::new();
    stream
        .write_all(request.line().as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .and_then(|()| stream.read_to_string(&mut body))
        .map_err(|error| StatusError::Read { path: p, error })?;
    Ok(body)
}

/// The human-readable form.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    out += &format!(
        "state:     {} for {} ms ({})\n",
        s.state, s.since_ms_ago, s.reason
    );
    out += &format!(
        "address:   {} on {} (node {} priority {})\n",
        s.address_list(),
        s.interface,
        s.node,
        s.priority
    );
    out += &format!(
        "holder:    {}\n",
        s.holder.map_or("unknown".to_string(), |h| h.to_string())
    );
    if s.election.kind == "etcd" {
        out += &match (&s.election.unreachable, s.election.key_holder) {
            (Some(why), _) => format!(
                "election:  etcd unreachable ({why}): nobody holds the address until it answers\n"
            ),
            (None, Some(node)) => format!("election:  etcd, key held by {node}\n"),
            (None, None) => "election:  etcd, key free\n".to_string(),
        };
    }
    out += &format!("peers:     {}\n", s.peers.len());
    for p in &s.peers {
        out += &format!(
            "  {} {} priority {} mac {} heard {} ms ago\n",
            p.node, p.role, p.priority, p.mac, p.last_heard_ms_ago
        );
    }
    if !s.checks.is_empty() {
        out += &format!(
            "health:    {} (priority {} of configured {})\n",
            s.health, s.priority, s.configured_priority
        );
    }
    for c in &s.checks {
        let last = match (&c.last_result, c.last_ms_ago, c.last_took_ms) {
            (Some(r), Some(ago), Some(took)) => format!("last {r:?} {ago} ms ago, took {took} ms"),
            _ => "no result yet".to_string(),
        };
        let towards = match (c.state.as_str(), c.streak) {
            (_, 0) => String::new(),
            ("up", n) => format!(", failed {n}/{} towards down", c.fall),
            (_, n) => format!(", passed {n}/{} towards up", c.rise),
        };
        let since = c
            .state_since_ms_ago
            .map_or(String::new(), |ms| format!(" for {ms} ms"));
        out += &format!(
            "  check {:?} {} {}: {}{since}{towards} (down means {}); {last}; every {} ms, timeout {} ms, rise {} fall {}\n",
            c.name, c.kind, c.target, c.state, c.effect, c.interval_ms, c.timeout_ms, c.rise, c.fall
        );
    }
    let cfg = &s.config;
    out += &format!(
        "config:    loaded at {} ms unix, {} reload(s); file on disk: {}\n",
        cfg.loaded_unix_ms, cfg.reloads, cfg.file_on_disk
    );
    if !cfg.restart_needed_for.is_empty() {
        out += &format!(
            "           restart floatip to apply: {}\n",
            cfg.restart_needed_for.join(", ")
        );
    }
    let c = &s.counters;
    out += &format!(
        "counters:  takeovers {} conflicts {} heartbeats_lost {} messages_rejected {} auth_failures {}\n",
        c.machine.takeovers, c.machine.conflicts, c.machine.holder_losses, c.messages_rejected, c.auth_failures
    );
    out
}
