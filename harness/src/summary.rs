//! The run summary: what a `clawsim run` covered and found, as a table for people and as JSON
//! for machines.
//!
//! It answers: what was run (seed range, shard, profiles, workload, jobs); how many seeds, how
//! much simulated time, how fast; whether each seed ran the same twice (when asked); which
//! faults struck and how often; how often each property was applied and in how many runs it
//! held; where crashes and I/O errors landed among the core's step kinds; and which seeds
//! failed, each with the command that replays it.

use crate::coverage::CATALOG;
use crate::properties::Property;
use crate::seeds::SeedResult;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

/// One failing seed, as the summary lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub seed: u64,
    pub profile: String,
    /// `§9.N name` of each failed property, or `determinism`.
    pub failed: Vec<String>,
    /// The first violation's words.
    pub first: String,
    /// The artifact folder, once written.
    pub artifact: Option<String>,
    /// The command that replays it: the artifact's shrunk case once saved, else the seed.
    pub replay: String,
}

/// What a run was asked to cover, as its summary reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunInfo {
    /// The first seed of the range.
    pub seed_start: u64,
    /// Seeds in the range before sharding; `None` for a run bounded by time.
    pub seed_count: Option<u64>,
    /// The time budget, seconds, when the run has one.
    pub time_budget_seconds: Option<f64>,
    /// `I/N`.
    pub shard: String,
    pub workload: String,
    pub profiles: Vec<String>,
    pub jobs: usize,
    /// Whether each seed ran twice and its trace hashes were compared.
    pub check_determinism: bool,
}

impl RunInfo {
    /// The range as `start..end` (end excluded), or `start..` when bounded by time.
    pub fn range(&self) -> String {
        match self.seed_count {
            Some(count) => format!(
                "{}..{}",
                self.seed_start,
                self.seed_start.wrapping_add(count)
            ),
            None => format!("{}..", self.seed_start),
        }
    }
}

/// Everything the run covered and found.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub run: RunInfo,
    pub seeds: u64,
    /// The lowest and highest seed that ran.
    pub seed_first: Option<u64>,
    pub seed_last: Option<u64>,
    /// Seeds whose second run's trace hash differed (with `check_determinism`).
    pub determinism_mismatches: u64,
    pub seeds_by_profile: BTreeMap<String, u64>,
    pub sim_ms: i64,
    pub steps: u64,
    pub wall: Duration,
    pub faults: BTreeMap<String, u64>,
    /// Per property: times applied, runs in which it held.
    pub checks: BTreeMap<Property, u64>,
    pub held_runs: BTreeMap<Property, u64>,
    /// Per property: cases it met and could not judge (`Verdict::skipped`), over all runs.
    pub skipped: BTreeMap<Property, u64>,
    /// Per step kind: runs with a crash / an I/O error landing in it.
    pub crash_runs: BTreeMap<String, u64>,
    pub io_error_runs: BTreeMap<String, u64>,
    /// Per situation of the coverage catalog: runs that reached it.
    pub reached_runs: BTreeMap<String, u64>,
    pub world_errors: u64,
    pub failures: Vec<Failure>,
}

impl Summary {
    /// Adds one seed's result.
    pub fn add(&mut self, result: &SeedResult) {
        self.seeds += 1;
        self.seed_first = Some(self.seed_first.map_or(result.seed, |s| s.min(result.seed)));
        self.seed_last = Some(self.seed_last.map_or(result.seed, |s| s.max(result.seed)));
        self.determinism_mismatches += u64::from(result.determinism_mismatch.is_some());
        *self
            .seeds_by_profile
            .entry(result.profile.name().into())
            .or_default() += 1;
        self.sim_ms += result.sim_ms;
        self.steps += result.steps;
        for (kind, count) in &result.fault_counts {
            *self.faults.entry(kind.clone()).or_default() += count;
        }
        for (property, count) in &result.verdict.checks {
            *self.checks.entry(*property).or_default() += count;
            let held = u64::from(result.verdict.property_held(*property));
            *self.held_runs.entry(*property).or_default() += held;
        }
        for (property, count) in &result.verdict.skipped {
            *self.skipped.entry(*property).or_default() += count;
        }
        self.add_landings(result);
        for name in &result.reached {
            *self.reached_runs.entry(name.clone()).or_default() += 1;
        }
        self.world_errors += u64::from(!result.errors.is_empty());
        if result.failed() {
            self.failures.push(failure_of(result));
        }
    }

    fn add_landings(&mut self, result: &SeedResult) {
        let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
        for landing in &result.landings {
            if seen.insert((&landing.class, &landing.step)) {
                let runs = match landing.class.as_str() {
                    "crash" => &mut self.crash_runs,
                    _ => &mut self.io_error_runs,
                };
                *runs.entry(landing.step.clone()).or_default() += 1;
            }
        }
    }

    /// Seeds per minute of wall time.
    pub fn seeds_per_min(&self) -> f64 {
        let minutes = self.wall.as_secs_f64() / 60.0;
        if minutes > 0.0 {
            self.seeds as f64 / minutes
        } else {
            0.0
        }
    }

    /// The number of failing seeds.
    pub fn violations(&self) -> usize {
        self.failures.len()
    }

    /// The table people read at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let run = &self.run;
        let _ = writeln!(
            out,
            "run              seeds {} shard {} profiles {} workload {} jobs {}",
            run.range(),
            run.shard,
            run.profiles.join(","),
            run.workload,
            run.jobs
        );
        let by_profile = join_counts(&self.seeds_by_profile);
        let _ = writeln!(out, "seeds            {} ({by_profile})", self.seeds);
        if let (Some(first), Some(last)) = (self.seed_first, self.seed_last) {
            let _ = writeln!(out, "seeds ran        {first} to {last}");
        }
        let _ = writeln!(out, "determinism      {}", self.determinism());
        let _ = writeln!(
            out,
            "simulated time   {:.1} h ({:.0}x wall time)",
            self.sim_ms as f64 / 3_600_000.0,
            self.sim_ms as f64 / 1_000.0 / self.wall.as_secs_f64().max(1e-9)
        );
        let _ = writeln!(out, "wall time        {:.1} s", self.wall.as_secs_f64());
        let _ = writeln!(out, "seeds/min        {:.0}", self.seeds_per_min());
        let _ = writeln!(out, "steps            {}", self.steps);
        let total_faults: u64 = self.faults.values().sum();
        let _ = writeln!(out, "faults injected  {total_faults}");
        for (kind, count) in &self.faults {
            let _ = writeln!(out, "  {kind:<22} {count:>8}");
        }
        let _ = writeln!(
            out,
            "properties       {:>10} {:>12} {:>12}",
            "checks", "runs held", "not judged"
        );
        for property in Property::ALL {
            let checks = self.checks.get(&property).copied().unwrap_or(0);
            let held = self.held_runs.get(&property).copied().unwrap_or(0);
            let skipped = self.skipped.get(&property).copied().unwrap_or(0);
            let name = property.to_string();
            let held = format!("{held}/{}", self.seeds);
            let _ = writeln!(out, "  {name:<22} {checks:>8} {held:>12} {skipped:>12}");
        }
        self.landing_table(&mut out);
        self.coverage_table(&mut out);
        let _ = writeln!(out, "violations       {}", self.violations());
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "  seed {} ({}): {} - {}\n    replay: {}",
                failure.seed,
                failure.profile,
                failure.failed.join(", "),
                failure.first,
                failure.replay
            );
        }
        out
    }

    /// The determinism check's result in words.
    pub fn determinism(&self) -> String {
        if !self.run.check_determinism {
            "not checked (--check-determinism runs each seed twice)".to_string()
        } else if self.determinism_mismatches == 0 {
            format!(
                "held: every one of {} seeds gave the same trace twice",
                self.seeds
            )
        } else {
            format!(
                "FAILED: {} of {} seeds gave a different trace the second time",
                self.determinism_mismatches, self.seeds
            )
        }
    }

    fn landing_table(&self, out: &mut String) {
        let steps: BTreeSet<&String> = self
            .crash_runs
            .keys()
            .chain(self.io_error_runs.keys())
            .collect();
        let _ = writeln!(
            out,
            "where faults landed (runs)  {:>8} {:>9}",
            "crash", "io-error"
        );
        for step in steps {
            let crash = self.crash_runs.get(step).copied().unwrap_or(0);
            let io = self.io_error_runs.get(step).copied().unwrap_or(0);
            let _ = writeln!(out, "  {step:<25} {crash:>8} {io:>9}");
        }
    }

    /// How many seeds reached each situation of the catalog; a situation no seed reached is
    /// marked, since no property was tested there.
    fn coverage_table(&self, out: &mut String) {
        let _ = writeln!(out, "coverage (runs that reached it)");
        for situation in CATALOG {
            let runs = self.reached_runs.get(situation.name).copied().unwrap_or(0);
            let mark = if runs == 0 { "  NEVER REACHED" } else { "" };
            let _ = writeln!(
                out,
                "  {:<44} {runs:>8}/{}{mark}",
                situation.name, self.seeds
            );
        }
    }

    /// The catalog's situations no seed reached, in catalog order.
    pub fn never_reached(&self) -> Vec<&'static str> {
        CATALOG
            .iter()
            .filter(|s| !self.reached_runs.contains_key(s.name))
            .map(|s| s.name)
            .collect()
    }

    /// The JSON summary (`--summary-json`).
    pub fn json(&self, build: &str) -> serde_json::Value {
        let names = |map: &BTreeMap<Property, u64>| -> BTreeMap<&'static str, u64> {
            map.iter().map(|(p, n)| (p.name(), *n)).collect()
        };
        let determinism = if self.run.check_determinism {
            serde_json::json!({
                "checked": true,
                "held": self.determinism_mismatches == 0,
                "seeds": self.seeds,
                "mismatches": self.determinism_mismatches,
            })
        } else {
            serde_json::json!({ "checked": false })
        };
        serde_json::json!({
            "build": build,
            "run": self.run,
            "seed_start": self.run.seed_start,
            "seed_range": self.run.range(),
            "shard": self.run.shard,
            "workload": self.run.workload,
            "profiles": self.run.profiles,
            "jobs": self.run.jobs,
            "seed_first": self.seed_first,
            "seed_last": self.seed_last,
            "determinism": determinism,
            "seeds": self.seeds,
            "seeds_by_profile": self.seeds_by_profile,
            "violations": self.violations(),
            "failures": self.failures,
            "seeds_per_min": self.seeds_per_min(),
            "sim_seconds": self.sim_ms as f64 / 1_000.0,
            "wall_seconds": self.wall.as_secs_f64(),
            "steps": self.steps,
            "faults": self.faults,
            "properties": names(&self.checks),
            "properties_held_runs": names(&self.held_runs),
            "properties_not_judged": names(&self.skipped),
            "fault_landings": {
                "crash": self.crash_runs,
                "io_error": self.io_error_runs,
            },
            "world_errors": self.world_errors,
            "coverage": CATALOG
                .iter()
                .map(|s| (s.name, self.reached_runs.get(s.name).copied().unwrap_or(0)))
                .collect::<BTreeMap<_, _>>(),
            "never_reached": self.never_reached(),
        })
    }
}

fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn failure_of(result: &SeedResult) -> Failure {
    let mut failed: Vec<String> = result
        .verdict
        .failed()
        .iter()
        .map(|p| p.to_string())
        .collect();
    let mut first = result
        .verdict
        .violations
        .first()
        .map(|v| v.detail.clone())
        .unwrap_or_default();
    if let Some(again) = result.determinism_mismatch {
        failed.push("determinism".into());
        if first.is_empty() {
            first = format!(
                "trace hash {:016x} then {again:016x} for the same seed",
                result.trace_hash
            );
        }
    }
    Failure {
        seed: result.seed,
        profile: result.profile.name().into(),
        failed,
        first,
        artifact: None,
        replay: crate::artifact::seed_replay_command(result),
    }
}
