use std::path::Path;

use log::info;

use crate::config::Loaded;

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = match super::load(path, super::UnknownKeys::Warn)? {
        Loaded::Disabled => {
            info!(
                "floating IP disabled in {} (floating_ip.enabled is not true); nothing to do",
                path.display()
            );
            // Under Type=notify, exiting without READY=1 is a failure systemd would restart.
            let _ = sd_notify::notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(
                    "floating IP disabled (floating_ip.enabled is not true)",
                ),
            ]);
            return Ok(());
        }
        Loaded::Enabled(c) => *c,
    };
    crate::environment::check_all(&config, &crate::net::discover()?)?;
    crate::daemon::run(config)?;
    info!("stopped");
    Ok(())
}
