//! Start-up checks of the environment: root, the system programs (`ifconfig`, `ip`,
//! `ping`, found only in the system directories), the interface being up. Each failure is
//! one line that says what to do.

use crate::config::Config;
use crate::net::{MissingTool, Os, Tool};
use crate::vocabulary::{Interface, NoInterface};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("floatip must run as root (it adds and removes addresses); try: sudo floatip ...")]
    NotRoot,
    #[error(transparent)]
    MissingCommand(#[from] MissingTool),
    #[error("interface {0} is down; bring it up (ifconfig {0} up) or set floating_ip.interface")]
    InterfaceDown(String),
    #[error(transparent)]
    NoInterface(#[from] NoInterface),
}

/// Every program `os` needs is in `dirs`.
pub fn check_commands(os: Os, dirs: &[&str]) -> Result<(), EnvError> {
    for tool in Tool::required(os) {
        tool.locate_in(dirs)?;
    }
    Ok(())
}

pub fn check_root(euid_is_root: bool) -> Result<(), EnvError> {
    euid_is_root.then_some(()).ok_or(EnvError::NotRoot)
}

pub fn check_interface(config: &Config, interfaces: &[Interface]) -> Result<(), EnvError> {
    let iface = Interface::find(interfaces, &config.interface)?;
    if !iface.up {
        return Err(EnvError::InterfaceDown(iface.name.clone()));
    }
    Ok(())
}

/// All checks against the real process environment.
pub fn check_all(config: &Config, interfaces: &[Interface]) -> Result<(), EnvError> {
    check_root(nix::unistd::geteuid().is_root())?;
    check_commands(Os::current(), crate::net::tools::SYSTEM_DIRS)?;
    check_interface(config, interfaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_commands_name_the_package() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("floatip-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dirs = [dir.to_str().unwrap()];
        let install = |tool: &str| {
            std::fs::write(dir.join(tool), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(dir.join(tool), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        };
        let missing = |os| check_commands(os, &dirs).unwrap_err().to_string();
        assert_eq!(
            missing(Os::Linux),
            format!(
                "`ifconfig` not found in {}; install the net-tools package",
                dirs[0]
            )
        );
        install("ifconfig");
        assert!(
            missing(Os::Linux).starts_with("`ip` not found"),
            "ip is checked at start on Linux"
        );
        assert!(missing(Os::Linux).ends_with("install the iproute2 package"));
        assert!(
            missing(Os::MacOs).starts_with("`ping` not found"),
            "macOS needs no ip"
        );
        install("ip");
        assert!(missing(Os::Linux).ends_with("install the iputils-ping package"));
        install("ping");
        assert!(check_commands(Os::Linux, &dirs).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn not_root_says_so() {
        assert!(check_root(false)
            .unwrap_err()
            .to_string()
            .contains("must run as root"));
        assert!(check_root(true).is_ok());
    }
}
