//! "Does this address answer?" with the system `ping`: slow (it waits up to a second for
//! silence) but universal; used at start-up and by `floatip check`, never on take-over.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{NetError, Os, Tool};
use crate::exec::Exit;

/// `ping` waits one second for an answer; a run still going after this is hung.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// One echo request, one second of patience, numeric output.
pub fn ping_argv(os: Os, ip: Ipv4Addr) -> Vec<String> {
    let wait = match os {
        Os::Linux => "-W",
        // BSD ping: -t is the overall timeout in seconds (-W is in milliseconds there).
        Os::MacOs => "-t",
    };
    ["-c", "1", wait, "1", "-n", "-q"]
        .iter()
        .map(|s| s.to_string())
        .chain([ip.to_string()])
        .collect()
}

/// True when `ip` answered one ping within a second.
pub fn answers(os: Os, ip: Ipv4Addr) -> Result<bool, NetError> {
    let argv: Vec<String> = std::iter::once(Tool::Ping.locate()?.display().to_string())
        .chain(ping_argv(os, ip))
        .collect();
    let ran = crate::exec::run(&argv, &[], PING_TIMEOUT);
    match ran.exit {
        Exit::Code(code) => Ok(code == 0),
        _ => Err(NetError::Command {
            command: argv.join(" "),
            detail: ran.summary(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_per_os() {
        let ip = Ipv4Addr::new(192, 0, 2, 234);
        assert_eq!(
            ping_argv(Os::Linux, ip),
            ["-c", "1", "-W", "1", "-n", "-q", "192.0.2.234"]
        );
        assert_eq!(
            ping_argv(Os::MacOs, ip),
            ["-c", "1", "-t", "1", "-n", "-q", "192.0.2.234"]
        );
    }
}
