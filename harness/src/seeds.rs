//! Running many seeds: which seeds and profiles a run covers, one world per seed in this
//! process or in worker processes, and what each seed's run yields for the summary.
//!
//! A seed runs the world's default scenario on one profile: with `p` profiles, seed `s` runs on
//! profile `s mod p`, so every profile gets a share of any seed range, and a seed's profile
//! does not depend on how the range was split. Worlds share nothing: each world is built from
//! its seed, run to its end on one thread and reduced to plain results, so where it ran changes
//! nothing about it (the determinism test in sim proves worlds on parallel threads match worlds
//! run one after another, and `harness/tests/workers.rs` that worker processes match this
//! process).
//!
//! A shard `I/N` lets N machines split one range without talking to each other. The range is
//! cut into rounds of `p` consecutive seeds — one seed per profile — and shard I takes every
//! N-th round, starting at the I-th. Taking every N-th *seed* instead would give a shard one
//! profile only whenever N is a multiple of `p` (seeds `I, I+N, I+2N, ...` all have the same
//! residue mod `p`); a round holds every profile, so every shard with a round covers them all.
//!
//! The first seed may be a number, `random`, or a git commit hash folded to 64 bits (as
//! TigerBeetle's simulator takes a commit as its seed, so CI runs a new range per commit and
//! anyone can run that range again).

use crate::case::{Case, WorkloadKind};
use crate::landing::{fault_landings, Landing};
use crate::properties::{check, Verdict};
use clawsim_core::config::Design;
use clawsim_sim::fs::MountProfile;
use clawsim_sim::trace::TraceMode;
use clawsim_sim::world::{design_by_name, profile_by_name};
use clawsim_sim::world::{run_world, RunOutcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
        let round_len = self.round_len();
        let round = (n / round_len).checked_mul(count)?.checked_add(index)?;
        let offset = round.checked_mul(round_len)?.checked_add(n % round_len)?;
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
        let round_len = self.round_len();
        self.count.map(|total| {
            let cycle = round_len.saturating_mul(count);
            let (cycles, rest) = (total / cycle, total % cycle);
            let last = rest
                .saturating_sub(index.saturating_mul(round_len))
                .min(round_len);
            cycles * round_len + last
        })
    }

    /// Seeds per round: one per profile.
    fn round_len(&self) -> u64 {
        (self.profiles.len() as u64).max(1)
    }

    /// True when a bounded plan has no seed for this machine.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// How a run's first seed is chosen (`--seed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartSeed {
    /// A number.
    Fixed(u64),
    /// Drawn afresh for this run, and printed first so the run can be repeated.
    Random,
    /// The commit `git rev-parse HEAD` names, folded (see [`fold_commit`]).
    HeadCommit,
    /// A full git commit hash (40 hex digits), folded (see [`fold_commit`]).
    Commit(String),
}

impl std::str::FromStr for StartSeed {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "random" => Ok(Self::Random),
            "commit" => Ok(Self::HeadCommit),
            _ if text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit()) => {
                Ok(Self::Commit(text.to_ascii_lowercase()))
            }
            _ => text.parse().map(Self::Fixed).map_err(|_| {
                format!(
                    "seed {text:?}: expected a number, `random`, `commit`, or a 40-hex-digit git \
                     commit hash"
                )
            }),
        }
    }
}

/// A 40-hex-digit git commit hash folded to a seed: its 160 bits cut into 64-bit words (the last
/// one 32 bits) and XORed, so every digit of the hash counts.
pub fn fold_commit(hash: &str) -> Result<u64, String> {
    let hash = hash.trim();
    if hash.len() != 40 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{hash:?} is not a 40-hex-digit git commit hash"));
    }
    let word = |range: std::ops::Range<usize>| u64::from_str_radix(&hash[range], 16).unwrap_or(0);
    Ok(word(0..16) ^ word(16..32) ^ word(32..40))
}

/// What one seed yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    #[serde(with = "profile_by_name")]
    pub profile: MountProfile,
    pub workload: WorkloadKind,
    /// The storage design it ran under (its artifact's case names it).
    #[serde(
        default,
        with = "design_by_name",
        skip_serializing_if = "Design::is_v2"
    )]
    pub design: Design,
    pub verdict: Verdict,
    pub trace_hash: u64,
    /// The second run's hash when it differed (with `--check-determinism`).
    pub determinism_mismatch: Option<u64>,
    pub fault_counts: BTreeMap<String, u64>,
    pub landings: Vec<Landing>,
    /// The coverage catalog's situations the run reached.
    #[serde(default)]
    pub reached: Vec<String>,
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
    run_seed_with(seed, profile, workload, Design::V2, check_determinism)
}

/// [`run_seed`] with the session files under `design`: the same case, another storage.
pub fn run_seed_with(
    seed: u64,
    profile: MountProfile,
    workload: WorkloadKind,
    design: Design,
    check_determinism: bool,
) -> SeedResult {
    let mut case = Case::for_seed(seed, profile, workload);
    case.design = (!design.is_v2()).then(|| design.name.to_string());
    let (outcome, verdict) = run_case(&case).expect("a seed's case is a valid case");
    let determinism_mismatch = check_determinism
        .then(|| {
            let config = case.to_config(TraceMode::HashOnly).expect("valid case");
            run_world(config).trace_hash
        })
        .filter(|again| *again != outcome.trace_hash);
    let landings = fault_landings(&outcome);
    SeedResult {
        seed,
        profile,
        workload,
        design,
        reached: crate::coverage::reached(&outcome, &landings),
        landings,
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
    /// Storage design every seed runs under.
    pub design: Design,
    /// Stop taking new seeds after this long.
    pub time_budget: Option<Duration>,
    pub check_determinism: bool,
    /// Set (by whoever reads the results) to stop taking new seeds; seeds already running
    /// still report (`clawsim run --fail-fast`).
    pub stop: Arc<AtomicBool>,
}

impl PoolOptions {
    /// The request for the plan's `n`-th seed, unless the plan or the time budget is spent.
    pub(crate) fn request(&self, plan: &SeedPlan, n: u64, started: Instant) -> Option<SeedRequest> {
        if self.stop.load(Ordering::Relaxed)
            || self.time_budget.is_some_and(|b| started.elapsed() >= b)
        {
            return None;
        }
        let (seed, profile) = plan.nth(n)?;
        Some(SeedRequest {
            seed,
            profile,
            workload: self.workload,
            design: self.design,
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
    #[serde(
        default,
        with = "design_by_name",
        skip_serializing_if = "Design::is_v2"
    )]
    pub design: Design,
    pub check_determinism: bool,
}

impl SeedRequest {
    pub fn run(&self) -> SeedResult {
        run_seed_with(
            self.seed,
            self.profile,
            self.workload,
            self.design,
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
        // Rounds of three (one per profile): shard 0 takes 100..103 and 109, shard 2 106..109.
        assert_eq!(plan(Some(10), (0, 3)).len(), Some(4));
        assert_eq!(plan(Some(10), (2, 3)).len(), Some(3));
        assert!(plan(Some(1), (1, 2)).is_empty());
    }

    /// The bug this pins down: shards took every N-th seed, and a seed's profile is its
    /// residue mod the number of profiles, so with N a multiple of 3 each shard ran one profile.
    /// Method: for many shard counts and profile sets, every shard's seeds are listed; together
    /// they must be the whole range once, `len` must count them, and each shard that holds at
    /// least a round must cover every profile, with the profile each seed has unsharded.
    #[test]
    fn every_shard_covers_every_profile_and_shards_partition_the_range() {
        let profile_sets = [
            MountProfile::ALL.to_vec(),
            vec![MountProfile::Bind, MountProfile::PowerLoss],
            vec![MountProfile::Virtiofs],
        ];
        for profiles in profile_sets {
            let p = profiles.len() as u64;
            for count in 1..=9u64 {
                for total in [0, 1, p * count, p * count * 2 + 1, 100] {
                    let plan_of = |index| SeedPlan {
                        start: 7,
                        count: Some(total),
                        profiles: profiles.clone(),
                        shard: (index, count),
                    };
                    let whole = SeedPlan {
                        shard: (0, 1),
                        ..plan_of(0)
                    };
                    let mut all = Vec::new();
                    for index in 0..count {
                        let shard = plan_of(index);
                        let seeds: Vec<(u64, MountProfile)> =
                            (0..).map_while(|n| shard.nth(n)).collect();
                        assert_eq!(shard.len(), Some(seeds.len() as u64), "{shard:?}");
                        let covered: std::collections::BTreeSet<_> =
                            seeds.iter().map(|s| s.1.name()).collect();
                        if seeds.len() as u64 >= p {
                            assert_eq!(covered.len() as u64, p, "{shard:?} ran {covered:?}");
                        }
                        all.extend(seeds);
                    }
                    all.sort_by_key(|s| s.0);
                    let unsharded: Vec<_> = (0..).map_while(|n| whole.nth(n)).collect();
                    assert_eq!(all, unsharded, "{count} shards of {total} seeds");
                    assert_eq!(unsharded.len() as u64, total);
                }
            }
        }
    }

    #[test]
    fn a_start_seed_is_a_number_random_or_a_commit() {
        assert_eq!("42".parse(), Ok(StartSeed::Fixed(42)));
        assert_eq!("random".parse(), Ok(StartSeed::Random));
        assert_eq!("commit".parse(), Ok(StartSeed::HeadCommit));
        let hash = "0123456789ABCDEFfedcba987654321000112233";
        assert_eq!(
            hash.parse(),
            Ok(StartSeed::Commit(hash.to_ascii_lowercase()))
        );
        assert!("soon".parse::<StartSeed>().is_err());
        // 0123456789abcdef ^ fedcba9876543210 ^ 00112233.
        assert_eq!(fold_commit(hash), Ok(0xffff_ffff_ffee_ddcc));
        assert_ne!(
            fold_commit("1123456789abcdeffedcba987654321000112233"),
            fold_commit(hash),
            "every digit counts"
        );
        assert!(fold_commit("abc").is_err());
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
