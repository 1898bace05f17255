//! Reading a key file: a root-only regular file holding the key text.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::{how_to_create, Key};

/// A key file larger than this is not a key file.
pub const MAX_KEY_FILE_LEN: u64 = 4096;

/// Reads and checks a key file; the error is a reason to append to the config key's name.
pub fn read_key_file(path: &Path) -> Result<Key, String> {
    let shown = path.display().to_string();
    let mut text = read_secret_file(path, MAX_KEY_FILE_LEN, &how_to_create(&shown))?;
    Key::new(std::mem::take(&mut *text))
        .map_err(|why| format!("{shown} {why}; {}", how_to_create(&shown)))
}

/// Reads a file that holds a secret: a regular file of at most `max_len` bytes, owned by
/// root or floatip's user and closed to everyone else; trailing whitespace removed.
/// `missing_hint` ends the message when the file cannot be opened.
pub fn read_secret_file(
    path: &Path,
    max_len: u64,
    missing_hint: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let shown = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}; {missing_hint}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown} is accessible by group or others (mode {mode:04o}); run: chmod 600 {shown}"
        ));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "{shown} is owned by uid {}, not root; run: chown root {shown}",
            meta.uid()
        ));
    }
    if meta.len() > max_len {
        return Err(format!(
            "{shown} is {} bytes, more than such a file holds ({max_len})",
            meta.len()
        ));
    }
    // Room for the whole file up front: a growing buffer would leave copies of the key behind.
    let mut text = Zeroizing::new(Vec::with_capacity(max_len as usize + 1));
    std::fs::File::open(path)
        .and_then(|f| f.take(max_len).read_to_end(&mut text))
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    while text.last().is_some_and(|b| b.is_ascii_whitespace()) {
        text.pop();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("floatip-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn key_file_checks() {
        let good = temp(
            "good",
            b"0123456789abcdef0123456789abcdef0123456789a=\n",
            0o600,
        );
        assert_eq!(
            read_key_file(&good).unwrap(),
            Key::new(b"0123456789abcdef0123456789abcdef0123456789a=".to_vec()).unwrap()
        );
        let open = temp(
            "open",
            b"0123456789abcdef0123456789abcdef0123456789a=\n",
            0o644,
        );
        let e = read_key_file(&open).unwrap_err();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        let group = temp("group", b"0123456789abcdef0123456789abcdef", 0o640);
        assert!(read_key_file(&group).unwrap_err().contains("chmod 600"));
        let empty = temp("empty", b"\n\n", 0o600);
        assert!(read_key_file(&empty).unwrap_err().contains("is empty"));
        let short = temp("short", b"abc\n", 0o600);
        assert!(read_key_file(&short)
            .unwrap_err()
            .contains("too short: 3 bytes"));
        let missing = good.with_file_name("missing");
        let e = read_key_file(&missing).unwrap_err();
        assert!(e.contains("head -c 32 /dev/urandom"), "{e}");
        assert!(read_key_file(good.parent().unwrap())
            .unwrap_err()
            .contains("not a regular file"));
        std::fs::remove_dir_all(good.parent().unwrap()).unwrap();
    }
}
