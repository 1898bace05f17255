use std::path::Path;

use log::info;

use crate::config::Loaded;
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
    if !host.remove_address()? {
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
