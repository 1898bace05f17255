pub type Mac = [u8; 6];

/// `aa:bb:cc:dd:ee:ff`, as `ip link` prints it.
pub fn fmt_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
