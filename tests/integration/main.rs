//! floatip's integration tests, one module per behaviour, in one binary so the
//! namespace lab (`floatip-lab`) is linked once. Most modules build a LAN of
//! network namespaces and need root; see `floatip_lab::Lab::new` for what
//! happens when they cannot run.

/// The daemon under test, as cargo built it for this test binary.
const BIN: &str = env!("CARGO_BIN_EXE_floatip");

/// `floatip status --json` of `node`, whose config puts the status socket at
/// `<lab dir>/<node>.sock`.
fn status_json(lab: &floatip_lab::Lab, node: &str) -> serde_json::Value {
    let sock = format!("{}/{node}.sock", lab.dir().display());
    let out = std::process::Command::new(BIN)
        .args(["status", "--json", "--socket", &sock])
        .output()
        .expect("run floatip status");
    assert!(
        out.status.success(),
        "status of {node}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

mod bad_config;
mod chaos;
mod dual_stack;
mod etcd_election;
mod etcd_failover;
mod failover;
mod fast_setting;
mod heal;
mod hostile_input;
mod ipv6_only;
mod live_ops;
mod local_trust;
mod one_holder;
mod packages;
mod service_files;
mod service_runtime;
mod service_tracking;
mod stranger;
