//! Log output: env_logger with millisecond timestamps on a terminal or in a log file
//! (launchd), syslog priority prefixes and no timestamps under journald.
//!
//! journald reads `<N>` at the start of a line as the priority (`journalctl -p warning`)
//! and stamps every line itself. systemd sets `JOURNAL_STREAM=dev:inode` for a service
//! whose stderr is the journal; a child with stderr redirected keeps the variable but not
//! the stream, so the pair is compared with stderr's.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use log::Level;

/// Sets up the global logger: default level info, `-v` debug, `-vv` trace; `RUST_LOG` overrides.
pub fn init(verbosity: u8) {
    let default = match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default));
    if stderr_is_journal() {
        builder.format(|buf, record| {
            buf.write_all(journal_line(record.level(), &record.args().to_string()).as_bytes())
        });
    } else {
        builder.format_timestamp_millis();
    }
    builder.init();
}

/// The syslog priority journald reads from the start of a line.
pub fn syslog_prefix(level: Level) -> &'static str {
    match level {
        Level::Error => "<3>",
        Level::Warn => "<4>",
        Level::Info => "<6>",
        Level::Debug | Level::Trace => "<7>",
    }
}

/// One record for journald: every line carries the prefix, or continuation lines
/// would be logged at the default priority.
pub fn journal_line(level: Level, message: &str) -> String {
    let prefix = syslog_prefix(level);
    if message.is_empty() {
        return format!("{prefix}\n");
    }
    message
        .lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

/// True when `JOURNAL_STREAM` (`dev:inode`) names the file stderr is connected to.
pub fn journal_stream_matches(journal_stream: Option<&str>, stderr: (u64, u64)) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    matches!((dev.parse::<u64>(), ino.parse::<u64>()), (Ok(d), Ok(i)) if (d, i) == stderr)
}

fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let stderr = std::io::stderr();
    let Ok(meta) = stderr
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
    else {
        return false;
    };
    journal_stream_matches(var.to_str(), (meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_per_level() {
        assert_eq!(syslog_prefix(Level::Error), "<3>");
        assert_eq!(syslog_prefix(Level::Warn), "<4>");
        assert_eq!(syslog_prefix(Level::Info), "<6>");
        assert_eq!(syslog_prefix(Level::Debug), "<7>");
        assert_eq!(syslog_prefix(Level::Trace), "<7>");
    }

    #[test]
    fn every_line_prefixed_without_timestamp() {
        assert_eq!(
            journal_line(Level::Warn, "MASTER -> BACKUP: peer wins"),
            "<4>MASTER -> BACKUP: peer wins\n"
        );
        assert_eq!(
            journal_line(Level::Error, "first\nsecond"),
            "<3>first\n<3>second\n"
        );
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(journal_stream_matches(Some("8:12345"), (8, 12345)));
        assert!(!journal_stream_matches(Some("8:12345"), (8, 99)));
        assert!(!journal_stream_matches(Some("garbage"), (8, 12345)));
        assert!(!journal_stream_matches(None, (8, 12345)));
    }
}
