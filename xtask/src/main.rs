//! floatip's developer tasks, run through make (`make bench`, `make demo`,
//! `make assets`) or directly: `cargo run -p xtask -- <task>`.
mod assets;
mod bench;
mod demo;

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
    /// floatip on a throw-away LAN of network namespaces (root).
    Demo,
    /// The man pages and shell completions for packaging, into OUT_DIR.
    Assets { out_dir: PathBuf },
}

fn main() -> ExitCode {
    match Args::parse().task {
        Task::Bench => bench::run(),
        Task::Demo => demo::run(),
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
