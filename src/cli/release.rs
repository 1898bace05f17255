use std::path::Path;

use log::info;

use crate::config::{Config, Election, Loaded};
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
    let host = SystemHost::new(&config.interface, &config.addresses)?;
    // Connects to etcd while the address goes, so that freeing the key costs one round trip.
    let freeing = match &config.election {
        Election::Etcd(etcd) => {
            Some((etcd, election::etcd::Release::start(etcd, config.node_addr)))
        }
        Election::Lan => None,
    };
    let removed = host.remove_address()?;
    if removed {
        info!(
            "released {} from {}",
            config.address_list(),
            config.interface
        );
        tell_the_group(&config, &host);
    } else {
        info!(
            "{} not on {}; nothing to release",
            config.address_list(),
            config.interface
        );
    }
    // Only after the address is gone and the group was told (so the backup's probe can be
    // brief): the key still naming this node and boot is freed, so a backup takes over
    // now instead of after the lease's TTL.
    if let Some((etcd, freeing)) = freeing {
        match freeing.and_then(election::etcd::Release::free) {
            Ok(true) => info!("deleted the election key {}", etcd.key),
            Ok(false) => info!("the election key {} does not name this node", etcd.key),
            Err(e) => log::warn!("could not free the election key: {e}"),
        }
    }
    Ok(())
}

/// Tells the group the address is gone, so a waiting backup takes over at once.
fn tell_the_group(config: &Config, host: &SystemHost) {
    let boot = match BootId::random() {
        Ok(boot) => boot,
        Err(e) => return log::warn!("cannot draw a random boot id to tell the group: {e}"),
    };
    let view = LocalView {
        role: Role::Backup,
        priority: config.priority,
        preempt_request: false,
    };
    let local = Local::new(
        config.vip,
        config.node_addr,
        host.mac(),
        boot,
        view,
        config.auth.clone(),
        config.echo.interval,
    );
    if let Err(e) = send_released(
        &local,
        config.echo.port,
        config.segment.announce_to(),
        &config.interface,
    ) {
        log::warn!("could not tell the group about the release: {e}");
    }
}
