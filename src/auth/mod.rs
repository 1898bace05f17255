//! Heartbeat authentication: the group's shared keys, HMAC-SHA256 tags, key files and the
//! replay guard. Everything here but [`key_file`] is pure.
//!
//! The design (see `docs/security.md`): every message carries an HMAC-SHA256 tag over all
//! its other bytes, the sender's random boot id, a sequence number and its wall-clock time.
//! A receiver accepts a broadcast only if the tag verifies with the group's key (or, during
//! a rotation, the second accepted key), the time is within the clock-skew window, and the
//! (boot, sequence) pair is newer than anything it accepted from that node before. An echo
//! must also name the heartbeat it answers (a challenge), so a captured echo never answers
//! a later heartbeat.

mod key_file;
mod replay;

pub use key_file::{read_key_file, read_secret_file, MAX_KEY_FILE_LEN};
pub use replay::{within_skew, Replay, ReplayGuard};

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of the HMAC-SHA256 tag that ends an authenticated message.
pub const TAG_LEN: usize = 32;
/// Shortest key accepted: 32 bytes (`head -c 32 /dev/urandom | base64` gives 44).
pub const MIN_KEY_LEN: usize = 32;
/// Default acceptance window for a message's timestamp (`auth.max_clock_skew_in_ms`).
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(10);

/// How to create a key, for error messages.
pub fn how_to_create(path: &str) -> String {
    format!("create one with: head -c 32 /dev/urandom | base64 > {path}; chmod 600 {path}")
}

type HmacSha256 = Hmac<Sha256>;

/// A shared secret. Its bytes never appear in `Debug` output or logs, and are wiped
/// from memory when the key is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Zeroizing<Vec<u8>>);

impl Key {
    /// The key text as written (trailing whitespace already removed), at least [`MIN_KEY_LEN`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Key, String> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err("is empty".into());
        }
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "is too short: {} bytes, a key needs at least {MIN_KEY_LEN}",
                bytes.len()
            ));
        }
        Ok(Key(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// A short public fingerprint (first 4 bytes of SHA-256 of the key), for logs and `check`.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        Sha256::digest(&self.0)[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Key({} bytes, fingerprint {})",
            self.0.len(),
            self.fingerprint()
        )
    }
}

/// Which configured key verified a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    Current,
    Previous,
}

/// The group's authentication settings (`floating_ip.auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Signs everything this node sends; accepted on receipt.
    pub key: Key,
    /// Also accepted on receipt, never used to sign: the second key of a rotation.
    pub previous_key: Option<Key>,
    /// A message whose timestamp is further than this from our clock is refused.
    pub max_skew: Duration,
}

impl Auth {
    pub fn new(key: Key) -> Auth {
        Auth {
            key,
            previous_key: None,
            max_skew: DEFAULT_MAX_SKEW,
        }
    }

    pub fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.key.mac();
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// Checks `tag` over `bytes` in constant time against each accepted key.
    pub fn verify(&self, bytes: &[u8], tag: &[u8]) -> Option<KeyUsed> {
        let ok = |k: &Key| {
            let mut mac = k.mac();
            mac.update(bytes);
            mac.verify_slice(tag).is_ok()
        };
        if ok(&self.key) {
            Some(KeyUsed::Current)
        } else if self.previous_key.as_ref().is_some_and(ok) {
            Some(KeyUsed::Previous)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: u8) -> Key {
        Key::new(vec![c; 32]).unwrap()
    }

    #[test]
    fn keys_must_be_long_enough() {
        assert_eq!(Key::new(vec![]).unwrap_err(), "is empty");
        assert!(Key::new(vec![b'a'; 31])
            .unwrap_err()
            .contains("too short: 31 bytes"));
        assert!(Key::new(vec![b'a'; 32]).is_ok());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = Key::new(b"super-secret-super-secret-super-secret".to_vec()).unwrap();
        let shown = format!("{:?}", Auth::new(k));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("fingerprint"), "{shown}");
    }

    #[test]
    fn config_section_parses_and_inline_keys_warn() {
        use crate::config::RawSection;
        let raw = RawSection::parse(
            "floating_ip:\n  enabled: true\n  auth:\n    key: 0123456789abcdef0123456789abcdef\n    max_clock_skew_in_ms: 2000\n    colour: red\n",
            "g.yml",
        )
        .unwrap();
        assert_eq!(
            raw.auth.key.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(raw.auth.max_clock_skew_ms, Some(2000));
        assert!(
            raw.warnings
                .iter()
                .any(|w| w.contains("unknown key floating_ip.auth.colour")),
            "{:?}",
            raw.warnings
        );
        let plain = RawSection::parse("floating_ip:\n  enabled: true\n", "g.yml").unwrap();
        assert_eq!(plain.auth, crate::config::RawAuth::default());
    }

    #[test]
    fn tag_verifies_with_current_or_previous_key_only() {
        let mut a = Auth::new(key(1));
        let t = a.tag(b"hello");
        assert_eq!(a.verify(b"hello", &t), Some(KeyUsed::Current));
        assert_eq!(a.verify(b"hellO", &t), None);
        assert_eq!(a.verify(b"hello", &t[..31]), None);
        let old = Auth::new(key(2)).tag(b"hello");
        assert_eq!(a.verify(b"hello", &old), None);
        a.previous_key = Some(key(2));
        assert_eq!(a.verify(b"hello", &old), Some(KeyUsed::Previous));
        // RFC 4231 test case 2 (short key), to pin the algorithm.
        let rfc = Auth {
            key: Key(Zeroizing::new(b"Jefe".to_vec())),
            previous_key: None,
            max_skew: DEFAULT_MAX_SKEW,
        };
        let hex: String = rfc
            .tag(b"what do ya want for nothing?")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
