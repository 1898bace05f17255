//! `make bench` (`cargo run --release -p xtask -- bench`): floatip against keepalived (VRRP) and ucarp (CARP), side by
//! side, in the namespace lab of the integration tests (the `floatip-lab` crate).
//!
//! For every daemon, setting (1 s adverts, fast) and fault scenario it starts
//! the daemon on n1 (preferred) and n2, waits for n1 to hold the VIP alone,
//! starts a [`floatip_lab::Watch`] (a UDP probe to the VIP every 2 ms from the client,
//! holders sampled every 5 ms), injects the fault and records what the client
//! saw. Then it measures each daemon's idle RSS, CPU and frames on the wire,
//! runs a short flap soak of the 10 ms setting (random frame loss and CPU
//! hogs), and writes `target/bench/results.json`, `docs/benchmarks.md` and
//! `docs/benchmarks.svg`. `make bench-soak` (`xtask bench-soak`) runs the
//! long soak alone and adds it to the results.
//!
//! Environment:
//! - `BENCH_REPS` (default 5): repetitions per cell;
//! - `BENCH_QUICK=1`: one repetition, a 10 s idle window, a 20 s soak (a smoke run);
//! - `BENCH_IDLE_SECS` (default 60): the idle window;
//! - `BENCH_SOAK_SECS` (default 60; `bench-soak`: 600): the flap soak;
//! - `BENCH_HOGS` (default 8): CPU hogs during the soak;
//! - `BENCH_ONLY=<daemon>[,<daemon>]` (floatip, floatip-etcd, keepalived, ucarp),
//!   `BENCH_SCENARIOS=<s>[,<s>]` (the scenarios, `idle`, `soak`, `ipv6`: the
//!   IPv6 rows, a dual-stack and an IPv6-only pair at 1 s and 0.1 s),
//!   `BENCH_GROUPS=dual-stack|ipv6-only[,...]` (the IPv6 rows' groups),
//!   `BENCH_SETTINGS=1s|fast|10ms[,...]`: run a subset (development);
//! - `BENCH_RENDER_ONLY=1`: re-render the docs from `target/bench/results.json`;
//! - `FLOATIP_BIN`: the floatip binary (default `target/release/floatip`).
//!
//! Needs root, `ip` (iproute2), `nft` (nftables), `keepalived`, `ucarp`,
//! `etcd` (etcd-server; without it the floatip-etcd rows are skipped).
mod daemons;
mod docs;
mod idle;
mod ipv6;
mod model;
mod scenario;
mod soak;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use floatip_lab::etcd::etcd_binary;
use floatip_lab::{find_program, printed};

use daemons::{configs_for_docs, Floating, Tools};
use docs::{comparison_table, write_docs};
use idle::measure_idle;
use ipv6::run_ipv6_once;
use model::{cells, Daemon, Failure, Ipv6Run, Machine, Results, Run, Scenario, Setting, Soak};
use scenario::run_once;
use soak::run_soak;

/// How many times a run whose start-up was not clean is retried.
const RUN_ATTEMPTS: usize = 3;

pub fn run() -> ExitCode {
    let results_path = crate::workspace_root().join("target/bench/results.json");
    if std::env::var("BENCH_RENDER_ONLY").as_deref() == Ok("1") {
        let text = std::fs::read_to_string(&results_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", results_path.display()));
        let results: Results = serde_json::from_str(&text).expect("parse results.json");
        write_docs(&results);
        return ExitCode::SUCCESS;
    }
    let Some(tools) = tools("bench") else {
        return ExitCode::FAILURE;
    };
    let started = Instant::now();
    let quick = std::env::var("BENCH_QUICK").as_deref() == Ok("1");
    let reps = if quick {
        1
    } else {
        env_usize("BENCH_REPS", 5).max(1)
    };
    let idle_window =
        Duration::from_secs(env_usize("BENCH_IDLE_SECS", if quick { 10 } else { 60 }) as u64);
    let soak_length =
        Duration::from_secs(env_usize("BENCH_SOAK_SECS", if quick { 20 } else { 60 }) as u64);
    for d in Daemon::ALL {
        if !tools.has(d) {
            let package = match d {
                Daemon::FloatipEtcd => "etcd-server",
                _ => d.name(),
            };
            eprintln!(
                "bench: {} cannot run: its rows are skipped (apt-get install -y {package})",
                d.name(),
            );
        }
    }
    let daemons: Vec<Daemon> = Daemon::ALL
        .into_iter()
        .filter(|d| tools.has(*d) && selected("BENCH_ONLY", d.name()))
        .collect();
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| selected("BENCH_SCENARIOS", s.name()))
        .collect();
    let settings: Vec<Setting> = Setting::ALL
        .into_iter()
        .filter(|s| selected("BENCH_SETTINGS", s.name()))
        .collect();

    let mut plan = Vec::new();
    for &s in &settings {
        for &sc in &scenarios {
            for &d in &daemons {
                if s.runs(d, sc) {
                    plan.push(Job::Main(d, s, sc));
                }
            }
        }
    }
    // `BENCH_SCENARIOS=ipv6` selects the IPv6 rows (every fault of theirs),
    // `BENCH_GROUPS=ipv6-only` (or `dual-stack`) one group of them.
    if selected("BENCH_SCENARIOS", "ipv6") {
        for f in ipv6::GROUPS
            .into_iter()
            .filter(|f| selected("BENCH_GROUPS", f.name()))
        {
            for &s in settings.iter().filter(|s| ipv6::settings_of(**s)) {
                for &d in daemons.iter().filter(|d| ipv6::measures(f, **d)) {
                    for sc in ipv6::faults(d) {
                        plan.push(Job::Ipv6(f, d, s, sc));
                    }
                }
            }
        }
    }
    let run_idle = selected("BENCH_SCENARIOS", "idle");
    let run_soak_too = selected("BENCH_SCENARIOS", "soak")
        && settings.contains(&Setting::TenMs)
        && daemons.contains(&Daemon::Floatip);
    eprintln!(
        "bench: {} cells × {reps} reps ({} runs), then a {}s idle window and a {}s soak{}",
        plan.len(),
        plan.len() * reps,
        if run_idle { idle_window.as_secs() } else { 0 },
        if run_soak_too {
            soak_length.as_secs()
        } else {
            0
        },
        if quick {
            " (BENCH_QUICK=1: a smoke run)"
        } else {
            ""
        }
    );
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    let mut ipv6_runs = Vec::new();
    let mut ipv6_failures = Vec::new();
    let total = plan.len() * reps;
    let mut i = 0;
    // Repetitions are the outer loop so that a slow drift of the machine
    // spreads over all cells alike.
    for rep in 1..=reps {
        for &job in &plan {
            i += 1;
            let t = Instant::now();
            let mut last_err = String::new();
            let mut done = false;
            for attempt in 1..=RUN_ATTEMPTS {
                match job.run(&tools, rep, attempt) {
                    Ok(outcome) => {
                        eprintln!(
                            "[{i:>3}/{total}] {} rep {rep}: {}  ({:.1}s)",
                            job.name(),
                            outcome.line(),
                            t.elapsed().as_secs_f64()
                        );
                        match outcome {
                            Outcome::Main(r) => runs.push(r),
                            Outcome::Ipv6(r) => ipv6_runs.push(r),
                        }
                        done = true;
                        break;
                    }
                    Err(e) => {
                        eprintln!(
                            "[{i:>3}/{total}] {} rep {rep} attempt {attempt}: {e}",
                            job.name()
                        );
                        last_err = e;
                    }
                }
            }
            if !done {
                let (d, s, sc, to) = match job {
                    Job::Main(d, s, sc) => (d, s, sc, &mut failures),
                    Job::Ipv6(_, d, s, sc) => (d, s, sc, &mut ipv6_failures),
                };
                to.push(Failure {
                    daemon: d,
                    setting: s,
                    scenario: sc,
                    rep,
                    error: last_err,
                });
            }
        }
    }
    let mut idle = Vec::new();
    if run_idle {
        eprintln!(
            "bench: idle window {}s for every daemon and setting at once",
            idle_window.as_secs()
        );
        let problems;
        (idle, problems) = measure_idle(&tools, &daemons, &settings, idle_window);
        for p in &problems {
            eprintln!("bench: {p}");
        }
    }
    let command = if quick {
        "BENCH_QUICK=1 make bench".to_string()
    } else if reps == 5 {
        "make bench".into()
    } else {
        format!("BENCH_REPS={reps} make bench")
    };
    let mut soaks = Vec::new();
    if run_soak_too {
        soaks.extend(soak_logged(&tools, soak_length, &command));
    }
    let mut configs = BTreeMap::new();
    for &s in &settings {
        configs.extend(configs_for_docs(s, Floating::V4, &tools));
    }
    for f in ipv6::GROUPS {
        for s in Setting::ALL.into_iter().filter(|s| {
            ipv6_runs
                .iter()
                .any(|r: &Ipv6Run| (r.floating, r.v6.setting) == (f, *s))
        }) {
            configs.extend(configs_for_docs(s, f, &tools));
        }
    }
    let results = Results {
        command,
        reps,
        quick,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .saturating_sub(started.elapsed().as_secs()),
        duration_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        machine: machine(&tools),
        configs,
        cells: cells(&runs, &failures),
        runs,
        failures,
        idle,
        soak: soaks,
        ipv6: ipv6_runs,
        ipv6_failures,
    };
    save(&results_path, &results);
    write_docs(&results);
    println!("\n{}", comparison_table(&results));
    eprintln!("bench: done in {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// One cell of the plan: a main row, or an IPv6 row of a group.
#[derive(Clone, Copy)]
enum Job {
    Main(Daemon, Setting, Scenario),
    Ipv6(Floating, Daemon, Setting, Scenario),
}

enum Outcome {
    Main(Run),
    Ipv6(Ipv6Run),
}

impl Job {
    fn name(self) -> String {
        match self {
            Job::Main(d, s, sc) => format!("{:<10} {:<4} {:<15}", d.name(), s.name(), sc.name()),
            Job::Ipv6(f, d, s, sc) => format!(
                "{:<10} {:<4} {:<15} {}",
                d.name(),
                s.name(),
                sc.name(),
                f.name()
            ),
        }
    }

    fn run(self, tools: &Tools, rep: usize, attempt: usize) -> Result<Outcome, String> {
        Ok(match self {
            Job::Main(d, s, sc) => Outcome::Main(Run {
                attempts: attempt,
                ..run_once(tools, d, s, sc, rep)?
            }),
            Job::Ipv6(f, d, s, sc) => {
                let mut r = run_ipv6_once(tools, f, d, s, sc, rep)?;
                r.v6.attempts = attempt;
                Outcome::Ipv6(r)
            }
        })
    }
}

impl Outcome {
    /// The run's figures, for the progress line.
    fn line(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1} ms"));
        match self {
            Outcome::Main(r) => format!(
                "outage {:>8.1} ms  dual {:>7.1} ms  flips {}  final {:?}{}",
                r.outage_ms,
                r.dual_ms,
                r.flips,
                r.final_holders,
                r.outage_restore_ms
                    .map_or(String::new(), |o| format!("  after restore {o:.1} ms"))
            ),
            Outcome::Ipv6(r) => format!(
                "IPv6 outage {:>8.1} ms  IPv4 outage {:>8}  IPv6 followed within {}  dual {:.1} ms  final {:?}",
                r.v6.outage_ms,
                opt(r.outage4_ms),
                opt(r.followed6_ms),
                r.v6.dual_ms,
                r.v6.final_holders
            ),
        }
    }
}

/// `make bench-soak`: the long flap soak alone. It replaces the previous
/// long soak in `target/bench/results.json` (when a bench has written one)
/// and re-renders the docs; it always writes `target/bench/soak.json`.
pub fn run_long_soak() -> ExitCode {
    let Some(tools) = tools("bench-soak") else {
        return ExitCode::FAILURE;
    };
    let length = Duration::from_secs(env_usize("BENCH_SOAK_SECS", 600) as u64);
    let command = "make bench-soak";
    let Some(soak) = soak_logged(&tools, length, command) else {
        return ExitCode::FAILURE;
    };
    let dir = crate::workspace_root().join("target/bench");
    save(&dir.join("soak.json"), &soak);
    let results_path = dir.join("results.json");
    if let Some(mut results) = std::fs::read_to_string(&results_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Results>(&t).ok())
    {
        results.soak.retain(|s| s.command != command);
        results.soak.push(soak.clone());
        save(&results_path, &results);
        write_docs(&results);
    }
    if soak.false_takeovers() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One soak at the 10 ms setting, its outcome on stderr.
fn soak_logged(tools: &Tools, length: Duration, command: &str) -> Option<Soak> {
    let hogs = env_usize("BENCH_HOGS", 8);
    eprintln!(
        "bench: flap soak {}s at {}: {} % frame loss, {hogs} CPU hogs",
        length.as_secs(),
        Setting::TenMs.title(),
        soak::LOSS_PERCENT
    );
    match run_soak(tools, Setting::TenMs, length, hogs, command) {
        Ok(s) => {
            eprintln!(
                "bench: soak {:.0}s: {} false take-overs (holder changes {}, logged take-overs {}, role changes {}), longest client gap {:.1} ms, holders at the end {:?}",
                s.seconds,
                s.false_takeovers(),
                s.holder_changes,
                s.takeovers,
                s.transitions,
                s.outage_max_ms,
                s.final_holders
            );
            for l in &s.transition_lines {
                eprintln!("bench:   {l}");
            }
            Some(s)
        }
        Err(e) => {
            eprintln!("bench: soak could not run: {e}");
            None
        }
    }
}

/// Writes `value` as JSON to `path` (under target/bench).
fn save(path: &Path, value: &impl serde::Serialize) {
    std::fs::create_dir_all(path.parent().expect("results live in a folder"))
        .expect("create target/bench");
    std::fs::write(
        path,
        serde_json::to_string_pretty(value).expect("serialize"),
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("bench: wrote {}", path.display());
}

/// The programs the bench runs; `None` (after one line) when it cannot run.
fn tools(task: &str) -> Option<Tools> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("{task}: needs root (it creates network namespaces): sudo make {task}");
        return None;
    }
    let tools = Tools {
        floatip: crate::floatip_bin(),
        keepalived: find_program("keepalived"),
        ucarp: find_program("ucarp"),
        etcd: etcd_binary(),
        ip: find_program("ip").expect("ip (iproute2) is needed"),
        nft: find_program("nft").expect("nft (nftables) is needed"),
    };
    if !tools.floatip.is_file() {
        eprintln!(
            "{task}: {} not found: run `cargo build --release` first or set FLOATIP_BIN",
            tools.floatip.display()
        );
        return None;
    }
    Some(tools)
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_list(key: &str) -> Option<Vec<String>> {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

/// True when the comma list in env `key` is unset or names `name`.
fn selected(key: &str, name: &str) -> bool {
    env_list(key).map_or(true, |o| o.iter().any(|x| x == name))
}

fn first_line_of(cmd: &Path, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| printed(&o).lines().next().unwrap_or("").to_string())
        .unwrap_or_else(|e| format!("({e})"))
}

fn machine(tools: &Tools) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        kernel,
        cpu_model,
        keepalived: tools
            .keepalived
            .as_ref()
            .map_or("missing".into(), |k| first_line_of(k, &["--version"])),
        ucarp: tools.ucarp.as_ref().map_or("missing".into(), |u| {
            // `ucarp --help` starts with "ucarp 1.5.2 - <date>".
            std::process::Command::new(u)
                .arg("--help")
                .output()
                .map(|o| {
                    printed(&o)
                        .lines()
                        .find(|l| l.starts_with("ucarp"))
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default()
        }),
        floatip: first_line_of(&tools.floatip, &["--version"]),
    }
}
