use std::path::Path;

use log::info;

use crate::config::{Election, Loaded};
use crate::election;
use crate::heartbeat::{send_released, Local, LocalView};
use crate::net::{Host, SystemHost};
use crate::vocabulary::{BootId, Role};

/// Removes the floating IP if this host has it, and tells the group so a waiting backup
/// takes over at once. Run by the service manager after the daemon stopped or crashed.
pub fn release(path: &Path) -> anyhow::Result<()> {
    let config = match super::load(path, super::UnknownKeys::Warn)? {
        Loaded::Disabled => return Ok(()),
        Loaded::Enabled(c) => *c,
    };
    crate::environment::check_root(nix::unistd::geteuid().is_root())?;
    let host = SystemHost::new(&config.interface, config.vip, config.netmask)?;
    let removed = host.remove_address()?;
    // Only after the address is gone: the key still naming this node and boot is freed,
    // so a backup takes over now instead of after the lease's TTL.
    if let Election::Etcd(etcd) = &config.election {
        match election::etcd::release(etcd, config.node_addr) {
            Ok(true) => info!("deleted the election key {}", etcd.key),
            Ok(false) => info!("the election key {} does not name this node", etcd.key),
            Err(e) => log::warn!("could not free the election key: {e}"),
        }
    }
    if !removed {
        info!(
            "{} is not on {}; nothing to release",
            config.vip, config.interface
        );
        return Ok(());
    }
    info!("released {} from {}", config.vip, config.interface);
    let view = LocalView {
        role: Role::Backup,
        priority: config.priority,
        preempt_request: false,
    };
    let local = Local::new(
        config.vip,
        config.node_addr,
        host.mac(),
        BootId::random().map_err(|e| anyhow::anyhow!("cannot draw a random boot id: {e}"))?,
        view,
        config.auth.clone(),
        config.echo.interval,
    );
    if let Err(e) = send_released(&local, config.echo.port, config.broadcast()) {
        log::warn!("could not tell the group about the release: {e}");
    }
    Ok(())
}
