//! "Does this address answer?" with the system `ping`: slow (it waits up to a second for
//! silence) but universal; used at start-up and by `floatip check`, never on take-over.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::Os;

/// One echo request, one second of patience, numeric output.
pub fn ping_argv(os: Os, ip: Ipv4Addr) -> Vec<String> {
    let wait = match os {
        Os::Linux => "-W",
        // BSD ping: -t is the overall timeout in seconds (-W is in milliseconds there).
        Os::MacOs => "-t",
    };
    ["-c", "1", wait, "1", "-n", "-q"].iter().map(|s| s.to_string()).chain([ip.to_string()]).collect()
}

/// True when `ip` answered one ping within a second.
pub fn answers(os: Os, ip: Ipv4Addr) -> std::io::Result<bool> {
    let status = Command::new("ping")
        .args(ping_argv(os, ip))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_per_os() {
        let ip = Ipv4Addr::new(192, 0, 2, 234);
        assert_eq!(ping_argv(Os::Linux, ip), ["-c", "1", "-W", "1", "-n", "-q", "192.0.2.234"]);
        assert_eq!(ping_argv(Os::MacOs, ip), ["-c", "1", "-t", "1", "-n", "-q", "192.0.2.234"]);
    }
}
