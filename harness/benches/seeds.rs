//! Seed throughput: what `clawsim run` does per seed (the default scenario on a profile, every
//! property judged), so the closing note can quote seeds per minute from a bench as well as from
//! the run's summary line.
//!
//! - `pool/two_workers`: batches of seeds through the pool `clawsim run --jobs 2` uses (two
//!   worker processes of the `clawsim` binary) — the harness issue's target, ≥ 5,000 seeds/min
//!   on a 2-core machine; criterion's throughput line is seeds per second.
//! - `seed_with_checks`: one seed, world and checkers, on the bench's own thread.
//! - `checks_only`: the checkers alone over one finished run, to show what they cost next to
//!   the world.

use clawsim::case::WorkloadKind;
use clawsim::properties::check;
use clawsim::seeds::{run_pool, run_seed, PoolOptions, SeedPlan, Workers};
use clawsim_sim::fs::MountProfile;
use clawsim_sim::world::{run_world, WorldConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};

/// Seeds per pool iteration: enough that starting the workers is a small part of it.
const POOL_BATCH: u64 = 400;

/// Runs seeds `start..start + POOL_BATCH` on two worker processes; returns the wall time.
fn pool_batch(start: u64) -> Duration {
    let plan = SeedPlan {
        start,
        count: Some(POOL_BATCH),
        profiles: MountProfile::ALL.to_vec(),
        shard: (0, 1),
    };
    let options = PoolOptions {
        design: clawsim_core::config::Design::V2,
        workers: Workers::Processes {
            exe: env!("CARGO_BIN_EXE_clawsim").into(),
            jobs: 2,
        },
        workload: WorkloadKind::Swarm,
        time_budget: None,
        check_determinism: false,
        stop: Default::default(),
    };
    let started = Instant::now();
    let mut violations = 0;
    run_pool(&plan, &options, |r| {
        violations += r.verdict.violations.len()
    })
    .unwrap();
    assert_eq!(violations, 0, "seeds {start}..: a property failed");
    started.elapsed()
}

fn pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(POOL_BATCH));
    let mut start = 0u64;
    let (mut seeds, mut wall) = (0u64, Duration::ZERO);
    group.bench_function("two_workers", |b| {
        b.iter_custom(|iters| {
            let elapsed: Duration = (0..iters)
                .map(|_| {
                    start += POOL_BATCH;
                    pool_batch(start)
                })
                .sum();
            seeds += iters * POOL_BATCH;
            wall += elapsed;
            elapsed
        })
    });
    group.finish();
    let per_min = seeds as f64 * 60.0 / wall.as_secs_f64().max(f64::MIN_POSITIVE);
    println!("pool/two_workers: {per_min:.0} seeds/min over {seeds} seeds");
}

fn one_thread(c: &mut Criterion) {
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
                WorkloadKind::Swarm,
                false,
            )
        })
    });
    let outcome = run_world(WorldConfig::default_scenario(7, MountProfile::Virtiofs));
    group.bench_function("checks_only", |b| b.iter(|| check(&outcome.record())));
    group.finish();
}

criterion_group!(harness, pool, one_thread);
criterion_main!(harness);
