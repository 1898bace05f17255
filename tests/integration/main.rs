//! floatip's integration tests, one module per behaviour, in one binary so the
//! namespace lab (`floatip-lab`) is linked once. Most modules build a LAN of
//! network namespaces and need root; see `floatip_lab::Lab::new` for what
//! happens when they cannot run.

/// The daemon under test, as cargo built it for this test binary.
const BIN: &str = env!("CARGO_BIN_EXE_floatip");

mod bad_config;
mod chaos;
mod failover;
mod hostile_input;
mod one_holder;
mod packages;
mod service_files;
mod service_runtime;
mod service_tracking;
