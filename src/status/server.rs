//! Serves the latest snapshot to whoever connects to the status socket.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Snapshot;

pub struct Server {
    latest: Arc<Mutex<String>>,
    path: PathBuf,
}

impl Server {
    /// Binds `path` (root-only, 0600; its directory 0750) and serves from a thread.
    pub fn start(path: &Path) -> std::io::Result<Server> {
        // Only a directory we create gets our permissions; an existing one is the admin's.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
        }
        // A socket left by a crashed daemon would make bind fail; anything else is not ours.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let latest = Arc::new(Mutex::new(String::from("{}")));
        let shared = latest.clone();
        std::thread::Builder::new().name("fip-status".into()).spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let body = shared.lock().map(|s| s.clone()).unwrap_or_default();
                let _ = stream.write_all(body.as_bytes());
            }
        })?;
        Ok(Server { latest, path: path.to_path_buf() })
    }

    pub fn publish(&self, snapshot: &Snapshot) {
        if let (Ok(json), Ok(mut latest)) = (serde_json::to_string(snapshot), self.latest.lock()) {
            *latest = json;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
