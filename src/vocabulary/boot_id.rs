/// Random per daemon start: tells a restarted node from its earlier run, so a peer's
/// replay guard and the machine's holder tracking see a new boot as new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BootId(pub u64);

impl BootId {
    /// From the OS's random source; fails only where the kernel offers none.
    pub fn random() -> Result<BootId, getrandom::Error> {
        getrandom::u64().map(BootId)
    }
}

impl std::fmt::Display for BootId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
