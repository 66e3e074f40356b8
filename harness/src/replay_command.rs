//! `clawsim replay`: one seed, a saved case, a scenario or an artifact folder run again, byte
//! for byte.
//!
//! A seed replays the world's default scenario on its profile (by default the one `clawsim run`
//! gave it: seed mod 3 over bind, virtiofs, power-loss). A folder replays its `shrunk.json`; a
//! `.toml` file is read as a scenario (`fixtures/scenarios/`), any other path as a case file
//! (JSON; a scenario in JSON is a case with a name). The case is checked before its world runs.
//! The trace can be written as JSON lines (`--trace FILE`, or `--trace` alone for stdout) and
//! drawn (`--timeline`: SVG, HTML or PNG by the file's extension; any other is an error).

use crate::build_id;
use crate::case::{Case, WorkloadKind};
use crate::cli::{check_writable_file, is_stdout, print_stdout};
use crate::seeds::run_case;
use crate::timeline::TimelineFormat;
use clap::Args;
use clawsim_sim::fs::MountProfile;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `clawsim replay` options.
#[derive(Debug, Clone, Args)]
#[command(after_help = crate::cli::EXIT_STATUS_HELP)]
pub struct ReplayArgs {
    /// A seed, a case file (JSON), a scenario file (TOML or JSON), or an artifact folder.
    pub target: String,
    /// Profile for a seed (default: the one `clawsim run` gives it with all profiles).
    #[arg(long)]
    pub profile: Option<String>,
    /// Workload for a seed (as `clawsim run --workload`).
    #[arg(long, value_enum, default_value = "swarm")]
    pub workload: WorkloadKind,
    /// Storage design for a seed (as `clawsim run --design`); a case file names its own.
    #[arg(long)]
    pub design: Option<String>,
    /// Write the trace as JSON lines to this file; `--trace` alone or `--trace -` writes it to
    /// stdout (and the report goes to stderr).
    #[arg(long, num_args = 0..=1, default_missing_value = "-")]
    pub trace: Option<PathBuf>,
    /// Draw the run to this file: `.svg`, `.html` (the chart and its events as lists) or `.png`.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
}

/// Replays; the exit status is 0 when every property held, 1 otherwise.
pub fn replay(args: &ReplayArgs) -> Result<i32, String> {
    let mut case = load_case(&args.target, args.profile.as_deref(), args.workload)?;
    if let Some(name) = &args.design {
        clawsim_core::config::Design::by_name(name)?;
        case.design = Some(name.clone()).filter(|name| name != "v2");
    }
    let trace_to_stdout = args.trace.as_deref().is_some_and(is_stdout);
    if let Some(path) = args.trace.as_deref().filter(|p| !is_stdout(p)) {
        check_writable_file("--trace", path)?;
    }
    let timeline = match &args.timeline {
        Some(path) => {
            check_writable_file("--timeline", path)?;
            Some((path, TimelineFormat::of_path(path)?))
        }
        None => None,
    };
    eprintln!(
        "clawsim replay: seed {} profile {} chats {} messages {} faults {} build {}",
        case.seed,
        case.profile,
        case.workload.chats.len(),
        case.workload.messages.len(),
        case.faults.faults.len(),
        build_id()
    );
    if let (Ok(seed), WorkloadKind::Swarm) = (args.target.parse::<u64>(), args.workload) {
        eprintln!("{}", crate::swarm::SwarmDraw::for_seed(seed).describe());
    }
    let (outcome, verdict) = run_case(&case)?;
    if let Some(path) = &args.trace {
        let lines = outcome.trace.to_json_lines();
        if trace_to_stdout {
            print_stdout(&lines)?;
        } else {
            write(path, &lines)?;
        }
    }
    if let Some((path, format)) = timeline {
        let picture = format.draw(&outcome, &verdict)?;
        std::fs::write(path, picture).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut report = format!(
        "trace {:016x}: {} steps, {:.0} simulated s, faults: {}\n",
        outcome.trace_hash,
        outcome.steps,
        outcome.sim_ms as f64 / 1_000.0,
        fault_list(&outcome.fault_counts)
    );
    for error in &outcome.errors {
        let _ = writeln!(report, "world error: {error}");
    }
    for violation in &verdict.violations {
        let _ = writeln!(report, "{violation}");
    }
    let _ = writeln!(report, "{} violations", verdict.violations.len());
    if trace_to_stdout {
        eprint!("{report}");
    } else {
        print_stdout(&report)?;
    }
    Ok(if verdict.held() { 0 } else { 1 })
}

/// The faults a run recorded, as `kind ×count` in kind order, or `none`.
fn fault_list(counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_string();
    }
    let kinds: Vec<String> = counts
        .iter()
        .map(|(kind, n)| format!("{kind} ×{n}"))
        .collect();
    kinds.join(", ")
}

/// The case a replay target names, checked (see [`Case::validate`]); errors name the file.
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
    if !file.exists() {
        return Err(format!(
            "{}: no such file (a replay target is a seed, a case or scenario file, or an \
             artifact folder)",
            file.display()
        ));
    }
    let mut case = if file.extension().is_some_and(|e| e == "toml") {
        crate::scenarios::load(&file)?.case
    } else {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        serde_json::from_str::<Case>(&text).map_err(|e| format!("{}: {e}", file.display()))?
    };
    if let Some(name) = profile {
        case.profile = name.to_string();
    }
    case.validate()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(case)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
