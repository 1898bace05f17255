use std::path::PathBuf;

use super::StatusArgs;
use crate::config::{Loaded, DEFAULT_STATUS_SOCKET};

pub fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let socket = match &args.socket {
        Some(s) => s.clone(),
        None => match super::load(&args.config.config, super::UnknownKeys::Warn) {
            Ok(Loaded::Enabled(c)) => c.status_socket,
            _ => PathBuf::from(DEFAULT_STATUS_SOCKET),
        },
    };
    let (snapshot, raw) = crate::status::fetch(&socket)?;
    if args.json {
        println!("{raw}");
    } else {
        print!("{}", crate::status::render(&snapshot));
    }
    Ok(())
}
