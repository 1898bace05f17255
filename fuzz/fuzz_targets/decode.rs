//! Fuzzes the heartbeat decoder: any bytes, with and without a key, must decode or be
//! refused without a panic; what decodes must re-encode to the same bytes (modulo the
//! ignored reserved bytes and flag bits), and an authenticated message must never open
//! with a key other than the one that signed it.
//!
//! Run (needs nightly): `cargo +nightly fuzz run decode -- -max_total_time=60`
#![no_main]

use floatip::auth::{Auth, Key};
use floatip::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Auth::new(Key::new(vec![7; 32]).expect("32-byte key"));
    let other = Auth::new(Key::new(vec![8; 32]).expect("32-byte key"));
    let _ = wire::frame_len(data);
    let _ = wire::open(data, None);
    if let Ok(d) = wire::decode(data) {
        let plain = wire::encode(&d.message);
        match d.stamp {
            None => {
                assert_eq!(data.len(), wire::MESSAGE_LEN);
                assert_eq!(&plain[..10], &data[..10]);
                assert_eq!(&plain[12..26], &data[12..26]);
                assert_eq!(&plain[28..], &data[28..]);
            }
            Some(stamp) => {
                assert_eq!(data.len(), wire::AUTH_MESSAGE_LEN);
                let resigned = wire::encode_authenticated(&d.message, &stamp, &key);
                let opened = wire::open(&resigned, Some(&key)).expect("own message opens");
                assert_eq!(opened, d);
                assert!(wire::open(&resigned, Some(&other)).is_err());
                // Fuzzer bytes that carry a valid tag would be a forgery.
                assert!(wire::open(data, Some(&key)).is_err() || data == &resigned[..]);
            }
        }
    }
});
