//! `clawsim replay`: one seed, a saved case or an artifact folder run again, byte for byte.
//!
//! A seed replays the world's default scenario on its profile (by default the one `clawsim run`
//! gave it: seed mod 3 over bind, virtiofs, power-loss). A folder replays its `shrunk.json`; any
//! other path is read as a case file. The trace can be written as JSON lines (`--trace`) and
//! drawn (`--timeline`, SVG or HTML by the file's extension).

use crate::build_id;
use crate::case::{Case, WorkloadKind};
use crate::seeds::run_case;
use crate::timeline::{timeline_html, timeline_svg};
use clap::Args;
use clawsim_sim::fs::MountProfile;
use std::path::{Path, PathBuf};

/// `clawsim replay` options.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// A seed, a case file (JSON), or an artifact folder.
    pub target: String,
    /// Profile for a seed (default: the one `clawsim run` gives it with all profiles).
    #[arg(long)]
    pub profile: Option<String>,
    /// Workload for a seed (as `clawsim run --workload`).
    #[arg(long, value_enum, default_value = "default")]
    pub workload: WorkloadKind,
    /// Write the trace as JSON lines to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Draw the run to this file (`.svg` or `.html`).
    #[arg(long)]
    pub timeline: Option<PathBuf>,
}

/// Replays; the exit status is 0 when every property held, 1 otherwise.
pub fn replay(args: &ReplayArgs) -> Result<i32, String> {
    let case = load_case(&args.target, args.profile.as_deref(), args.workload)?;
    eprintln!(
        "clawsim replay: seed {} profile {} messages {} faults {} build {}",
        case.seed,
        case.profile,
        case.workload.messages.len(),
        case.faults.faults.len(),
        build_id()
    );
    let (outcome, verdict) = run_case(&case)?;
    if let Some(path) = &args.trace {
        write(path, &outcome.trace.to_json_lines())?;
    }
    if let Some(path) = &args.timeline {
        let picture = match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => timeline_svg(&outcome, &verdict),
            _ => timeline_html(&outcome, &verdict),
        };
        write(path, &picture)?;
    }
    println!(
        "trace {:016x}: {} steps, {:.0} simulated s, faults {:?}",
        outcome.trace_hash,
        outcome.steps,
        outcome.sim_ms as f64 / 1_000.0,
        outcome.fault_counts
    );
    for error in &outcome.errors {
        println!("world error: {error}");
    }
    for violation in &verdict.violations {
        println!("{violation}");
    }
    println!("{} violations", verdict.violations.len());
    Ok(if verdict.held() { 0 } else { 1 })
}

/// The case a replay target names.
pub fn load_case(
    target: &str,
    profile: Option<&str>,
    workload: WorkloadKind,
) -> Result<Case, String> {
    if let Ok(seed) = target.parse::<u64>() {
        let profile = match profile {
            Some(name) => name.parse()?,
            None => MountProfile::ALL[(seed % MountProfile::ALL.len() as u64) as usize],
        };
        return Ok(Case::for_seed(seed, profile, workload));
    }
    let path = Path::new(target);
    let file = if path.is_dir() {
        path.join("shrunk.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut case: Case =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    if let Some(name) = profile {
        case.profile = name.to_string();
    }
    case.mount_profile()?;
    Ok(case)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
