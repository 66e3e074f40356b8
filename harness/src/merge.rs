//! `clawsim merge SUMMARY.json…`: the summaries of a run's shards, checked to be of one run and
//! combined into the one verdict that run would have given on one machine.
//!
//! A CI matrix runs `clawsim run --shard I/N` on N machines that never talk to each other; this
//! command is their meeting point. It refuses what would give a wrong verdict: summaries of
//! different builds (a property judged by different code), different workloads or run settings,
//! seed ranges that overlap (a seed counted twice), summaries of different runs, and an `I/N`
//! set with shards missing (seeds never checked), naming each. A shard whose summary is partial
//! (written periodically by a job killed before its end, or stopped by `--fail-fast`) is merged
//! but named, and the merge cannot pass: not every seed was checked.
//!
//! Exit status: 0 every property held in every seed of every shard, 1 a violation, 2 an error
//! (the refusals above, a partial shard, bad input, IO).

use crate::cli::{check_writable_file, is_stdout, print_stdout, write_file_atomically};
use crate::run_command::{parse_shard, summary_text};
use crate::summary::Summary;
use crate::{build_id, junit};
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `clawsim merge` options.
#[derive(Debug, Clone, Args)]
#[command(after_help = crate::cli::EXIT_STATUS_HELP)]
pub struct MergeArgs {
    /// The shards' summaries (`clawsim run --summary-json`), in any order.
    #[arg(required = true)]
    pub summaries: Vec<PathBuf>,
    /// Write the merged summary as JSON to this file (`-`: stdout, and the table goes to stderr).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Write the merged verdict as a JUnit XML report to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

/// One shard's summary as read.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Where it was read from, to name it in a refusal.
    pub path: String,
    pub build: String,
    pub summary: Summary,
    /// `(I, N)`.
    pub shard: (u64, u64),
}

impl Shard {
    /// Reads the summary at `path`.
    pub fn read(path: &Path) -> Result<Shard, String> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{shown}: not a summary's JSON: {e}"))?;
        let summary = Summary::from_json(&json)
            .map_err(|e| format!("{shown}: not a clawsim run summary: {e}"))?;
        let build = json
            .get("build")
            .and_then(|b| b.as_str())
            .ok_or_else(|| format!("{shown}: no build named"))?
            .to_string();
        let shard = parse_shard(&summary.run.shard).map_err(|e| format!("{shown}: {e}"))?;
        Ok(Shard {
            path: shown,
            build,
            summary,
            shard,
        })
    }

    /// The shard as `I/N of seeds a..b`.
    fn describe(&self) -> String {
        let (index, count) = self.shard;
        format!(
            "shard {index}/{count} of seeds {}",
            self.summary.run.range()
        )
    }

    /// The seed offsets its range spans from the range's start, as intervals of a 2^64 circle
    /// cut where they wrap. A bounded range spans all of it (the shards of one range
    /// interleave); a range bounded by time spans up to the last seed it ran.
    fn span(&self) -> Vec<(u128, u128)> {
        let run = &self.summary.run;
        let length = run.seed_count.unwrap_or(self.summary.offset_end);
        let start = u128::from(run.seed_start);
        let end = start + u128::from(length);
        let circle = 1u128 << 64;
        if end <= circle {
            vec![(start, end)]
        } else {
            vec![(start, circle), (0, end - circle)]
        }
    }

    /// What makes two summaries one run's, apart from the shard index.
    fn run_key(&self) -> (u64, Option<u64>, u64) {
        let run = &self.summary.run;
        (run.seed_start, run.seed_count, self.shard.1)
    }
}

/// Runs the command.
pub fn run(args: &MergeArgs) -> Result<i32, String> {
    for (what, path) in [
        ("--summary-json", &args.summary_json),
        ("--junit", &args.junit),
    ] {
        if let Some(path) = path.as_deref().filter(|p| !is_stdout(p)) {
            check_writable_file(what, path)?;
        }
    }
    let shards = args
        .summaries
        .iter()
        .map(|p| Shard::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge(&shards)?;
    report(args, &merged)?;
    let partial: Vec<String> = shards
        .iter()
        .filter(|s| !s.summary.complete)
        .map(|s| format!("{} ({})", s.describe(), s.path))
        .collect();
    if merged.violations() > 0 {
        return Ok(1);
    }
    if !partial.is_empty() {
        return Err(format!(
            "no violation, but not every seed was checked: partial summaries (a job killed \
             before its end, or stopped early): {}",
            partial.join(", ")
        ));
    }
    Ok(0)
}

fn report(args: &MergeArgs, merged: &Summary) -> Result<(), String> {
    let json_to_stdout = args.summary_json.as_deref().is_some_and(is_stdout);
    if json_to_stdout {
        eprint!("{}", merged.table());
    } else {
        print_stdout(&merged.table())?;
    }
    if let Some(path) = &args.junit {
        write_file_atomically(path, &junit::report(merged, &build_id()))?;
    }
    match &args.summary_json {
        Some(_) if json_to_stdout => print_stdout(&summary_text(merged)?),
        Some(path) => write_file_atomically(path, &summary_text(merged)?),
        None => Ok(()),
    }
}

/// The shards' summaries as one run's, or why they are not one run's.
pub fn merge(shards: &[Shard]) -> Result<Summary, String> {
    let first = shards.first().ok_or("no summary to merge")?;
    same_build(shards)?;
    same_settings(shards)?;
    no_overlap(shards)?;
    one_run(shards, first)?;
    complete_set(shards, first)?;
    let mut ordered: Vec<&Shard> = shards.iter().collect();
    ordered.sort_by_key(|s| s.shard.0);
    let mut merged = ordered[0].summary.clone();
    merged.run.shard = "0/1".into();
    for shard in &ordered[1..] {
        merged.absorb(&shard.summary);
        merged.run.jobs += shard.summary.run.jobs;
    }
    Ok(merged)
}

/// Properties judged by different code are not one verdict; nor is a coverage catalog or a
/// property list this build does not share.
fn same_build(shards: &[Shard]) -> Result<(), String> {
    let this = build_id();
    let builds: BTreeMap<&str, Vec<&str>> = shards.iter().fold(BTreeMap::new(), |mut m, s| {
        m.entry(s.build.as_str()).or_default().push(&s.path);
        m
    });
    if builds.len() > 1 {
        return Err(format!(
            "summaries of different builds: {}",
            describe_groups(&builds)
        ));
    }
    if !builds.contains_key(this.as_str()) {
        return Err(format!(
            "the summaries are of build {}, this is {this}: merge them with the clawsim that \
             ran them (the properties and coverage catalog may differ)",
            first_key(&builds)
        ));
    }
    Ok(())
}

/// A run setting shards must share: its name (plural) and its value in words.
type Setting = (&'static str, fn(&Shard) -> String);

fn same_settings(shards: &[Shard]) -> Result<(), String> {
    let settings: [Setting; 5] = [
        ("workloads", |s| s.summary.run.workload.clone()),
        ("designs", |s| s.summary.run.design.clone()),
        ("profiles", |s| s.summary.run.profiles.join(",")),
        ("determinism checks", |s| {
            s.summary.run.check_determinism.to_string()
        }),
        ("time budgets", |s| {
            format!("{:?}", s.summary.run.time_budget_seconds)
        }),
    ];
    for (what, value) in settings {
        let groups: BTreeMap<String, Vec<&str>> =
            shards.iter().fold(BTreeMap::new(), |mut m, s| {
                m.entry(value(s)).or_default().push(&s.path);
                m
            });
        if groups.len() > 1 {
            return Err(format!(
                "summaries of different {what}: {}",
                describe_groups(&groups)
            ));
        }
    }
    Ok(())
}

/// No seed may be counted twice: the same shard twice, or ranges that share seeds.
fn no_overlap(shards: &[Shard]) -> Result<(), String> {
    for (n, a) in shards.iter().enumerate() {
        for b in &shards[n + 1..] {
            let same_run = a.run_key() == b.run_key();
            let overlap = if same_run {
                a.shard.0 == b.shard.0
            } else {
                intersect(&a.span(), &b.span())
            };
            if overlap {
                return Err(format!(
                    "overlapping seed ranges: {} covers {} and {} covers {}: their seeds would \
                     be counted twice",
                    a.path,
                    a.describe(),
                    b.path,
                    b.describe()
                ));
            }
        }
    }
    Ok(())
}

fn intersect(a: &[(u128, u128)], b: &[(u128, u128)]) -> bool {
    a.iter().any(|x| {
        b.iter()
            .any(|y| x.0 < y.1 && y.0 < x.1 && x.0 < x.1 && y.0 < y.1)
    })
}

fn one_run(shards: &[Shard], first: &Shard) -> Result<(), String> {
    match shards.iter().find(|s| s.run_key() != first.run_key()) {
        Some(other) => Err(format!(
            "not shards of one run: {} covers {} and {} covers {}; merge the I/N shards of one \
             seed range",
            first.path,
            first.describe(),
            other.path,
            other.describe()
        )),
        None => Ok(()),
    }
}

/// Every shard of the `I/N` set is there.
fn complete_set(shards: &[Shard], first: &Shard) -> Result<(), String> {
    let count = first.shard.1;
    let missing: Vec<String> = (0..count)
        .filter(|i| !shards.iter().any(|s| s.shard.0 == *i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing shard{} {} of seeds {}: their seeds were never checked (pass every shard's \
         summary)",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        first.summary.run.range()
    ))
}

fn describe_groups<K: std::fmt::Display>(groups: &BTreeMap<K, Vec<&str>>) -> String {
    groups
        .iter()
        .map(|(value, paths)| format!("{value} ({})", paths.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn first_key<K: Clone + Default>(groups: &BTreeMap<K, Vec<&str>>) -> K {
    groups.keys().next().cloned().unwrap_or_default()
}
