//! The run summary: what a `clawsim run` covered and found, as a table for people and as JSON
//! for machines.
//!
//! It answers: how many seeds, how much simulated time, how fast; which faults struck and how
//! often; how often each property was applied and in how many runs it held; where crashes and
//! I/O errors landed among the core's step kinds; and which seeds failed.

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
}

/// Everything the run covered and found.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub seeds: u64,
    pub seeds_by_profile: BTreeMap<String, u64>,
    pub sim_ms: i64,
    pub steps: u64,
    pub wall: Duration,
    pub faults: BTreeMap<String, u64>,
    /// Per property: times applied, runs in which it held.
    pub checks: BTreeMap<Property, u64>,
    pub held_runs: BTreeMap<Property, u64>,
    /// Per step kind: runs with a crash / an I/O error landing in it.
    pub crash_runs: BTreeMap<String, u64>,
    pub io_error_runs: BTreeMap<String, u64>,
    pub world_errors: u64,
    pub failures: Vec<Failure>,
}

impl Summary {
    /// Adds one seed's result.
    pub fn add(&mut self, result: &SeedResult) {
        self.seeds += 1;
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
        self.add_landings(result);
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
        let by_profile = join_counts(&self.seeds_by_profile);
        let _ = writeln!(out, "seeds            {} ({by_profile})", self.seeds);
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
        let _ = writeln!(out, "properties       {:>10} {:>12}", "checks", "runs held");
        for property in Property::ALL {
            let checks = self.checks.get(&property).copied().unwrap_or(0);
            let held = self.held_runs.get(&property).copied().unwrap_or(0);
            let name = property.to_string();
            let _ = writeln!(out, "  {name:<22} {checks:>8} {held:>8}/{}", self.seeds);
        }
        self.landing_table(&mut out);
        let _ = writeln!(out, "violations       {}", self.violations());
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "  seed {} ({}): {} - {}",
                failure.seed,
                failure.profile,
                failure.failed.join(", "),
                failure.first
            );
        }
        out
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

    /// The JSON summary (`--summary-json`).
    pub fn json(&self, build: &str, seed_start: u64) -> serde_json::Value {
        let names = |map: &BTreeMap<Property, u64>| -> BTreeMap<&'static str, u64> {
            map.iter().map(|(p, n)| (p.name(), *n)).collect()
        };
        serde_json::json!({
            "build": build,
            "seed_start": seed_start,
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
            "fault_landings": {
                "crash": self.crash_runs,
                "io_error": self.io_error_runs,
            },
            "world_errors": self.world_errors,
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
    }
}
