//! The system programs the daemon runs as root (`ifconfig`, `ip`, `ping`), found in a
//! fixed list of system directories — never through the inherited `PATH`, which whoever
//! starts floatip controls.

use std::path::{Path, PathBuf};

use super::Os;

/// Where system programs are looked for, in order.
pub const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Ifconfig,
    /// iproute2: removes an unlabeled copy of the address on Linux.
    Ip,
    Ping,
    /// macOS's ping for IPv6 (part of the base system).
    Ping6,
}

/// A system program that is not installed, as a one-line error that says what to install.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{command}` not found in {dirs}; install the {package} package")]
pub struct MissingTool {
    pub command: &'static str,
    pub package: &'static str,
    pub dirs: String,
}

impl Tool {
    /// The programs floatip needs on `os`.
    pub fn required(os: Os) -> &'static [Tool] {
        match os {
            Os::Linux => &[Tool::Ifconfig, Tool::Ip, Tool::Ping],
            Os::MacOs => &[Tool::Ifconfig, Tool::Ping],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Ifconfig => "ifconfig",
            Tool::Ip => "ip",
            Tool::Ping => "ping",
            Tool::Ping6 => "ping6",
        }
    }

    /// The Debian package that provides it (the RPM names are in the packaging metadata).
    pub fn package(self) -> &'static str {
        match self {
            Tool::Ifconfig => "net-tools",
            Tool::Ip => "iproute2",
            Tool::Ping => "iputils-ping",
            Tool::Ping6 => "system (macOS base)",
        }
    }

    /// Its absolute path in [`SYSTEM_DIRS`].
    pub fn locate(self) -> Result<PathBuf, MissingTool> {
        self.locate_in(SYSTEM_DIRS)
    }

    /// Its absolute path: the first executable regular file of that name in `dirs`.
    pub fn locate_in(self, dirs: &[&str]) -> Result<PathBuf, MissingTool> {
        use std::os::unix::fs::PermissionsExt;
        dirs.iter()
            .map(|d| Path::new(d).join(self.name()))
            .find(|p| {
                p.is_absolute()
                    && p.metadata()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            .ok_or_else(|| MissingTool {
                command: self.name(),
                package: self.package(),
                dirs: dirs.join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn required_per_os() {
        assert_eq!(
            Tool::required(Os::Linux),
            [Tool::Ifconfig, Tool::Ip, Tool::Ping]
        );
        assert_eq!(Tool::required(Os::MacOs), [Tool::Ifconfig, Tool::Ping]);
    }

    #[test]
    fn found_only_in_the_given_dirs_never_through_path() {
        let dir = std::env::temp_dir().join(format!("fip-tools-{}", std::process::id()));
        let (first, second) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        let dirs = [first.to_str().unwrap(), second.to_str().unwrap()];
        let missing = Tool::Ip.locate_in(&dirs).unwrap_err();
        assert_eq!(
            missing.to_string(),
            format!(
                "`ip` not found in {}, {}; install the iproute2 package",
                dirs[0], dirs[1]
            )
        );
        // Not executable, or a directory: skipped.
        std::fs::write(first.join("ip"), "#!/bin/sh\n").unwrap();
        std::fs::create_dir_all(first.join("ping")).unwrap();
        assert!(Tool::Ip.locate_in(&dirs).is_err());
        assert!(Tool::Ping.locate_in(&dirs).is_err());
        std::fs::write(second.join("ip"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(second.join("ip"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_eq!(Tool::Ip.locate_in(&dirs).unwrap(), second.join("ip"));
        std::fs::set_permissions(first.join("ip"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            Tool::Ip.locate_in(&dirs).unwrap(),
            first.join("ip"),
            "the first directory wins"
        );
        // A relative directory (as PATH may hold) never yields a program.
        assert!(Tool::Ip.locate_in(&["."]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn system_dirs_are_fixed_and_absolute() {
        assert_eq!(SYSTEM_DIRS, ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        assert!(SYSTEM_DIRS.iter().all(|d| d.starts_with('/')));
    }
}
