//! Named scenarios: plain data files in `fixtures/scenarios/` (TOML or JSON), each a whole case
//! (seed, profile, workload, faults, active and quiet times) plus what its run must show.
//!
//! `clawsim scenarios` runs them all and says which met their expectation; the harness's tests
//! pin each one's trace as a golden snapshot (the trace hash and every step but idle polls).
//! Regressions found by `clawsim run` are kept here too, so they are replayed by name forever.
//!
//! A scenario file:
//!
//! ```toml
//! name = "host crash mid-send"
//! description = "why this scenario exists"
//! seed = 3
//! profile = "bind"
//! active_ms = 300000
//! quiet_ms = 600000
//!
//! [expect]
//! failed = []                        # properties expected to fail (names; default none)
//! faults = { host-crash = 1 }        # fault counts the run must show (default: not checked)
//! received_min = 2                   # sends the platform must have received (default 0)
//!
//! [workload]
//! answer_delay_ms_max = 5000
//! chats = [{ agent_group_id = "ag0", messaging_group_id = "mg0", platform_id = "chat0", per_thread = false }]
//! messages = [{ at_ms = 5000, chat = 0, sender = "u0", sender_id = "id0", text = "m0 hello" }]
//!
//! [faults]
//! faults = [{ at_ms = 20000, fault = { kind = "host-crash", down_ms = 5000 } }]
//! ```

use crate::case::Case;
use crate::properties::{Property, Verdict};
use crate::seeds::run_case;
use clawsim_oracle::event::Event;
use clawsim_sim::world::RunOutcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The folder scenarios live in, relative to the workspace root.
pub const SCENARIO_DIR: &str = "fixtures/scenarios";

/// What a scenario's run must show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Properties expected to fail, by name (`no-loss`, ...); every other must hold.
    #[serde(default)]
    pub failed: Vec<Property>,
    /// Fault counts (by kind) the run must show exactly.
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
    /// At least this many sends the platform received.
    #[serde(default)]
    pub received_min: usize,
}

/// One named scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(flatten)]
    pub case: Case,
    #[serde(default)]
    pub expect: Expect,
}

/// A scenario's run and whether it met its expectation.
pub struct ScenarioRun {
    pub scenario: Scenario,
    pub file: PathBuf,
    pub outcome: RunOutcome,
    pub verdict: Verdict,
    /// Why it did not meet its expectation; empty when it did.
    pub problems: Vec<String>,
}

/// Reads one scenario file (`.toml` or `.json`).
pub fn load(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| e.to_string()),
        _ => serde_json::from_str(&text).map_err(|e| e.to_string()),
    };
    let scenario: Scenario = parsed.map_err(|e| format!("{}: {e}", path.display()))?;
    scenario
        .case
        .validate()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(scenario)
}

/// Every scenario file in `dir`, in name order.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("toml" | "json")
            )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Runs one scenario and judges it against its expectation.
pub fn run(path: &Path) -> Result<ScenarioRun, String> {
    let scenario = load(path)?;
    let (outcome, verdict) = run_case(&scenario.case)?;
    let problems = problems(&scenario.expect, &outcome, &verdict);
    Ok(ScenarioRun {
        scenario,
        file: path.to_path_buf(),
        outcome,
        verdict,
        problems,
    })
}

fn problems(expect: &Expect, outcome: &RunOutcome, verdict: &Verdict) -> Vec<String> {
    let mut problems: Vec<String> = outcome
        .errors
        .iter()
        .map(|e| format!("world: {e}"))
        .collect();
    let failed = verdict.failed();
    if failed != expect.failed {
        problems.push(format!(
            "expected failures {:?}, got {failed:?}",
            expect.failed
        ));
        problems.extend(verdict.violations.iter().map(|v| format!("  {v}")));
    }
    for (kind, count) in &expect.faults {
        let got = outcome.fault_counts.get(kind).copied().unwrap_or(0);
        if got != *count {
            problems.push(format!("expected {count} {kind} faults, got {got}"));
        }
    }
    let received = outcome.ledger.received().count();
    if received < expect.received_min {
        problems.push(format!(
            "expected at least {} received sends, got {received}",
            expect.received_min
        ));
    }
    problems
}

/// The golden form of a trace: its hash and step count (which pin every step), then every step
/// except the agent-runner's plain polls and empty delivery passes, times relative to the start.
pub fn golden_trace(outcome: &RunOutcome) -> String {
    let events = outcome.trace.events();
    let start = events.first().map_or(0, |e| e.at_ms);
    let mut out = format!(
        "trace {:016x}, {} steps\n",
        outcome.trace_hash, outcome.steps
    );
    for event in events {
        let quiet = matches!(
            event.event,
            Event::Polled { .. } | Event::PassBusy | Event::PassDone
        );
        if quiet {
            continue;
        }
        let session = event
            .session
            .as_deref()
            .map_or("", |s| s.rsplit('-').next().unwrap_or(s));
        let _ = writeln!(
            out,
            "{:>9} {:<13} {:<8} {}",
            event.at_ms - start,
            event.actor.name(),
            session,
            event.event
        );
    }
    out
}

/// `clawsim scenarios` options.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 every scenario met its expectation, 1 one did not, \
    2 an error (bad input, IO; a --name no scenario has)."
)]
pub struct ScenariosArgs {
    /// The folder of scenario files (default: fixtures/scenarios under the current folder,
    /// else in the source tree this binary was built from).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run only scenarios whose file name contains this.
    #[arg(long)]
    pub name: Option<String>,
    /// Write each scenario's trace (JSON lines) into this folder.
    #[arg(long)]
    pub trace_dir: Option<PathBuf>,
}

/// Where `clawsim scenarios` looks when not told: under the current folder, then in the source
/// tree the binary was built from (found from the binary, `target/<profile>/clawsim`, and from
/// the harness crate's folder at build time), so it works from any folder.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(SCENARIO_DIR)];
    if let Some(root) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
    {
        dirs.push(root.join(SCENARIO_DIR));
    }
    dirs.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(SCENARIO_DIR),
    );
    dirs
}

/// The scenario folder: `--dir`, else the first of [`default_dirs`] that exists; the error says
/// every place it looked.
pub fn scenario_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = dir {
        if !dir.is_dir() {
            return Err(format!("scenario folder {}: not a folder", dir.display()));
        }
        return Ok(dir.to_path_buf());
    }
    let candidates = default_dirs();
    candidates
        .iter()
        .find(|d| d.is_dir())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
            format!(
                "no scenario folder found; looked in {}; name one with --dir",
                looked.join(", ")
            )
        })
}

/// A scenario file's name without its extension (what `--name` matches and lists).
fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs the scenarios; the exit status is 0 when each met its expectation, 1 otherwise.
pub fn command(args: &ScenariosArgs) -> Result<i32, String> {
    let dir = scenario_dir(args.dir.as_deref())?;
    eprintln!(
        "clawsim scenarios: {} build {}",
        dir.display(),
        crate::build_id()
    );
    if let Some(trace_dir) = &args.trace_dir {
        crate::cli::check_writable_folder("--trace-dir", trace_dir)?;
    }
    let all = files(&dir)?;
    let chosen: Vec<PathBuf> = all
        .iter()
        .filter(|path| {
            args.name
                .as_ref()
                .is_none_or(|filter| file_stem(path).contains(filter.as_str()))
        })
        .cloned()
        .collect();
    if chosen.is_empty() {
        let known: Vec<String> = all.iter().map(|p| file_stem(p)).collect();
        let what = match &args.name {
            Some(name) => format!("no scenario named like {name:?}"),
            None => "no scenario files".to_string(),
        };
        return Err(format!(
            "{what} in {}; known: {}",
            dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    }
    let mut failed = 0;
    for path in chosen {
        let run = run(&path)?;
        if let Some(dir) = &args.trace_dir {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let file = dir.join(format!("{}.jsonl", run.scenario.name.replace(' ', "-")));
            std::fs::write(&file, run.outcome.trace.to_json_lines())
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
        let status = if run.problems.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        let mut report = format!(
            "{status} {} ({}): {} steps, trace {:016x}\n",
            run.scenario.name,
            path.display(),
            run.outcome.steps,
            run.outcome.trace_hash
        );
        for problem in &run.problems {
            let _ = writeln!(report, "     {problem}");
        }
        crate::cli::print_stdout(&report)?;
        failed += usize::from(!run.problems.is_empty());
    }
    Ok(i32::from(failed > 0))
}
