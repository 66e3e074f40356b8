//! `clawsim compare`: the protocol's storage choices measured side by side.
//!
//! Every named [`Design`] runs the same seeds on every mount profile (each seed's default
//! scenario, the same workload and faults whatever the design), and the table counts, per
//! (design × profile), the seeds that broke each property, per 1,000 seeds. Where a design makes
//! a property meaningless (§9.5 single writer when both sides write one `session.db`) the cell
//! says "by design" and the consequences are judged by the other properties. Each non-zero cell
//! names its first failing seed with the command that replays it.
//!
//! With `--save-cases DIR`, the first failing seed of every non-zero (cell × property) is shrunk
//! (see [`crate::shrink`]) and saved as a scenario file `<design>-<profile>-<property>.json`:
//! the smallest case found on which the design still breaks the property while the same case
//! under v2 holds every property, so what breaks it is the design, not the workload. `clawsim
//! replay FILE` runs one; `clawsim scenarios --dir DIR` checks each still fails as saved.

use crate::case::{Case, WorkloadKind};
use crate::cli::{absolute, check_writable_folder, shell_command, shell_quote, this_exe};
use crate::properties::{Property, Verdict};
use crate::run_command::{parse_design, parse_profiles, workers};
use crate::scenarios::{Expect, Scenario};
use crate::seeds::{run_case, run_pool, PoolOptions, SeedPlan, SeedResult};
use crate::shrink::shrink_by;
use clap::Args;
use clawsim_core::config::Design;
use clawsim_sim::fs::MountProfile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `clawsim compare` options.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Seeds per (design × profile), the same seeds for every cell.
    #[arg(long, default_value_t = 200)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Designs to compare, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub designs: String,
    /// Mount profiles, as `clawsim run --profile`.
    #[arg(long, default_value = "all")]
    pub profile: String,
    /// Worker processes (1 runs in this process).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Write the table as JSON to this file (`-`: stdout, and the table goes to stderr).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// List the named designs and exit.
    #[arg(long)]
    pub list: bool,
    /// Shrink the first failing seed of every non-zero (cell × property) and save it in this
    /// folder as a scenario file `<design>-<profile>-<property>.json` (replay one with `clawsim
    /// replay FILE`; check them all with `clawsim scenarios --dir FOLDER`).
    #[arg(long)]
    pub save_cases: Option<PathBuf>,
    /// How long each saved case may be shrunk.
    #[arg(long, value_parser = crate::parse_duration, default_value = "30s")]
    pub shrink_time: Duration,
}

/// One (design × profile) cell.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cell {
    pub design: String,
    pub profile: String,
    pub seeds: u64,
    /// Seeds that broke each property (by its name), counted once per seed.
    pub failed_seeds_by_property: BTreeMap<String, u64>,
    /// Properties not judged because the design makes them meaningless.
    pub by_design: Vec<String>,
    /// Seeds whose world itself failed (setup, step bound).
    pub world_errors: u64,
    /// The first failing seed and the command that replays it.
    pub first_failure: Option<FirstFailure>,
    /// The first seed that broke each property (by its name).
    pub first_failing_seed_by_property: BTreeMap<String, u64>,
}

/// The first seed of a cell that broke a property.
#[derive(Debug, Clone, Serialize)]
pub struct FirstFailure {
    pub seed: u64,
    pub property: String,
    pub detail: String,
    pub replay: String,
}

impl Cell {
    fn add(&mut self, result: &SeedResult) {
        self.seeds += 1;
        if !result.errors.is_empty() {
            self.world_errors += 1;
        }
        for property in result.verdict.failed() {
            *self
                .failed_seeds_by_property
                .entry(property.name().to_string())
                .or_default() += 1;
            let first = self
                .first_failing_seed_by_property
                .entry(property.name().to_string())
                .or_insert(result.seed);
            *first = (*first).min(result.seed);
        }
        for property in by_design(&result.verdict) {
            if !self.by_design.contains(&property) {
                self.by_design.push(property);
            }
        }
        let first = result.verdict.violations.first();
        let earlier = self
            .first_failure
            .as_ref()
            .is_none_or(|f| result.seed < f.seed);
        if let (Some(violation), true) = (first, earlier) {
            self.first_failure = Some(FirstFailure {
                seed: result.seed,
                property: violation.property.name().to_string(),
                detail: violation.detail.chars().take(300).collect(),
                replay: replay_command(result.seed, &self.profile, &self.design),
            });
        }
    }

    /// Seeds per 1,000 that broke `property`.
    pub fn per_thousand(&self, property: &str) -> u64 {
        let failed = self.failed_seeds_by_property.get(property).copied();
        (failed.unwrap_or(0) * 1_000)
            .checked_div(self.seeds)
            .unwrap_or(0)
    }
}

/// The properties a verdict left unjudged because the design makes them meaningless.
fn by_design(verdict: &Verdict) -> Vec<String> {
    let reason = clawsim_oracle::properties::online::SINGLE_WRITER_BY_DESIGN;
    verdict
        .unjudged
        .iter()
        .filter(|(_, why)| why.iter().any(|w| w == reason))
        .map(|(property, _)| property.name().to_string())
        .collect()
}

fn replay_command(seed: u64, profile: &str, design: &str) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "clawsim".into());
    format!(
        "{} replay {seed} --profile {profile} --design {design}",
        shell_quote(&exe)
    )
}

/// Runs the comparison; exit status 0 (a comparison reports, it does not judge).
pub fn compare(args: &CompareArgs) -> Result<i32, String> {
    if args.list {
        for (design, about) in Design::NAMED {
            println!("{:<14} {about}", design.name);
        }
        return Ok(0);
    }
    let designs = parse_designs(&args.designs)?;
    let profiles = parse_profiles(&args.profile)?;
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    if let Some(dir) = &args.save_cases {
        check_writable_folder("--save-cases", dir)?;
    }
    eprintln!(
        "clawsim compare: seeds {}..{} designs {} profiles {} jobs {} build {}",
        args.seed,
        args.seed + args.seeds,
        designs.iter().map(|d| d.name).collect::<Vec<_>>().join(","),
        profiles
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(","),
        args.jobs,
        crate::build_id()
    );
    let mut cells = Vec::new();
    for design in &designs {
        for profile in &profiles {
            cells.push(run_cell(args, *design, *profile)?);
        }
    }
    let table = table(&cells);
    match args.summary_json.as_deref() {
        Some(path) if crate::cli::is_stdout(path) => {
            eprint!("{table}");
            let json = serde_json::to_string_pretty(&cells).map_err(|e| e.to_string())?;
            crate::cli::print_stdout(&format!("{json}\n"))?;
        }
        Some(path) => {
            print!("{table}");
            let json = serde_json::to_string_pretty(&cells).map_err(|e| e.to_string())?;
            std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        None => print!("{table}"),
    }
    if let Some(dir) = &args.save_cases {
        for cell in &cells {
            for (property, seed) in &cell.first_failing_seed_by_property {
                let property = property_by_name(property)?;
                match save_case(dir, cell, property, *seed, args.shrink_time)? {
                    Ok(saved) => eprintln!("{saved}"),
                    Err(why) => eprintln!(
                        "{} × {} {property}: seed {seed} not saved: {why}",
                        cell.design, cell.profile
                    ),
                }
            }
        }
    }
    Ok(0)
}

fn property_by_name(name: &str) -> Result<Property, String> {
    Property::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| format!("unknown property {name:?}"))
}

/// A case saved by `--save-cases`.
#[derive(Debug, Clone)]
pub struct SavedCase {
    pub file: PathBuf,
    /// Messages and faults before and after shrinking.
    pub sizes: ((usize, usize), (usize, usize)),
    pub attempts: u32,
}

impl std::fmt::Display for SavedCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((m0, f0), (m1, f1)) = self.sizes;
        write!(
            f,
            "saved {} ({m0} messages, {f0} faults shrunk to {m1} and {f1} in {} runs)\n  replay: \
             {}",
            self.file.display(),
            self.attempts,
            shell_command(&[
                this_exe(),
                "replay".into(),
                absolute(&self.file)
                    .unwrap_or_else(|_| self.file.clone())
                    .display()
                    .to_string()
            ])
        )
    }
}

/// True when `case` breaks `property` under its design, while the same case under v2 holds
/// every property; neither world may fail on its own.
fn design_alone_breaks(case: &Case, property: Property) -> bool {
    let broken = run_case(case).is_ok_and(|(outcome, verdict)| {
        outcome.errors.is_empty() && !verdict.property_held(property)
    });
    let under_v2 = Case {
        design: None,
        ..case.clone()
    };
    broken
        && run_case(&under_v2)
            .is_ok_and(|(outcome, verdict)| outcome.errors.is_empty() && verdict.held())
}

/// Shrinks seed `seed` of `cell`, which broke `property`, and saves it as a scenario file in
/// `dir`; the inner `Err` says why a seed was not saved (v2 fails on it too).
pub fn save_case(
    dir: &Path,
    cell: &Cell,
    property: Property,
    seed: u64,
    shrink_time: Duration,
) -> Result<Result<SavedCase, String>, String> {
    let profile: MountProfile = cell.profile.parse()?;
    let mut case = Case::default_scenario(seed, profile);
    case.design = Some(cell.design.clone()).filter(|name| name != "v2");
    if !design_alone_breaks(&case, property) {
        return Ok(Err(format!(
            "it does not break {property} under {} alone (v2 fails on it too, or a world error)",
            cell.design
        )));
    }
    let shrunk = shrink_by(&case, shrink_time, |candidate| {
        design_alone_breaks(candidate, property)
    });
    let (outcome, verdict) = run_case(&shrunk.case)?;
    let sizes = |c: &Case| (c.workload.messages.len(), c.faults.faults.len());
    let ((m0, f0), (m1, f1)) = (sizes(&case), sizes(&shrunk.case));
    let first = verdict
        .violations
        .iter()
        .find(|v| v.property == property)
        .map(|v| v.detail.chars().take(300).collect::<String>())
        .unwrap_or_default();
    let scenario = Scenario {
        name: format!("{} on {} breaks {property}", cell.design, cell.profile),
        description: format!(
            "Saved by clawsim compare --save-cases: seed {seed} of the default scenario ({m0} \
             messages, {f0} faults), shrunk to {m1} messages and {f1} faults. Under design {} on \
             {} the run breaks {property} (first: {first}); the same case under v2 holds every \
             property.",
            cell.design, cell.profile
        ),
        case: shrunk.case.clone(),
        expect: Expect {
            failed: verdict.failed(),
            faults: outcome.fault_counts.clone(),
            received_min: 0,
        },
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!(
        "{}-{}-{}.json",
        cell.design,
        cell.profile,
        property.name()
    ));
    let json = serde_json::to_string_pretty(&scenario).map_err(|e| e.to_string())?;
    std::fs::write(&file, format!("{json}\n")).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Ok(SavedCase {
        file,
        sizes: ((m0, f0), (m1, f1)),
        attempts: shrunk.attempts,
    }))
}

fn parse_designs(text: &str) -> Result<Vec<Design>, String> {
    if text == "all" {
        return Ok(Design::NAMED.iter().map(|(d, _)| *d).collect());
    }
    text.split(',')
        .map(|name| parse_design(name.trim()))
        .collect()
}

fn run_cell(args: &CompareArgs, design: Design, profile: MountProfile) -> Result<Cell, String> {
    let plan = SeedPlan {
        start: args.seed,
        count: Some(args.seeds),
        profiles: vec![profile],
        shard: (0, 1),
    };
    let options = PoolOptions {
        workers: workers(args.jobs)?,
        workload: WorkloadKind::Bursts,
        design,
        time_budget: None,
        check_determinism: false,
        stop: Default::default(),
    };
    let mut cell = Cell {
        design: design.name.to_string(),
        profile: profile.name().to_string(),
        ..Cell::default()
    };
    run_pool(&plan, &options, |result| cell.add(&result))?;
    eprintln!(
        "  {} × {}: {} of {} seeds broke a property",
        design.name,
        profile.name(),
        cell.failed_seeds(),
        cell.seeds
    );
    Ok(cell)
}

impl Cell {
    /// Seeds that broke at least one property (at most `seeds`).
    fn failed_seeds(&self) -> u64 {
        self.failed_seeds_by_property
            .values()
            .max()
            .copied()
            .unwrap_or(0)
    }
}

/// The table: one row per cell, violations per 1,000 seeds by property, then each non-zero
/// cell's first failing seed.
pub fn table(cells: &[Cell]) -> String {
    let mut out = String::new();
    let shown: Vec<Property> = Property::ALL.to_vec();
    let _ = write!(out, "{:<14} {:<10} {:>5}", "design", "profile", "seeds");
    for property in &shown {
        let _ = write!(out, " {:>6}", property.section());
    }
    let _ = writeln!(out, " {:>6}", "errors");
    for cell in cells {
        let _ = write!(
            out,
            "{:<14} {:<10} {:>5}",
            cell.design, cell.profile, cell.seeds
        );
        for property in &shown {
            let name = property.name();
            let shown = if cell.by_design.iter().any(|p| p == name) {
                "design".to_string()
            } else {
                cell.per_thousand(name).to_string()
            };
            let _ = write!(out, " {shown:>6}");
        }
        let _ = writeln!(out, " {:>6}", cell.world_errors);
    }
    let _ = writeln!(
        out,
        "(seeds per 1,000 that broke each property; \"design\": not applicable by design, its \
         consequences judged by the others; §9.1 counts stuck messages, §9.9 integrity and lost \
         commits)"
    );
    for cell in cells {
        if let Some(first) = &cell.first_failure {
            let _ = writeln!(
                out,
                "{} × {}: first failing seed {} ({}): {}\n    {}",
                cell.design, cell.profile, first.seed, first.property, first.detail, first.replay
            );
        }
    }
    out
}
