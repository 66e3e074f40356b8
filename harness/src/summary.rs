//! The run summary: what a `clawsim run` covered and found, as a table for people and as JSON
//! for machines.
//!
//! It answers: what was run (seed range, shard, profiles, workload, jobs); how many seeds, how
//! much simulated time, how fast; whether each seed ran the same twice (when asked); which
//! faults struck and how often; how often each property was applied and in how many runs it
//! held; where crashes and I/O errors landed among the core's step kinds; and which seeds
//! failed, each with the command that replays it.
//!
//! It holds nothing per seed, so a run of hours keeps it the same size: counts keyed by
//! profile, fault kind, property, step kind and catalog situation, and the failing seeds only
//! up to [`FAILURES_LISTED`] (the lowest seeds, so the list does not depend on the order seeds
//! finished in, nor on how the range was sharded). Its JSON reads back ([`Summary::from_json`])
//! and two summaries of disjoint seeds combine ([`Summary::absorb`]) into the summary one run
//! over both would have written: `clawsim merge` is built on that.

use crate::coverage::CATALOG;
use crate::properties::Property;
use crate::seeds::SeedResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

/// Failing seeds a summary lists by name (the lowest); the rest are counted. A run where every
/// seed fails must not grow without bound over hours.
pub const FAILURES_LISTED: usize = 100;

/// One failing seed, as the summary lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The storage design of the session files (`v2` unless `--design` named another).
    #[serde(default = "default_design")]
    pub design: String,
    pub profiles: Vec<String>,
    pub jobs: usize,
    /// Whether each seed ran twice and its trace hashes were compared.
    pub check_determinism: bool,
}

/// Summaries written before designs were named ran `v2`.
fn default_design() -> String {
    "v2".to_string()
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
    /// One past the highest offset from `run.seed_start` that ran (wrapping): where the seeds
    /// this summary covers end, for telling whether two summaries overlap.
    pub offset_end: u64,
    /// False while the run is still going (a summary written periodically), true at its end.
    pub complete: bool,
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
    /// Per property: runs in which it failed.
    pub failed_runs: BTreeMap<Property, u64>,
    /// Per property: cases it met and could not judge (`Verdict::skipped`), over all runs.
    pub skipped: BTreeMap<Property, u64>,
    /// Per step kind: runs with a crash / an I/O error landing in it.
    pub crash_runs: BTreeMap<String, u64>,
    pub io_error_runs: BTreeMap<String, u64>,
    /// Per situation of the coverage catalog: runs that reached it.
    pub reached_runs: BTreeMap<String, u64>,
    pub world_errors: u64,
    /// Seeds that failed, all of them.
    pub failing_seeds: u64,
    /// The lowest [`FAILURES_LISTED`] of them, by seed.
    pub failures: Vec<Failure>,
}

impl Summary {
    /// Adds one seed's result.
    pub fn add(&mut self, result: &SeedResult) {
        self.seeds += 1;
        self.seed_first = Some(self.seed_first.map_or(result.seed, |s| s.min(result.seed)));
        self.seed_last = Some(self.seed_last.map_or(result.seed, |s| s.max(result.seed)));
        let offset = result.seed.wrapping_sub(self.run.seed_start);
        self.offset_end = self.offset_end.max(offset.saturating_add(1));
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
        for property in result.verdict.failed() {
            *self.failed_runs.entry(property).or_default() += 1;
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
            self.failing_seeds += 1;
            self.list_failures([failure_of(result)]);
        }
    }

    /// Adds `failures` to the list, keeping it sorted by seed and at most [`FAILURES_LISTED`]
    /// long.
    fn list_failures(&mut self, failures: impl IntoIterator<Item = Failure>) {
        self.failures.extend(failures);
        self.failures.sort_by_key(|f| f.seed);
        self.failures.truncate(FAILURES_LISTED);
    }

    /// Adds the summary of other seeds of the same run (a shard of it): counts add up, the
    /// seeds' bounds widen, and the failure lists join. The run settings stay this summary's;
    /// the caller checks the two are of one run and cover disjoint seeds.
    pub fn absorb(&mut self, other: &Summary) {
        self.seeds += other.seeds;
        self.seed_first = min_some(self.seed_first, other.seed_first);
        self.seed_last = self.seed_last.max(other.seed_last);
        self.offset_end = self.offset_end.max(other.offset_end);
        self.complete = self.complete && other.complete;
        self.determinism_mismatches += other.determinism_mismatches;
        add_counts(&mut self.seeds_by_profile, &other.seeds_by_profile);
        self.sim_ms += other.sim_ms;
        self.steps += other.steps;
        self.wall = self.wall.max(other.wall);
        add_counts(&mut self.faults, &other.faults);
        add_counts(&mut self.checks, &other.checks);
        add_counts(&mut self.held_runs, &other.held_runs);
        add_counts(&mut self.failed_runs, &other.failed_runs);
        add_counts(&mut self.skipped, &other.skipped);
        add_counts(&mut self.crash_runs, &other.crash_runs);
        add_counts(&mut self.io_error_runs, &other.io_error_runs);
        add_counts(&mut self.reached_runs, &other.reached_runs);
        self.world_errors += other.world_errors;
        self.failing_seeds += other.failing_seeds;
        self.list_failures(other.failures.iter().cloned());
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
    pub fn violations(&self) -> u64 {
        self.failing_seeds
    }

    /// The table people read at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let run = &self.run;
        let _ = writeln!(
            out,
            "run              seeds {} shard {} profiles {} workload {} design {} jobs {}",
            run.range(),
            run.shard,
            run.profiles.join(","),
            run.workload,
            run.design,
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
        let unlisted = self
            .failing_seeds
            .saturating_sub(self.failures.len() as u64);
        if unlisted > 0 {
            let _ = writeln!(out, "  and {unlisted} more failing seeds, not listed");
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
            "design": self.run.design,
            "profiles": self.run.profiles,
            "jobs": self.run.jobs,
            "seed_first": self.seed_first,
            "seed_last": self.seed_last,
            "offset_end": self.offset_end,
            "complete": self.complete,
            "determinism": determinism,
            "seeds": self.seeds,
            "seeds_by_profile": self.seeds_by_profile,
            "violations": self.violations(),
            "failures": self.failures,
            "seeds_per_min": self.seeds_per_min(),
            "sim_seconds": self.sim_ms as f64 / 1_000.0,
            "sim_ms": self.sim_ms,
            "wall_seconds": self.wall.as_secs_f64(),
            "steps": self.steps,
            "faults": self.faults,
            "properties": names(&self.checks),
            "properties_held_runs": names(&self.held_runs),
            "properties_failed_runs": names(&self.failed_runs),
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

impl Summary {
    /// Reads back the JSON [`Summary::json`] wrote (a shard's `--summary-json`).
    pub fn from_json(json: &Value) -> Result<Summary, String> {
        let run = RunInfo::deserialize(field(json, "run")?).map_err(|e| format!("run: {e}"))?;
        let sim_ms = field(json, "sim_ms")?
            .as_i64()
            .ok_or("sim_ms: not an integer")?;
        let wall_seconds = field(json, "wall_seconds")?
            .as_f64()
            .ok_or("wall_seconds: not a number")?;
        let failures = Vec::<Failure>::deserialize(field(json, "failures")?)
            .map_err(|e| format!("failures: {e}"))?;
        let landings = field(json, "fault_landings")?;
        let reached_runs = counts(json, "coverage")?
            .into_iter()
            .filter(|(_, runs)| *runs > 0)
            .collect();
        Ok(Summary {
            run,
            seeds: number(json, "seeds")?,
            seed_first: optional_number(json, "seed_first")?,
            seed_last: optional_number(json, "seed_last")?,
            offset_end: number(json, "offset_end")?,
            complete: field(json, "complete")?
                .as_bool()
                .ok_or("complete: not true or false")?,
            determinism_mismatches: json
                .pointer("/determinism/mismatches")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            seeds_by_profile: counts(json, "seeds_by_profile")?,
            sim_ms,
            steps: number(json, "steps")?,
            wall: Duration::try_from_secs_f64(wall_seconds)
                .map_err(|e| format!("wall_seconds: {e}"))?,
            faults: counts(json, "faults")?,
            checks: property_counts(json, "properties")?,
            held_runs: property_counts(json, "properties_held_runs")?,
            failed_runs: property_counts(json, "properties_failed_runs")?,
            skipped: property_counts(json, "properties_not_judged")?,
            crash_runs: counts(landings, "crash")?,
            io_error_runs: counts(landings, "io_error")?,
            reached_runs,
            world_errors: number(json, "world_errors")?,
            failing_seeds: number(json, "violations")?,
            failures,
        })
    }
}

fn field<'a>(json: &'a Value, name: &str) -> Result<&'a Value, String> {
    json.get(name).ok_or_else(|| format!("no field {name:?}"))
}

fn number(json: &Value, name: &str) -> Result<u64, String> {
    field(json, name)?
        .as_u64()
        .ok_or_else(|| format!("{name}: not a whole number"))
}

fn optional_number(json: &Value, name: &str) -> Result<Option<u64>, String> {
    match field(json, name)? {
        Value::Null => Ok(None),
        value => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{name}: not a whole number")),
    }
}

fn counts(json: &Value, name: &str) -> Result<BTreeMap<String, u64>, String> {
    BTreeMap::deserialize(field(json, name)?).map_err(|e| format!("{name}: {e}"))
}

/// A map of property names to counts; a name this build does not know is an error, not a
/// count silently dropped.
fn property_counts(json: &Value, name: &str) -> Result<BTreeMap<Property, u64>, String> {
    counts(json, name)?
        .into_iter()
        .map(|(key, count)| {
            Property::ALL
                .into_iter()
                .find(|p| p.name() == key)
                .map(|p| (p, count))
                .ok_or_else(|| format!("{name}: unknown property {key:?}"))
        })
        .collect()
}

/// The smaller of two bounds, either of which may be missing.
fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => a.or(b),
    }
}

fn add_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, count) in from {
        *into.entry(key.clone()).or_default() += count;
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
