//! Where a seed runs changes nothing about it: worker processes (`clawsim run --jobs J`) return
//! exactly what this process computes for the same seeds, every seed of the plan once; a worker
//! that dies is reported with the seed it was running and how to replay it; a spent time budget
//! starts no seed.

use clawsim::case::WorkloadKind;
use clawsim::seeds::{run_pool, PoolOptions, SeedPlan, SeedResult, Workers};
use clawsim_sim::fs::MountProfile;
use std::path::PathBuf;
use std::time::Duration;

fn plan(count: u64) -> SeedPlan {
    SeedPlan {
        start: 40,
        count: Some(count),
        profiles: MountProfile::ALL.to_vec(),
        shard: (0, 1),
    }
}

fn options(workers: Workers) -> PoolOptions {
    PoolOptions {
        design: clawsim_core::config::Design::V2,
        workers,
        workload: WorkloadKind::Swarm,
        time_budget: None,
        check_determinism: false,
        stop: Default::default(),
    }
}

fn run(plan: &SeedPlan, options: &PoolOptions) -> Result<Vec<SeedResult>, String> {
    let mut results = Vec::new();
    run_pool(plan, options, |result| results.push(result))?;
    results.sort_by_key(|r| r.seed);
    Ok(results)
}

fn processes(exe: impl Into<PathBuf>, jobs: usize) -> Workers {
    Workers::Processes {
        exe: exe.into(),
        jobs,
    }
}

#[test]
fn worker_processes_return_what_this_process_computes_for_every_seed_once() {
    let plan = plan(5);
    let here = run(&plan, &options(Workers::InProcess)).unwrap();
    let there = run(&plan, &options(processes(env!("CARGO_BIN_EXE_clawsim"), 2))).unwrap();
    let seeds: Vec<u64> = there.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, (40..45).collect::<Vec<_>>());
    assert_eq!(here, there);
}

#[test]
fn a_worker_that_dies_is_reported_with_its_seed_and_a_replay_command() {
    // `/bin/false` may exit before or after the pool writes seed 40 to it (a broken pipe, or
    // its output ending); the report is the same either way. `harness/src/workers.rs` tests
    // each order, and the other ways a worker can fail, deterministically.
    let profile = MountProfile::ALL[40 % MountProfile::ALL.len()].name();
    let error = run(&plan(4), &options(processes("/bin/false", 1))).unwrap_err();
    assert!(
        error.contains(&format!("seed 40 (profile {profile})")),
        "{error}"
    );
    assert!(
        error.contains(&format!(" replay 40 --profile {profile} --workload swarm`")),
        "{error}"
    );
}

#[test]
fn a_spent_time_budget_starts_no_seed() {
    let mut options = options(processes(env!("CARGO_BIN_EXE_clawsim"), 2));
    options.time_budget = Some(Duration::ZERO);
    assert_eq!(run(&plan(4), &options).unwrap(), Vec::new());
}
