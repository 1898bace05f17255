//! floatip's developer tasks, run through make (`make bench`, `make demo`, `make demo-etcd`,
//! `make assets`, `make chaos`) or directly: `cargo run -p xtask -- <task>`.
mod assets;
mod bench;
mod chaos;
mod demo;
mod demo_etcd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "floatip's developer tasks")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// floatip against keepalived and ucarp in network namespaces; writes
    /// target/bench/results.json and docs/benchmarks.{md,svg} (root; settings
    /// from BENCH_* variables, see `xtask/src/bench/mod.rs`).
    Bench,
    /// The 10-minute flap soak of the 10 ms setting alone (root; see
    /// `xtask/src/bench/mod.rs`).
    BenchSoak,
    /// floatip on a throw-away LAN of network namespaces (root).
    Demo,
    /// A partition with and without the etcd election, side by side (root, etcd).
    DemoEtcd,
    /// Random faults one at a time against a three-node group, checking
    /// the one-holder invariants after each (root; see docs/chaos.md).
    Chaos {
        /// How long to run.
        #[arg(long, env = "CHAOS_MINUTES", default_value_t = 5.0)]
        minutes: f64,
        /// Seed of the fault sequence (random if not given; printed).
        #[arg(long, env = "CHAOS_SEED")]
        seed: Option<u64>,
    },
    /// The man pages and shell completions for packaging, into OUT_DIR.
    Assets { out_dir: PathBuf },
}

fn main() -> ExitCode {
    match Args::parse().task {
        Task::Bench => bench::run(),
        Task::BenchSoak => bench::run_long_soak(),
        Task::Demo => demo::run(),
        Task::DemoEtcd => demo_etcd::run(),
        Task::Chaos { minutes, seed } => chaos::run(minutes, seed),
        Task::Assets { out_dir } => assets::run(&out_dir),
    }
}

/// The repository's root (the workspace's), where `target/` and `docs/` are.
fn workspace_root() -> PathBuf {
    let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map_or(xtask.clone(), |p| p.to_path_buf())
}

/// The floatip binary to run: `$FLOATIP_BIN`, else the release build.
fn floatip_bin() -> PathBuf {
    std::env::var_os("FLOATIP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/floatip"))
}
