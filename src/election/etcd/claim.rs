//! What the election key holds: the holder's node address and its host's boot id, so that
//! `release` after a crash deletes the key only when it still names this node and boot.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub node: IpAddr,
    pub boot_id: String,
}

const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

impl Claim {
    /// This node's claim; the boot id comes from the kernel.
    pub fn ours(node: IpAddr) -> std::io::Result<Claim> {
        let boot_id = std::fs::read_to_string(BOOT_ID_PATH)?.trim().to_string();
        Ok(Claim { node, boot_id })
    }

    pub fn encode(&self) -> String {
        format!("{} {}", self.node, self.boot_id)
    }

    /// `None` for a value floatip did not write.
    pub fn parse(value: &[u8]) -> Option<Claim> {
        let (node, boot_id) = std::str::from_utf8(value).ok()?.split_once(' ')?;
        let boot_id = boot_id.trim();
        (!boot_id.is_empty()).then(|| {
            Some(Claim {
                node: node.parse().ok()?,
                boot_id: boot_id.to_string(),
            })
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_values() {
        let c = Claim {
            node: IpAddr::from([192, 0, 2, 11]),
            boot_id: "4a6d-11".into(),
        };
        assert_eq!(c.encode(), "192.0.2.11 4a6d-11");
        assert_eq!(Claim::parse(c.encode().as_bytes()), Some(c));
        for foreign in [
            &b""[..],
            b"192.0.2.11",
            b"host 4a6d",
            b"192.0.2.11 ",
            b"\xff\xfe 1",
        ] {
            assert_eq!(Claim::parse(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn our_boot_id_is_read() {
        let c = Claim::ours(IpAddr::from([192, 0, 2, 11])).unwrap();
        assert_eq!(c.boot_id.len(), 36, "{c:?}");
    }
}
