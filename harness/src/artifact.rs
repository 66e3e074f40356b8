//! Failure artifacts: everything a person needs to look at a failing seed, in one folder.
//!
//! `artifacts/seed-<seed>-<profile>/` holds:
//! - `README.txt`: the property, the seed, the build, the shrink's outcome and the one command
//!   that replays the shrunk case;
//! - `case.json`: every option the seed derived (profile, workload, faults, active and quiet
//!   times), replayable as is;
//! - `shrunk.json`: the smallest failing case the shrinker found;
//! - `violations.json`: what the checkers found in the original run;
//! - `trace.jsonl` and `shrunk-trace.jsonl`: the full traces, one step per line;
//! - `timeline.html`: the shrunk run drawn, the violation highlighted.
//!
//! `clawsim replay <folder>` runs `shrunk.json`. The replay commands an artifact prints name
//! this executable and the folder by absolute path, so they work pasted into any shell in any
//! folder (not only `cargo run` inside the repository).

use crate::build_id;
use crate::case::Case;
use crate::cli::{absolute, shell_command, this_exe};
use crate::properties::Property;
use crate::seeds::{run_case, SeedResult};
use crate::shrink::shrink;
use crate::timeline::timeline_html;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A saved artifact.
#[derive(Debug, Clone)]
pub struct Saved {
    pub dir: PathBuf,
    pub property: Option<Property>,
    pub seed: u64,
    /// The command that replays the shrunk case.
    pub replay: String,
    /// Messages and faults before and after shrinking.
    pub sizes: ((usize, usize), (usize, usize)),
}

impl std::fmt::Display for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((m0, f0), (m1, f1)) = self.sizes;
        let property = self
            .property
            .map_or("determinism".to_string(), |p| p.to_string());
        write!(
            f,
            "seed {}: {property} failed; shrunk from {m0} messages and {f0} faults to {m1} and \
             {f1}; saved in {}\n  replay: {}",
            self.seed,
            self.dir.display(),
            self.replay
        )
    }
}

/// Shrinks the failing seed for at most `shrink_time` and writes its artifact under `root`.
pub fn save_failure(
    root: &Path,
    result: &SeedResult,
    shrink_time: Duration,
) -> Result<Saved, String> {
    let mut case = Case::for_seed(result.seed, result.profile, result.workload);
    case.design = (!result.design.is_v2()).then(|| result.design.name.to_string());
    let property = result.verdict.violations.first().map(|v| v.property);
    let shrunk = match property {
        Some(property) => shrink(&case, property, shrink_time).case,
        None => case.clone(),
    };
    let dir = absolute(root)?.join(format!("seed-{}-{}", result.seed, result.profile.name()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (original, _) = run_case(&case)?;
    let (small, small_verdict) = run_case(&shrunk)?;
    write(&dir, "case.json", &to_json(&case)?)?;
    write(&dir, "shrunk.json", &to_json(&shrunk)?)?;
    write(&dir, "violations.json", &to_json(&result.verdict)?)?;
    write(&dir, "trace.jsonl", &original.trace.to_json_lines())?;
    write(&dir, "shrunk-trace.jsonl", &small.trace.to_json_lines())?;
    write(
        &dir,
        "timeline.html",
        &timeline_html(&small, &small_verdict),
    )?;
    let replay = shell_command(&[this_exe(), "replay".into(), dir.display().to_string()]);
    let saved = Saved {
        dir: dir.clone(),
        property,
        seed: result.seed,
        replay,
        sizes: (sizes(&case), sizes(&shrunk)),
    };
    write(&dir, "README.txt", &readme(&saved, result))?;
    Ok(saved)
}

fn sizes(case: &Case) -> (usize, usize) {
    (case.workload.messages.len(), case.faults.faults.len())
}

fn readme(saved: &Saved, result: &SeedResult) -> String {
    let violations: Vec<String> = result
        .verdict
        .violations
        .iter()
        .map(|v| format!("  {v}"))
        .collect();
    format!(
        "{saved}\n\nbuild: {}\nseed: {}\nprofile: {}\ntrace hash: {:016x}\n\nviolations:\n{}\n\n\
         replay the original seed: {}\n",
        build_id(),
        result.seed,
        result.profile.name(),
        result.trace_hash,
        violations.join("\n"),
        seed_replay_command(result)
    )
}

/// The command that replays a seed's original run, as `clawsim run` ran it.
pub fn seed_replay_command(result: &SeedResult) -> String {
    let mut words = vec![
        this_exe(),
        "replay".into(),
        result.seed.to_string(),
        "--profile".into(),
        result.profile.name().into(),
        "--workload".into(),
        result.workload.name().into(),
    ];
    if !result.design.is_v2() {
        words.extend(["--design".into(), result.design.name.to_string()]);
    }
    shell_command(&words)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| e.to_string())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}
