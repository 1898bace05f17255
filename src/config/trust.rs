//! Files that decide what floatip does as root — the config file, and the programs its
//! `track` exec checks and `notify` hooks name — must be writable only by root or by
//! floatip's own user; a key kept inline in the config file must not be readable by others.
//! (Key files are checked where they are read, in [`crate::auth`].)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{Config, ConfigError, Target};

/// Why `path`, with `mode` and owner `uid`, must not be trusted by a process running as
/// `euid`; the reason ends with the command that fixes it.
pub fn distrust(path: &Path, mode: u32, uid: u32, euid: u32) -> Option<String> {
    let shown = path.display();
    if mode & 0o022 != 0 {
        return Some(format!(
            "{shown} is writable by its group or others (mode {:04o}); run: chmod go-w {shown}",
            mode & 0o7777
        ));
    }
    if uid != 0 && uid != euid {
        return Some(format!(
            "{shown} is owned by uid {uid}, not root or floatip's user; run: chown root {shown}"
        ));
    }
    None
}

/// [`distrust`] for a file on disk (symlinks followed: the target is what runs or is read).
fn distrust_file(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) => distrust(
            path,
            m.permissions().mode(),
            m.uid(),
            nix::unistd::geteuid().as_raw(),
        ),
        Err(e) => Some(format!("cannot check {}: {e}", path.display())),
    }
}

/// Refuses `config` (read from `config.source`) when anyone but root or floatip's user
/// could change what it runs, or read the key written into it (`inline_key`).
pub fn check(config: &Config, inline_key: Option<&str>) -> Result<(), ConfigError> {
    let file = config.source.display().to_string();
    if let Some(why) = distrust_file(&config.source) {
        return Err(ConfigError::Environment {
            file,
            reason: format!("refused: {why}"),
        });
    }
    if let Some(inline) = inline_key {
        let mode = std::fs::metadata(&config.source)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o777);
        if mode & 0o044 != 0 {
            return Err(ConfigError::Key {
                file: file.clone(),
                key: format!("floating_ip.auth.{inline}"),
                reason: format!(
                    "the key is in a file readable by its group or others (mode {:04o}); run: chmod 600 {file}, or move the key to floating_ip.auth.{}_file",
                    mode & 0o7777,
                    inline
                ),
            });
        }
    }
    for (key, argv) in programs(config) {
        if let Some(why) = distrust_file(Path::new(&argv[0])) {
            return Err(ConfigError::Key {
                file,
                key,
                reason: format!("refused: it runs as root, and {why}"),
            });
        }
    }
    Ok(())
}

/// Every program the config runs, with the key that names it.
fn programs(config: &Config) -> Vec<(String, &Vec<String>)> {
    let checks = config
        .track
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match &c.target {
            Target::Exec(argv) => Some((format!("floating_ip.track[{i}].exec[0]"), argv)),
            _ => None,
        });
    let n = &config.notify;
    let hooks = [
        ("master", &n.master),
        ("backup", &n.backup),
        ("fault", &n.fault),
        ("any", &n.any),
    ]
    .into_iter()
    .filter_map(|(what, argv)| {
        argv.as_ref()
            .map(|a| (format!("floating_ip.notify.{what}[0]"), a))
    });
    checks.chain(hooks).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_by_others_or_owned_by_a_stranger_is_distrusted() {
        let p = Path::new("/etc/floatip/gateway.yml");
        assert_eq!(distrust(p, 0o100644, 0, 0), None);
        assert_eq!(
            distrust(p, 0o100600, 1000, 1000),
            None,
            "floatip's own user may own it"
        );
        assert_eq!(distrust(p, 0o100755, 0, 1000), None);
        assert_eq!(
            distrust(p, 0o100664, 0, 0).as_deref(),
            Some("/etc/floatip/gateway.yml is writable by its group or others (mode 0664); run: chmod go-w /etc/floatip/gateway.yml")
        );
        assert!(distrust(p, 0o100646, 0, 0).is_some_and(|w| w.contains("mode 0646")));
        assert_eq!(
            distrust(p, 0o100644, 1000, 0).as_deref(),
            Some("/etc/floatip/gateway.yml is owned by uid 1000, not root or floatip's user; run: chown root /etc/floatip/gateway.yml")
        );
    }
}
