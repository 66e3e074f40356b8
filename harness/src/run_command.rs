//! `clawsim run`: many seeds across the mount profiles, a progress bar, a summary table, and
//! an exit status that says whether every property held (0), a property failed (1), or the run
//! could not be made (2: bad options, an output path that cannot be written, a run that would
//! check nothing).
//!
//! It prints, before anything else, the seed range (a random or commit-derived start resolved
//! to its number), the profiles, the jobs and the build id, so a report is complete by itself.
//! Failing seeds are shrunk and saved as artifacts (see [`crate::artifact`]), the first
//! `--shrink-max` of them; every failure is listed with one command that replays it.

use crate::artifact::save_failure;
use crate::case::WorkloadKind;
use crate::cli::{
    absolute, check_writable_file, check_writable_folder, is_stdout, print_stdout,
    write_file_atomically,
};
use crate::seeds::{fold_commit, run_pool, PoolOptions, SeedPlan, SeedResult, StartSeed, Workers};
use crate::summary::{RunInfo, Summary};
use crate::{build_id, parse_duration};
use clap::Args;
use clawsim_core::config::Design;
use clawsim_sim::fs::MountProfile;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default time budget when neither `--seeds` nor `--time` is given.
const DEFAULT_TIME: Duration = Duration::from_secs(60);

/// `clawsim run` options.
#[derive(Debug, Clone, Args)]
#[command(after_help = crate::cli::EXIT_STATUS_HELP)]
pub struct RunArgs {
    /// Run this many seeds (at least 1).
    #[arg(long, conflicts_with = "time")]
    pub seeds: Option<u64>,
    /// Run seeds for this long (e.g. 60s, 5m); the default is 60 s.
    #[arg(long, value_parser = parse_duration)]
    pub time: Option<Duration>,
    /// Mount profile: bind, virtiofs, power-loss, a comma-separated list, or all.
    #[arg(long, default_value = "all")]
    pub profile: String,
    /// Workload each seed runs: `swarm` (each seed draws its own features and fault kinds), or
    /// `bursts` (the world's chat-burst scenario).
    #[arg(long, value_enum, default_value = "swarm")]
    pub workload: WorkloadKind,
    /// Storage design of the session files (`clawsim compare --list` names them).
    #[arg(long, default_value = "v2", value_parser = parse_design)]
    pub design: Design,
    /// The first seed: a number, `random` (drawn now and printed first), `commit` (the commit
    /// `git rev-parse HEAD` names, folded to 64 bits) or a 40-hex-digit git commit hash.
    #[arg(long, default_value = "0")]
    pub seed: StartSeed,
    /// Worker processes, at least 1 (default: the machine's cores; 1 runs in this process).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// Run only shard I of N of the seed range (`I/N`, I from 0); every shard covers every
    /// profile of the run.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Run each seed twice and compare trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write the summary as JSON to this file (`-`: stdout, and the table goes to stderr).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Where failure artifacts go.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Time budget for shrinking each failure.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub shrink_time: Duration,
    /// Failures shrunk and saved as artifacts; the rest are listed with their replay commands.
    #[arg(long, default_value_t = 5)]
    pub shrink_max: usize,
    /// Write the run's results as a JUnit XML report to this file: one test case per property
    /// and one per failing seed.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// While the run goes on, rewrite the `--summary-json` file this often (atomically), so a
    /// job killed before its end still leaves the summary of what it checked.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub summary_every: Duration,
    /// Stop taking new seeds at the first failure (seeds already running still report), and
    /// exit 1.
    #[arg(long)]
    pub fail_fast: bool,
    /// For the harness's own tests of the failure path: every seed reports a doctored
    /// violation (the core holds its properties, so nothing else makes `run` fail on demand).
    #[arg(long, hide = true)]
    pub doctor_violations: bool,
}

/// Runs the command; the exit status is 0 when every property held, 1 otherwise. An error (2)
/// means nothing was checked, or an output could not be written.
pub fn run(args: &RunArgs) -> Result<i32, String> {
    let profiles = parse_profiles(&args.profile)?;
    let shard = args.shard.unwrap_or((0, 1));
    let time_budget = match args.seeds {
        Some(_) => args.time,
        None => Some(args.time.unwrap_or(DEFAULT_TIME)),
    };
    let (start, origin) = resolve_seed(&args.seed)?;
    let plan = SeedPlan {
        start,
        count: args.seeds,
        profiles,
        shard,
    };
    refuse_empty(args, &plan, time_budget)?;
    check_outputs(args)?;
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let info = run_info(args, &plan, time_budget, jobs);
    eprintln!("{}", header(&info, &origin));
    let options = PoolOptions {
        workers: workers(jobs)?,
        workload: args.workload,
        design: args.design,
        time_budget,
        check_determinism: args.check_determinism,
        stop: Default::default(),
    };
    let mut collector = Collector::new(args, info, &options);
    let progress = progress_bar(plan.len(), time_budget);
    let started = Instant::now();
    let pooled = run_pool(&plan, &options, |result| {
        if let Some(failed) = collector.add(result) {
            progress.suspend(|| eprintln!("{failed}"));
        }
        let summary = &collector.summary;
        progress.set_position(summary.seeds.min(plan.len().unwrap_or(u64::MAX)));
        progress.set_message(format!("{} violations", summary.violations()));
        collector.write_periodically(started);
    });
    progress.finish_and_clear();
    let Collector {
        mut summary,
        kept_failing,
        ..
    } = collector;
    summary.wall = started.elapsed();
    // A run stopped by --fail-fast or a failed worker did not cover what it was asked to.
    summary.complete = pooled.is_ok() && !options.stop.load(Ordering::Relaxed);
    // What ran before a worker failed is still reported, failures and all.
    save_artifacts(args, &mut summary, kept_failing.values());
    report(args, &summary)?;
    warn_never_reached(&summary);
    pooled?;
    if summary.seeds == 0 {
        return Err(format!(
            "no seed ran within the time budget of {} s: nothing was checked",
            time_budget.unwrap_or_default().as_secs_f64()
        ));
    }
    Ok(if summary.violations() == 0 { 0 } else { 1 })
}

/// What the run keeps while seeds report: the summary, and the full results of only the
/// failures it will shrink (the lowest `--shrink-max` seeds), so memory stays flat however
/// long the run and however many seeds fail.
struct Collector<'a> {
    args: &'a RunArgs,
    summary: Summary,
    kept_failing: BTreeMap<u64, SeedResult>,
    stop: Arc<AtomicBool>,
    last_written: Instant,
}

impl<'a> Collector<'a> {
    fn new(args: &'a RunArgs, run: RunInfo, options: &PoolOptions) -> Self {
        Self {
            args,
            summary: Summary {
                run,
                ..Summary::default()
            },
            kept_failing: BTreeMap::new(),
            stop: options.stop.clone(),
            last_written: Instant::now(),
        }
    }

    /// Adds one seed's result; for a failing seed, the line that announces it.
    fn add(&mut self, mut result: SeedResult) -> Option<String> {
        if self.args.doctor_violations {
            doctor(&mut result);
        }
        self.summary.add(&result);
        if !result.failed() {
            return None;
        }
        if self.args.fail_fast {
            self.stop.store(true, Ordering::Relaxed);
        }
        let line = format!("seed {} ({}) failed", result.seed, result.profile);
        self.kept_failing.insert(result.seed, result);
        while self.kept_failing.len() > self.args.shrink_max {
            self.kept_failing.pop_last();
        }
        Some(line)
    }

    /// Rewrites the summary file once `--summary-every` has passed since the last write. A
    /// write that fails is reported and the run goes on: the final write will say more.
    fn write_periodically(&mut self, started: Instant) {
        let Some(path) = &self.args.summary_json else {
            return;
        };
        if is_stdout(path) || self.last_written.elapsed() < self.args.summary_every {
            return;
        }
        self.last_written = Instant::now();
        let mut partial = self.summary.clone();
        partial.wall = started.elapsed();
        if let Err(error) = write_json(path, &partial) {
            eprintln!("warning: periodic summary not written: {error}");
        }
    }
}

/// The table on stdout (stderr when the JSON goes to stdout), and the JSON summary.
fn report(args: &RunArgs, summary: &Summary) -> Result<(), String> {
    let json_to_stdout = args.summary_json.as_deref().is_some_and(is_stdout);
    if json_to_stdout {
        eprint!("{}", summary.table());
    } else {
        print_stdout(&summary.table())?;
    }
    if let Some(path) = &args.junit {
        write_file_atomically(path, &crate::junit::report(summary, &build_id()))?;
    }
    match &args.summary_json {
        Some(path) if json_to_stdout => print_stdout(&summary_text(summary)?),
        Some(path) => write_json(path, summary),
        None => Ok(()),
    }
}

/// The summary's JSON, as `--summary-json` writes it.
pub fn summary_text(summary: &Summary) -> Result<String, String> {
    let json = summary.json(&build_id());
    Ok(serde_json::to_string_pretty(&json).map_err(|e| e.to_string())? + "\n")
}

/// Writes the summary's JSON to `path`, replacing any older one whole.
fn write_json(path: &Path, summary: &Summary) -> Result<(), String> {
    write_file_atomically(path, &summary_text(summary)?)
}

/// The start seed as a number (`random` drawn now, a commit folded), and where it came from,
/// in words for the header (empty for a number).
fn resolve_seed(seed: &StartSeed) -> Result<(u64, String), String> {
    match seed {
        StartSeed::Fixed(seed) => Ok((*seed, String::new())),
        StartSeed::Random => {
            let seed = random_seed();
            Ok((seed, format!(" (random; run again with --seed {seed})")))
        }
        StartSeed::Commit(hash) => Ok((fold_commit(hash)?, format!(" (commit {hash})"))),
        StartSeed::HeadCommit => {
            let hash = head_commit()?;
            Ok((fold_commit(&hash)?, format!(" (commit {hash}, HEAD)")))
        }
    }
}

/// A fresh seed below 2^63, so a range starting there does not wrap. Drawn from the standard
/// library's per-process random hash keys, the wall clock and the process id: this is the one
/// choice of a run that must differ between runs, and it is printed before any world runs.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    hasher.finish() >> 1
}

/// The commit `git rev-parse HEAD` names in the current folder.
fn head_commit() -> Result<String, String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .map_err(|e| format!("--seed commit: running `git rev-parse HEAD`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "--seed commit: `git rev-parse HEAD` failed in {}: {}",
            std::env::current_dir().map_or("this folder".into(), |d| d.display().to_string()),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A run that would check nothing is a mistake, not a success.
fn refuse_empty(
    args: &RunArgs,
    plan: &SeedPlan,
    time_budget: Option<Duration>,
) -> Result<(), String> {
    if args.seeds == Some(0) {
        return Err("--seeds 0 runs no seed: nothing would be checked".into());
    }
    if time_budget == Some(Duration::ZERO) {
        return Err("--time 0s runs no seed: nothing would be checked".into());
    }
    if plan.is_empty() {
        let (index, count) = plan.shard;
        return Err(format!(
            "shard {index}/{count} of {} seeds holds no seed (shards take rounds of {} seeds, \
             one per profile): nothing would be checked; use fewer shards or more seeds",
            args.seeds.unwrap_or_default(),
            plan.profiles.len()
        ));
    }
    Ok(())
}

/// Every output path is checked before the first world, so a long run never ends in an IO
/// error it could have reported at once.
fn check_outputs(args: &RunArgs) -> Result<(), String> {
    if let Some(path) = &args.summary_json {
        if !is_stdout(path) {
            check_writable_file("--summary-json", path)?;
        }
    }
    if let Some(path) = &args.junit {
        check_writable_file("--junit", path)?;
    }
    check_writable_folder("--artifacts", &args.artifacts)
}

/// A violation for a seed whose properties held (`--doctor-violations`).
fn doctor(result: &mut SeedResult) {
    result
        .verdict
        .violations
        .push(crate::properties::Violation {
            property: crate::properties::Property::NoDuplicate,
            detail: "doctored by --doctor-violations (a test of the failure path)".into(),
            at_ms: None,
            session: None,
        });
}

/// Shrinks and saves the first `--shrink-max` failures, and prints how to replay each failure.
fn save_artifacts<'r>(
    args: &RunArgs,
    summary: &mut Summary,
    shrinkable: impl Iterator<Item = &'r SeedResult>,
) {
    let root = absolute(&args.artifacts).unwrap_or_else(|_| args.artifacts.clone());
    let mut shrunk = 0u64;
    for result in shrinkable {
        shrunk += 1;
        let failure = summary.failures.iter_mut().find(|f| f.seed == result.seed);
        match save_failure(&root, result, args.shrink_time) {
            Ok(saved) => {
                eprintln!("{saved}");
                if let Some(failure) = failure {
                    failure.artifact = Some(saved.dir.display().to_string());
                    failure.replay = saved.replay.clone();
                }
            }
            Err(error) => eprintln!("seed {}: artifact not saved: {error}", result.seed),
        }
    }
    for failure in summary.failures.iter().filter(|f| f.artifact.is_none()) {
        eprintln!(
            "seed {} ({}): not shrunk\n  replay: {}",
            failure.seed, failure.profile, failure.replay
        );
    }
    if shrunk < summary.violations() {
        eprintln!(
            "shrunk {shrunk} of {}; the rest are listed with their replay commands",
            summary.violations()
        );
    }
}

/// What the run covers, for its header and summary.
fn run_info(
    args: &RunArgs,
    plan: &SeedPlan,
    time_budget: Option<Duration>,
    jobs: usize,
) -> RunInfo {
    let (index, count) = plan.shard;
    RunInfo {
        seed_start: plan.start,
        seed_count: plan.count,
        time_budget_seconds: time_budget.map(|t| t.as_secs_f64()),
        shard: format!("{index}/{count}"),
        workload: args.workload.name().to_string(),
        design: args.design.name.to_string(),
        profiles: plan.profiles.iter().map(|p| p.name().to_string()).collect(),
        jobs,
        check_determinism: args.check_determinism,
    }
}

/// What the run is about to do, and with what build.
fn header(info: &RunInfo, origin: &str) -> String {
    let range = match info.time_budget_seconds {
        Some(seconds) if info.seed_count.is_none() => format!("{} for {seconds}s", info.range()),
        _ => info.range(),
    };
    format!(
        "clawsim run: seeds {range}{origin} shard {} profiles {} workload {} design {} jobs {}{} build {}",
        info.shard,
        info.profiles.join(","),
        info.workload,
        info.design,
        info.jobs,
        if info.check_determinism {
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
pub(crate) fn workers(jobs: usize) -> Result<Workers, String> {
    if jobs <= 1 {
        return Ok(Workers::InProcess);
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
    Ok(Workers::Processes { exe, jobs })
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A named design (see [`Design::NAMED`]).
pub fn parse_design(text: &str) -> Result<Design, String> {
    Design::by_name(text)
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

/// Warns about every situation of the coverage catalog no seed reached: no property was
/// tested there, however clean the run.
fn warn_never_reached(summary: &Summary) {
    let never = summary.never_reached();
    if !never.is_empty() && summary.seeds > 0 {
        eprintln!(
            "warning: {} of {} coverage situations were never reached, so nothing was checked \
             there: {}",
            never.len(),
            crate::coverage::CATALOG.len(),
            never.join(", ")
        );
    }
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
