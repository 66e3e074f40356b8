//! Prints the results table of the latest `cargo bench -p clawsim-benches` run (markdown, as in
//! benches/RESULTS.md): `cargo run --release -p clawsim-benches --bin bench-report`.

use clawsim_benches::raw::criterion_dir;
use clawsim_benches::report::{read_commit_rates, read_measured, render, ReportInput};

fn main() {
    let dir = criterion_dir();
    let measured = read_measured(&dir).unwrap_or_else(|e| {
        eprintln!(
            "cannot read {}: {e} (run `cargo bench -p clawsim-benches` first)",
            dir.display()
        );
        std::process::exit(1);
    });
    let log = std::fs::read_to_string(dir.join("disk-commit-rate.log")).unwrap_or_default();
    let commit_rates = read_commit_rates(&log);
    let machine = describe_machine();
    let sim_log = std::fs::read_to_string(dir.join("sim-figures.log")).unwrap_or_default();
    print!(
        "{}",
        render(&ReportInput {
            measured: &measured,
            commit_rates: &commit_rates,
            machine: &machine,
            sim_figures: sim_log.lines().last(),
        })
    );
}

/// Cores, memory, CPU model, SQLite version and the load average when the report was made.
fn describe_machine() -> String {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = read("/proc/meminfo");
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{cores} cores ({cpu}), {mem_gib:.0} GiB, SQLite {} (rusqlite, bundled), load average \
         now {}",
        rusqlite::version(),
        read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
