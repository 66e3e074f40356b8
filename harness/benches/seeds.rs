//! Seed throughput: what `clawsim run` does per seed (the default scenario on a profile, every
//! property judged), so the closing note can quote seeds per minute from a bench as well as from
//! the run's summary line.
//!
//! - `seed_with_checks`: one seed, world and checkers, cycling through the profiles.
//! - `checks_only`: the checkers alone over one finished run, to show what they cost next to
//!   the world.

use clawsim::case::WorkloadKind;
use clawsim::properties::check;
use clawsim::seeds::run_seed;
use clawsim_sim::fs::MountProfile;
use clawsim_sim::world::{run_world, WorldConfig};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

fn report(runs: u64) {
    let started = Instant::now();
    for seed in 0..runs {
        run_seed(
            seed,
            MountProfile::ALL[(seed % 3) as usize],
            WorkloadKind::Default,
            false,
        );
    }
    let per_min = runs as f64 / started.elapsed().as_secs_f64() * 60.0;
    println!("seed_with_checks: {per_min:.0} seeds/min on one thread");
}

fn benches(c: &mut Criterion) {
    report(10);
    let mut group = c.benchmark_group("harness");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut seed = 0u64;
    group.bench_function("seed_with_checks", |b| {
        b.iter(|| {
            seed += 1;
            run_seed(
                seed,
                MountProfile::ALL[(seed % 3) as usize],
                WorkloadKind::Default,
                false,
            )
        })
    });
    let outcome = run_world(WorldConfig::default_scenario(7, MountProfile::Virtiofs));
    group.bench_function("checks_only", |b| b.iter(|| check(&outcome)));
    group.finish();
}

criterion_group!(harness, benches);
criterion_main!(harness);
