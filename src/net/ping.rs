//! "Does this address answer?" with the system `ping`: slow (it waits up to a second for
//! silence) but universal; used at start-up and by `floatip check`, never on take-over.

use std::net::IpAddr;
use std::time::Duration;

use super::{NetError, Os, Tool};
use crate::exec::Exit;

/// `ping` waits one second for an answer; a run still going after this is hung.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// The program that pings `ip`: iputils `ping` takes both families; macOS has `ping6`.
pub fn ping_tool(os: Os, ip: IpAddr) -> Tool {
    match (os, ip) {
        (Os::MacOs, IpAddr::V6(_)) => Tool::Ping6,
        _ => Tool::Ping,
    }
}

/// One echo request, one second of patience, numeric output.
pub fn ping_argv(os: Os, ip: IpAddr) -> Vec<String> {
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
pub fn answers(os: Os, ip: IpAddr) -> Result<bool, NetError> {
    let argv: Vec<String> = std::iter::once(ping_tool(os, ip).locate()?.display().to_string())
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

/// Where no raw socket can probe: in use when any of `ips` answers a ping (the MAC unknown).
#[cfg(not(target_os = "linux"))]
pub fn any_answers(os: Os, ips: &[IpAddr]) -> Result<crate::vocabulary::ProbeOutcome, NetError> {
    use crate::vocabulary::ProbeOutcome;
    for ip in ips {
        if answers(os, *ip)? {
            return Ok(ProbeOutcome::InUse([0; 6]));
        }
    }
    Ok(ProbeOutcome::Free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_per_os() {
        let ip: IpAddr = "192.0.2.234".parse().unwrap();
        assert_eq!(
            ping_argv(Os::Linux, ip),
            ["-c", "1", "-W", "1", "-n", "-q", "192.0.2.234"]
        );
        assert_eq!(
            ping_argv(Os::MacOs, ip),
            ["-c", "1", "-t", "1", "-n", "-q", "192.0.2.234"]
        );
        let v6: IpAddr = "2001:db8::234".parse().unwrap();
        assert_eq!(ping_argv(Os::Linux, v6)[6], "2001:db8::234");
        assert_eq!(ping_tool(Os::Linux, v6), Tool::Ping);
        assert_eq!(ping_tool(Os::MacOs, v6), Tool::Ping6);
        assert_eq!(ping_tool(Os::MacOs, ip), Tool::Ping);
    }
}
