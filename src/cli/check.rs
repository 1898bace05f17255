use std::path::Path;

use anyhow::bail;

use crate::config::Loaded;
use crate::net::{ping, Os};

pub fn check(path: &Path) -> anyhow::Result<()> {
    let config = match super::load(path, super::UnknownKeys::Fail)? {
        Loaded::Disabled => {
            println!(
                "{}: floating IP disabled (floating_ip.enabled is not true)",
                path.display()
            );
            return Ok(());
        }
        Loaded::Enabled(c) => *c,
    };
    print!("{}", config.describe());
    crate::environment::check_all(&config, &crate::net::discover()?)?;
    // `ping` waits a second for silence: fine here, never on the take-over path.
    match ping::answers(Os::current(), config.vip) {
        Ok(true) => println!(
            "ip {}: answers ping now (held by a peer, or in use by another host)",
            config.vip
        ),
        Ok(false) => println!("ip {}: no answer to ping (free)", config.vip),
        Err(e) => bail!("cannot run ping: {e}"),
    }
    println!("ok");
    Ok(())
}
