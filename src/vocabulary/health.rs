/// What the service checks say about this node, aggregated by the daemon from each
/// check's rise/fall state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub verdict: Verdict,
    /// Sum of the weights of the failing weighted checks (capped at 253).
    pub penalty: u8,
    /// Which checks fail and why, for the log and `floatip status`.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Some check has no result yet.
    Pending,
    Healthy,
    /// A check without a weight is down.
    Failing,
}

impl Health {
    /// No checks configured, or all pass.
    pub fn healthy() -> Health {
        Health {
            verdict: Verdict::Healthy,
            penalty: 0,
            detail: String::new(),
        }
    }

    /// Checks configured, no verdict yet.
    pub fn pending() -> Health {
        Health {
            verdict: Verdict::Pending,
            penalty: 0,
            detail: "waiting for the first check results".into(),
        }
    }
}
