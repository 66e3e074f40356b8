//! `clawsim run`: many seeds across the mount profiles, a progress bar, a summary table, and
//! an exit status that says whether every property held.
//!
//! It prints, before anything else, the seed range, the profiles, the jobs and the build id, so
//! a report is complete by itself. A failing seed is saved as an artifact (see
//! [`crate::artifact`]) with its shrunk case and one command that replays it.

use crate::artifact::save_failure;
use crate::case::WorkloadKind;
use crate::seeds::{run_pool, PoolOptions, SeedPlan, Workers};
use crate::summary::Summary;
use crate::{build_id, parse_duration};
use clap::Args;
use clawsim_sim::fs::MountProfile;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default time budget when neither `--seeds` nor `--time` is given.
const DEFAULT_TIME: Duration = Duration::from_secs(60);

/// Failures beyond this many are listed but not shrunk or saved.
const ARTIFACTS_MAX: usize = 5;

/// `clawsim run` options.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run this many seeds.
    #[arg(long, conflicts_with = "time")]
    pub seeds: Option<u64>,
    /// Run seeds for this long (e.g. 60s, 5m); the default is 60 s.
    #[arg(long, value_parser = parse_duration)]
    pub time: Option<Duration>,
    /// Mount profile: bind, virtiofs, power-loss, or all.
    #[arg(long, default_value = "all")]
    pub profile: String,
    /// Workload each seed runs: the world's default scenario, or a generated mixed case.
    #[arg(long, value_enum, default_value = "default")]
    pub workload: WorkloadKind,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker processes (default: the machine's cores; 1 runs in this process).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard I of N of the seed range (`I/N`, I from 0).
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Run each seed twice and compare trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Where failure artifacts go.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Time budget for shrinking each failure.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub shrink_time: Duration,
}

/// Runs the command; the exit status is 0 when every property held, 1 otherwise.
pub fn run(args: &RunArgs) -> Result<i32, String> {
    let profiles = parse_profiles(&args.profile)?;
    let shard = args.shard.unwrap_or((0, 1));
    let time_budget = match args.seeds {
        Some(_) => args.time,
        None => Some(args.time.unwrap_or(DEFAULT_TIME)),
    };
    let plan = SeedPlan {
        start: args.seed,
        count: args.seeds,
        profiles,
        shard,
    };
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    eprintln!("{}", header(args, &plan, time_budget, jobs));
    let options = PoolOptions {
        workers: workers(jobs)?,
        workload: args.workload,
        time_budget,
        check_determinism: args.check_determinism,
    };
    let mut summary = Summary::default();
    let mut failing = Vec::new();
    let progress = progress_bar(plan.len(), time_budget);
    let started = Instant::now();
    let pooled = run_pool(&plan, &options, |result| {
        summary.add(&result);
        if result.failed() {
            progress.suspend(|| eprintln!("seed {} ({}) failed", result.seed, result.profile));
            failing.push(result);
        }
        progress.set_position(summary.seeds.min(plan.len().unwrap_or(u64::MAX)));
        progress.set_message(format!("{} violations", summary.violations()));
    });
    summary.wall = started.elapsed();
    progress.finish_and_clear();
    // What ran before a worker failed is still reported, failures and all.
    save_artifacts(args, &mut summary, &failing);
    print!("{}", summary.table());
    if let Some(path) = &args.summary_json {
        let json = summary.json(&build_id(), args.seed);
        let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    pooled?;
    Ok(if summary.violations() == 0 { 0 } else { 1 })
}

/// Shrinks and saves the first failures, and prints how to replay each.
fn save_artifacts(args: &RunArgs, summary: &mut Summary, failing: &[crate::seeds::SeedResult]) {
    let mut failing: Vec<&crate::seeds::SeedResult> = failing.iter().collect();
    failing.sort_by_key(|r| r.seed);
    for result in failing.into_iter().take(ARTIFACTS_MAX) {
        match save_failure(&args.artifacts, result, args.shrink_time) {
            Ok(saved) => {
                eprintln!("{saved}");
                if let Some(f) = summary.failures.iter_mut().find(|f| f.seed == result.seed) {
                    f.artifact = Some(saved.dir.display().to_string());
                }
            }
            Err(error) => eprintln!("seed {}: artifact not saved: {error}", result.seed),
        }
    }
}

/// What the run is about to do, and with what build.
fn header(args: &RunArgs, plan: &SeedPlan, time_budget: Option<Duration>, jobs: usize) -> String {
    let range = match args.seeds {
        Some(count) => format!("{}..{}", args.seed, args.seed.saturating_add(count)),
        None => format!("{}.. for {:?}", args.seed, time_budget.unwrap_or_default()),
    };
    let profiles: Vec<&str> = plan.profiles.iter().map(|p| p.name()).collect();
    let (index, count) = plan.shard;
    format!(
        "clawsim run: seeds {range} shard {index}/{count} profiles {} workload {:?} jobs {jobs}{} \
         build {}",
        profiles.join(","),
        args.workload,
        if args.check_determinism {
            " check-determinism"
        } else {
            ""
        },
        build_id()
    )
}

/// A bar over a bounded plan, a spinner over a time budget; hidden unless stderr is a
/// terminal outside CI.
fn progress_bar(len: Option<u64>, time_budget: Option<Duration>) -> ProgressBar {
    let bar = match len {
        Some(len) if time_budget.is_none() => ProgressBar::new(len),
        _ => ProgressBar::new_spinner(),
    };
    let visible = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    bar.set_draw_target(target);
    let template = "{spinner} [{elapsed_precise}] {pos} seeds {per_sec} {wide_bar} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One job runs in this process; more run in worker processes of this executable.
fn workers(jobs: usize) -> Result<Workers, String> {
    if jobs <= 1 {
        return Ok(Workers::InProcess);
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
    Ok(Workers::Processes { exe, jobs })
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `bind`, `virtiofs`, `power-loss` or `all`.
pub fn parse_profiles(text: &str) -> Result<Vec<MountProfile>, String> {
    if text == "all" {
        return Ok(MountProfile::ALL.to_vec());
    }
    text.split(',').map(str::parse).collect()
}

/// `I/N` with I < N.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("shard {text:?} is not I/N"))?;
    let index: u64 = index
        .parse()
        .map_err(|_| format!("bad shard index in {text:?}"))?;
    let count: u64 = count
        .parse()
        .map_err(|_| format!("bad shard count in {text:?}"))?;
    if count == 0 || index >= count {
        return Err(format!("shard {text:?}: need 0 <= I < N"));
    }
    Ok((index, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_profiles_parse() {
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("x").is_err());
        assert_eq!(parse_profiles("all").unwrap().len(), 3);
        assert_eq!(parse_profiles("bind,power-loss").unwrap().len(), 2);
        assert!(parse_profiles("nfs").is_err());
    }
}
