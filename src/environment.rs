//! Start-up checks of the environment: root, the `ifconfig` and `ping` commands, the
//! interface being up. Each failure is one line that says what to do.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::net::Interface;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("floatip must run as root (it adds and removes addresses); try: sudo floatip ...")]
    NotRoot,
    #[error("`{command}` not found in PATH; install the {package} package")]
    MissingCommand { command: &'static str, package: &'static str },
    #[error("interface {0} is down; bring it up (ifconfig {0} up) or set floating_ip.interface")]
    InterfaceDown(String),
    #[error("interface {name} not found; available: {available}")]
    NoInterface { name: String, available: String },
}

/// The commands floatip runs, with the Debian/RPM package that provides each.
pub const REQUIRED_COMMANDS: &[(&str, &str)] = &[("ifconfig", "net-tools"), ("ping", "iputils-ping")];

/// Finds `command` in `path` (a PATH-style list), as the shell would.
pub fn find_in_path(command: &str, path: &str) -> Option<PathBuf> {
    path.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(command)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

pub fn check_commands(path: &str) -> Result<(), EnvError> {
    for (command, package) in REQUIRED_COMMANDS {
        if find_in_path(command, path).is_none() {
            return Err(EnvError::MissingCommand { command, package });
        }
    }
    Ok(())
}

pub fn check_root(euid_is_root: bool) -> Result<(), EnvError> {
    euid_is_root.then_some(()).ok_or(EnvError::NotRoot)
}

pub fn check_interface(config: &Config, interfaces: &[Interface]) -> Result<(), EnvError> {
    let iface = interfaces.iter().find(|i| i.name == config.interface).ok_or_else(|| EnvError::NoInterface {
        name: config.interface.clone(),
        available: interfaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
    })?;
    if !iface.up {
        return Err(EnvError::InterfaceDown(iface.name.clone()));
    }
    Ok(())
}

/// All checks against the real process environment.
pub fn check_all(config: &Config, interfaces: &[Interface]) -> Result<(), EnvError> {
    check_root(nix::unistd::geteuid().is_root())?;
    check_commands(&std::env::var("PATH").unwrap_or_default())?;
    check_interface(config, interfaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_commands_name_the_package() {
        let dir = std::env::temp_dir().join(format!("floatip-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.display().to_string();
        assert_eq!(
            check_commands(&path).unwrap_err().to_string(),
            "`ifconfig` not found in PATH; install the net-tools package"
        );
        let ifconfig = dir.join("ifconfig");
        std::fs::write(&ifconfig, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ifconfig, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            check_commands(&path).unwrap_err(),
            EnvError::MissingCommand { command: "ping", package: "iputils-ping" }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn not_root_says_so() {
        assert!(check_root(false).unwrap_err().to_string().contains("must run as root"));
        assert!(check_root(true).is_ok());
    }
}
