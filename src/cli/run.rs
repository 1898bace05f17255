use std::path::Path;

use log::info;

use crate::config::Loaded;

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = match super::load(path)? {
        Loaded::Disabled => {
            info!("floating IP disabled in {} (floating_ip.enabled is not true); nothing to do", path.display());
            return Ok(());
        }
        Loaded::Enabled(c) => c,
    };
    crate::environment::check_all(&config, &crate::net::discover()?)?;
    crate::daemon::run(config)?;
    info!("stopped");
    Ok(())
}
