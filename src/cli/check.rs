use std::path::Path;

use anyhow::bail;

use crate::config::{Election, Loaded};
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
    if let Election::Etcd(etcd) = &config.election {
        let holder = crate::election::etcd::probe(etcd)?;
        println!(
            "etcd: every endpoint answers; key {} held by {}",
            etcd.key,
            holder.map_or("nobody".to_string(), |h| h.to_string())
        );
    }
    // `ping` waits a second for silence: fine here, never on the take-over path.
    for address in &config.addresses {
        let ip = address.ip();
        match ping::answers(Os::current(), ip) {
            Ok(true) => {
                println!("ip {ip}: answers ping now (held by a peer, or in use by another host)")
            }
            Ok(false) => println!("ip {ip}: no answer to ping (free)"),
            Err(e) => bail!("cannot run ping for {ip}: {e}"),
        }
    }
    println!("ok");
    Ok(())
}
