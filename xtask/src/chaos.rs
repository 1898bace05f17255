//! `make chaos`: the lab's chaos run (`floatip_lab::chaos`) for a number of
//! minutes with a seed, against the release build; exits non-zero on any
//! broken invariant, printing the seed to replay it.

use std::process::ExitCode;
use std::time::Duration;

use floatip_lab::chaos::{self, Settings};

pub fn run(minutes: f64, seed: Option<u64>) -> ExitCode {
    if !(minutes > 0.0 && minutes <= 24.0 * 60.0) {
        eprintln!("chaos: minutes must be more than 0 and at most 1440, not {minutes}");
        return ExitCode::FAILURE;
    }
    let bin = crate::floatip_bin();
    if !bin.is_file() {
        eprintln!(
            "chaos: no floatip binary at {} (build it: cargo build --release, or set FLOATIP_BIN)",
            bin.display()
        );
        return ExitCode::FAILURE;
    }
    let settings = Settings {
        bin,
        duration: Duration::from_secs_f64(minutes * 60.0),
        seed: seed.unwrap_or_else(chaos::random_seed),
        margin: Duration::ZERO,
    };
    let Some(outcome) = chaos::run("chaos", &settings) else {
        eprintln!("chaos: the lab cannot run here (see the line above): sudo make chaos");
        return ExitCode::FAILURE;
    };
    if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "chaos: {} broken invariant(s); replay: CHAOS_SEED={} CHAOS_MINUTES={minutes} make chaos",
            outcome.broken.len(),
            outcome.seed
        );
        ExitCode::FAILURE
    }
}
