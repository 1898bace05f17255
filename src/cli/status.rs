use std::path::{Path, PathBuf};

use super::StatusArgs;
use crate::config::{Loaded, DEFAULT_STATUS_SOCKET};

/// The daemon's status socket: `--socket`, else `status_socket` from the config file.
pub fn socket_of(socket: &Option<PathBuf>, config: &Path) -> PathBuf {
    match socket {
        Some(s) => s.clone(),
        None => match super::load(config, super::UnknownKeys::Warn) {
            Ok(Loaded::Enabled(c)) => c.status_socket,
            _ => PathBuf::from(DEFAULT_STATUS_SOCKET),
        },
    }
}

pub fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let socket = socket_of(&args.socket, &args.config.config);
    let (snapshot, raw) = crate::status::fetch(&socket)?;
    if args.json {
        println!("{raw}");
    } else {
        print!("{}", crate::status::render(&snapshot));
    }
    Ok(())
}
