//! Running many seeds: which seeds and profiles a run covers, one world per seed in this
//! process or in worker processes, and what each seed's run yields for the summary.
//!
//! A seed runs the world's default scenario on one profile: with several profiles, seed `s`
//! runs on profile `s mod n`, so every profile gets a share of any seed range. Worlds share
//! nothing: each world is built from its seed, run to its end on one thread and reduced to
//! plain results, so where it ran changes nothing about it (the determinism test in sim proves
//! worlds on parallel threads match worlds run one after another, and
//! `harness/tests/workers.rs` that worker processes match this process). A shard `I/N` takes every N-th seed of the range, starting at the I-th, so N
//! machines can split one range without talking to each other.

use crate::case::{Case, WorkloadKind};
use crate::landing::{fault_landings, Landing};
use crate::properties::{check, Verdict};
use clawsim_sim::fs::MountProfile;
use clawsim_sim::trace::TraceMode;
use clawsim_sim::world::profile_by_name;
use clawsim_sim::world::{run_world, RunOutcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Which seeds a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPlan {
    /// The first seed.
    pub start: u64,
    /// How many seeds of the range (before sharding); `None` runs until the time budget ends.
    pub count: Option<u64>,
    /// Profiles the seeds cycle through.
    pub profiles: Vec<MountProfile>,
    /// `(index, count)`: this machine runs seeds whose offset is `index` modulo `count`.
    pub shard: (u64, u64),
}

impl SeedPlan {
    /// The `n`-th seed this machine runs, and its profile; `None` past the end of the range.
    pub fn nth(&self, n: u64) -> Option<(u64, MountProfile)> {
        let (index, count) = self.shard;
        let offset = n.checked_mul(count)?.checked_add(index)?;
        if self.count.is_some_and(|total| offset >= total) {
            return None;
        }
        let seed = self.start.wrapping_add(offset);
        let profile = self.profiles[(seed % self.profiles.len() as u64) as usize];
        Some((seed, profile))
    }

    /// How many seeds this machine runs, when the range is bounded.
    pub fn len(&self) -> Option<u64> {
        let (index, count) = self.shard;
        self.count
            .map(|total| total.saturating_sub(index).div_ceil(count))
    }

    /// True when a bounded plan has no seed for this machine.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// What one seed yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    #[serde(with = "profile_by_name")]
    pub profile: MountProfile,
    pub workload: WorkloadKind,
    pub verdict: Verdict,
    pub trace_hash: u64,
    /// The second run's hash when it differed (with `--check-determinism`).
    pub determinism_mismatch: Option<u64>,
    pub fault_counts: BTreeMap<String, u64>,
    pub landings: Vec<Landing>,
    pub steps: u64,
    pub sim_ms: i64,
    /// Problems of the world itself (setup failed, step bound hit).
    pub errors: Vec<String>,
}

impl SeedResult {
    /// True when the seed needs a person's attention.
    pub fn failed(&self) -> bool {
        !self.verdict.held() || self.determinism_mismatch.is_some()
    }
}

/// Runs one case and judges it.
pub fn run_case(case: &Case) -> Result<(RunOutcome, Verdict), String> {
    let outcome = run_world(case.to_config(TraceMode::Full)?);
    let verdict = check(&outcome.record());
    Ok((outcome, verdict))
}

/// Runs seed `seed` on `profile` with workload `workload`, judged; optionally twice.
pub fn run_seed(
    seed: u64,
    profile: MountProfile,
    workload: WorkloadKind,
    check_determinism: bool,
) -> SeedResult {
    let case = Case::for_seed(seed, profile, workload);
    let (outcome, verdict) = run_case(&case).expect("a seed's case is a valid case");
    let determinism_mismatch = check_determinism
        .then(|| {
            let config = case.to_config(TraceMode::HashOnly).expect("valid case");
            run_world(config).trace_hash
        })
        .filter(|again| *again != outcome.trace_hash);
    SeedResult {
        seed,
        profile,
        workload,
        landings: fault_landings(&outcome),
        verdict,
        trace_hash: outcome.trace_hash,
        determinism_mismatch,
        fault_counts: outcome.fault_counts,
        steps: outcome.steps,
        sim_ms: outcome.sim_ms,
        errors: outcome.errors,
    }
}

/// Where a pool runs its worlds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workers {
    /// One world after another on the calling thread.
    InProcess,
    /// `jobs` child processes of the `clawsim` executable at `exe` (`clawsim worker`), one
    /// world at a time each (see [`crate::workers`]).
    Processes { exe: PathBuf, jobs: usize },
}

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub workers: Workers,
    pub workload: WorkloadKind,
    /// Stop taking new seeds after this long.
    pub time_budget: Option<Duration>,
    pub check_determinism: bool,
}

impl PoolOptions {
    /// The request for the plan's `n`-th seed, unless the plan or the time budget is spent.
    pub(crate) fn request(&self, plan: &SeedPlan, n: u64, started: Instant) -> Option<SeedRequest> {
        if self.time_budget.is_some_and(|b| started.elapsed() >= b) {
            return None;
        }
        let (seed, profile) = plan.nth(n)?;
        Some(SeedRequest {
            seed,
            profile,
            workload: self.workload,
            check_determinism: self.check_determinism,
        })
    }
}

/// One seed to run, as a worker process receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRequest {
    pub seed: u64,
    #[serde(with = "profile_by_name")]
    pub profile: MountProfile,
    pub workload: WorkloadKind,
    pub check_determinism: bool,
}

impl SeedRequest {
    pub fn run(&self) -> SeedResult {
        run_seed(
            self.seed,
            self.profile,
            self.workload,
            self.check_determinism,
        )
    }
}

/// Runs the plan's seeds, handing each result to `on_result` on the calling thread as it
/// arrives (in completion order). Fails only when a worker process could not be started or
/// died; the error names the seed it was running.
pub fn run_pool(
    plan: &SeedPlan,
    options: &PoolOptions,
    mut on_result: impl FnMut(SeedResult),
) -> Result<(), String> {
    match &options.workers {
        Workers::InProcess => {
            let started = Instant::now();
            for n in 0.. {
                let Some(request) = options.request(plan, n, started) else {
                    break;
                };
                on_result(request.run());
            }
            Ok(())
        }
        Workers::Processes { exe, jobs } => {
            crate::workers::run_pool(plan, options, exe, *jobs, on_result)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(count: Option<u64>, shard: (u64, u64)) -> SeedPlan {
        SeedPlan {
            start: 100,
            count,
            profiles: MountProfile::ALL.to_vec(),
            shard,
        }
    }

    #[test]
    fn shards_split_a_range_without_overlap_or_gap() {
        let whole: Vec<u64> = (0..)
            .map_while(|n| plan(Some(10), (0, 1)).nth(n))
            .map(|s| s.0)
            .collect();
        assert_eq!(whole, (100..110).collect::<Vec<_>>());
        let mut shards: Vec<u64> = (0..3)
            .flat_map(|i| {
                (0..)
                    .map_while(move |n| plan(Some(10), (i, 3)).nth(n))
                    .map(|s| s.0)
            })
            .collect();
        shards.sort_unstable();
        assert_eq!(shards, whole);
        assert_eq!(plan(Some(10), (0, 3)).len(), Some(4));
        assert_eq!(plan(Some(10), (2, 3)).len(), Some(3));
        assert!(plan(Some(1), (1, 2)).is_empty());
    }

    #[test]
    fn seeds_cycle_through_the_profiles() {
        let profiles: Vec<MountProfile> = (0..3)
            .filter_map(|n| plan(None, (0, 1)).nth(n))
            .map(|s| s.1)
            .collect();
        assert_eq!(profiles.len(), 3);
        let distinct: std::collections::BTreeSet<_> = profiles.iter().collect();
        assert_eq!(distinct.len(), 3);
    }
}
