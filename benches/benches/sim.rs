//! The simulator on the default scenario (`WorldConfig::default_scenario`: one to three chats,
//! a handful of messages over ten simulated minutes with up to four faults, then the quiet
//! period of `settle_ms`, 15.4 simulated minutes), one seed per iteration, profiles cycling
//! bind / virtiofs / power-loss as `clawsim run` cycles them, traces kept as a hash only (one
//! core, the system allocator; `harness/benches/seeds.rs` measures `clawsim run`'s pool):
//! - `sim_default_scenario/seed`: wall time per seed (criterion), i.e. seeds per second;
//! - derived over every seed the bench ran, printed after the group and appended to
//!   `target/criterion/sim-figures.log` for `bench-report`: world steps per wall second,
//!   simulated seconds per wall second, seeds per minute, and the process's peak RSS.
//!
//! BASELINE.md has no simulator row: the reference has no simulator. One core runs the world.

use clawsim_benches::raw::criterion_dir;
use clawsim_benches::run_mode::{is_full_run, is_profiling};
use clawsim_sim::fs::MountProfile;
use clawsim_sim::trace::TraceMode;
use clawsim_sim::world::{run_world, WorldConfig};
use criterion::{Criterion, SamplingMode, Throughput};
use std::io::Write;
use std::time::{Duration, Instant};

/// What the seeds run so far added up to.
#[derive(Debug, Default)]
struct Totals {
    seeds: u64,
    steps: u64,
    sim_ms: i64,
    wall: Duration,
}

fn default_scenario(seed: u64) -> WorldConfig {
    let profile = MountProfile::ALL[(seed % MountProfile::ALL.len() as u64) as usize];
    let mut config = WorldConfig::default_scenario(seed, profile);
    config.trace_mode = TraceMode::HashOnly;
    config
}

/// Runs seed `seed` and adds it to `totals`; returns its wall time.
fn run_seed(seed: u64, totals: &mut Totals) -> Duration {
    let started = Instant::now();
    let outcome = run_world(default_scenario(seed));
    let wall = started.elapsed();
    assert!(
        outcome.errors.is_empty(),
        "seed {seed}: the world itself failed: {:?}",
        outcome.errors
    );
    totals.seeds += 1;
    totals.steps += outcome.steps;
    totals.sim_ms += outcome.sim_ms;
    totals.wall += wall;
    wall
}

/// Peak resident set of this process (VmHWM), KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn report(totals: &Totals) {
    let wall_s = totals.wall.as_secs_f64().max(f64::MIN_POSITIVE);
    let line = format!(
        "default_scenario seeds {} steps_per_s {:.0} sim_s_per_wall_s {:.0} seeds_per_min {:.0} \
         peak_rss_kib {}",
        totals.seeds,
        totals.steps as f64 / wall_s,
        totals.sim_ms as f64 / 1_000.0 / wall_s,
        totals.seeds as f64 * 60.0 / wall_s,
        peak_rss_kib()
    );
    println!("{line}");
    if !is_full_run() || is_profiling() {
        return;
    }
    let dir = criterion_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("sim-figures.log"))
        {
            let _ = writeln!(log, "{line}");
        }
    }
}

fn default_scenario_seeds(c: &mut Criterion) {
    let mut totals = Totals::default();
    let mut group = c.benchmark_group("sim_default_scenario");
    group
        .throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(20));
    let mut seed = 0;
    group.bench_function("seed", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    seed += 1;
                    run_seed(seed, &mut totals)
                })
                .sum()
        })
    });
    group.finish();
    report(&totals);
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .configure_from_args();
    default_scenario_seeds(&mut c);
    c.final_summary();
}
