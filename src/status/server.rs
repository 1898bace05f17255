//! Answers whoever connects to the status socket with a snapshot made for them: the
//! daemon builds one only when asked, so an idle daemon spends nothing on status.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Request;

/// The longest request line read.
const REQUEST_MAX: u64 = 128;

pub struct Server {
    path: PathBuf,
}

impl Server {
    /// Binds `path` (root-only, 0600; its directory 0750) and serves from a thread; `ask`
    /// returns the JSON answer to a request, or `None` if the daemon did not answer in time.
    pub fn start(
        path: &Path,
        ask: impl Fn(Request) -> Option<String> + Send + 'static,
    ) -> std::io::Result<Server> {
        // Only a directory we create gets our permissions; an existing one is the admin's.
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
        }
        // A socket left by a crashed daemon would make bind fail; anything else is not ours.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        std::thread::Builder::new()
            .name("fip-status".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                    // One short line; a client that sends nothing gets the status.
                    let mut line = String::new();
                    let _ = BufReader::new((&stream).take(REQUEST_MAX)).read_line(&mut line);
                    // An empty answer makes `floatip status` report a daemon that does not answer.
                    let body = Request::parse(&line).and_then(&ask).unwrap_or_default();
                    let _ = stream.write_all(body.as_bytes());
                }
            })?;
        Ok(Server {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
