//! World throughput: how much protocol time the simulator covers per wall second.
//!
//! - `one_session_hour`: one chat, a message every five minutes, default intervals, no faults,
//!   one simulated hour (the container runs, polls every second, then idles out). The target
//!   is ≥ 10,000× simulated time per wall time.
//! - `default_scenario`: the default scenario (one to three chats, ten minutes of activity with
//!   faults, thirty quiet minutes), one seed per iteration: seeds per second.
//!
//! Besides criterion's timings, each bench prints its derived figures (steps/s, simulated
//! seconds per wall second, seeds/s) and the process's peak RSS (VmHWM), so the closing note of
//! a change can quote them.

use clawsim_sim::faults::FaultPlan;
use clawsim_sim::fs::MountProfile;
use clawsim_sim::rng::SimRng;
use clawsim_sim::tape::SeededChoices;
use clawsim_sim::trace::TraceMode;
use clawsim_sim::workload::{UserMessage, Workload};
use clawsim_sim::world::{run_world, WorldConfig};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const HOUR_MS: i64 = 3_600_000;

fn one_session_hour(seed: u64) -> WorldConfig {
    let mut workload = Workload::generate(&mut SeededChoices::new(SimRng::new(seed)), 1, 0, 1);
    workload.chats[0].per_thread = false;
    workload.messages = (0..12)
        .map(|i| UserMessage {
            at_ms: i * 5 * 60_000,
            chat: 0,
            thread_id: None,
            sender: "u0".into(),
            sender_id: "id0".into(),
            text: format!("m{i} hello"),
            form: Default::default(),
        })
        .collect();
    let mut config = WorldConfig::new(
        seed,
        MountProfile::Bind,
        workload,
        FaultPlan::none(),
        HOUR_MS,
    );
    config.quiet_ms = 0;
    config.trace_mode = TraceMode::HashOnly;
    config
}

fn default_scenario(seed: u64) -> WorldConfig {
    let profile = MountProfile::ALL[(seed % 3) as usize];
    let mut config = WorldConfig::default_scenario(seed, profile);
    config.trace_mode = TraceMode::HashOnly;
    config
}

/// Peak resident set of this process, from /proc/self/status.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `make(seed)` for `runs` seeds outside criterion and prints the derived figures.
fn report(name: &str, runs: u64, make: fn(u64) -> WorldConfig) {
    let started = Instant::now();
    let (mut steps, mut sim_ms) = (0u64, 0i64);
    for seed in 0..runs {
        let outcome = run_world(make(seed));
        assert!(
            outcome.errors.is_empty(),
            "{name} seed {seed}: {:?}",
            outcome.errors
        );
        steps += outcome.steps;
        sim_ms += outcome.sim_ms;
    }
    let wall_s = started.elapsed().as_secs_f64();
    println!(
        "{name}: {runs} runs in {wall_s:.2} s: {:.0} steps/s, {:.0} simulated s per wall s, \
         {:.1} seeds/s, peak RSS {} KiB",
        steps as f64 / wall_s,
        sim_ms as f64 / 1_000.0 / wall_s,
        runs as f64 / wall_s,
        peak_rss_kib().unwrap_or(0)
    );
}

fn benches(c: &mut Criterion) {
    report("one_session_hour", 5, one_session_hour);
    report("default_scenario", 20, default_scenario);
    let mut group = c.benchmark_group("world");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut seed = 0;
    group.bench_function("one_session_hour", |b| {
        b.iter(|| {
            seed += 1;
            run_world(one_session_hour(seed))
        })
    });
    group.bench_function("default_scenario", |b| {
        b.iter(|| {
            seed += 1;
            run_world(default_scenario(seed))
        })
    });
    group.finish();
}

criterion_group!(world, benches);
criterion_main!(world);
