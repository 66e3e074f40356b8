//! `clawsim`: the command line.

use clap::{Parser, Subcommand};
use clawsim::chat::ChatArgs;
use clawsim::cli::init_logging;
use clawsim::merge::MergeArgs;
use clawsim::replay_command::{replay, ReplayArgs};
use clawsim::run_command::{run, RunArgs};
use clawsim::scenarios::ScenariosArgs;

/// Worlds allocate small strings and nodes at every step; mimalloc serves them faster than the
/// system allocator (SQLite keeps its own `malloc`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "clawsim",
    version,
    about = "Deterministic simulation and live testing of a container-per-conversation agent host",
    after_help = concat!(
        "Exit status: 0 every property held, 1 a violation, 2 an error (bad input, IO).\n",
        "Logs go to stderr, filtered by RUST_LOG (e.g. RUST_LOG=clawsim_core=debug); colours only \
         on a terminal, never with NO_COLOR set."
    )
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run many seeded worlds across the mount profiles and check every property (the main job).
    Run(RunArgs),
    /// Merge the summaries of a run's shards (`run --shard I/N --summary-json`) into one verdict.
    Merge(MergeArgs),
    /// Run the same seeds under every named storage design and mount profile; print the table.
    Compare(clawsim::compare::CompareArgs),
    /// Replay a seed, a case file or an artifact folder, byte for byte.
    Replay(ReplayArgs),
    /// Run the named scenarios of fixtures/scenarios and check each one's expectation.
    Scenarios(ScenariosArgs),
    /// Chat with the mock agent through the live host on this terminal.
    Chat(ChatArgs),
    /// Run the agent-runner of one session (configured by CLAWSIM_* variables, of which
    /// CLAWSIM_SESSION_DIR is required; see `clawsim-agent --help`). The live host starts this
    /// per session.
    Agent,
    /// Run seeds for a parent `clawsim run` (JSON lines on stdin and stdout).
    #[command(hide = true)]
    Worker,
}

/// Where worlds run (`run`, `worker`, `replay`, `scenarios`) log lines carry no wall-clock
/// stamp: each trace line already carries the simulated time. The live commands keep it.
fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => {
            // Thousands of worlds log what their faults make the core say; only errors show.
            init_logging("error", false);
            exit_with(run(&args))
        }
        Command::Compare(args) => {
            init_logging("error", false);
            exit_with(clawsim::compare::compare(&args))
        }
        Command::Worker => {
            init_logging("error", false);
            let stdout = std::io::stdout().lock();
            clawsim::workers::serve(std::io::stdin().lock(), std::io::BufWriter::new(stdout))
        }
        Command::Merge(args) => {
            init_logging("error", false);
            exit_with(clawsim::merge::run(&args))
        }
        Command::Replay(args) => {
            init_logging("warn", false);
            exit_with(replay(&args))
        }
        Command::Scenarios(args) => {
            init_logging("error", false);
            exit_with(clawsim::scenarios::command(&args))
        }
        Command::Chat(args) => {
            init_logging("warn", true);
            exit_with(clawsim::chat::run(&args))
        }
        Command::Agent => {
            init_logging("info", true);
            // Lossily: `std::env::vars` panics on a variable that is not UTF-8.
            let vars = std::env::vars_os()
                .map(|(name, value)| {
                    let text = |s: std::ffi::OsString| s.to_string_lossy().into_owned();
                    (text(name), text(value))
                })
                .collect();
            match clawsim_core::live::agent::local_settings_from_vars(&vars) {
                Ok(settings) => std::process::exit(clawsim_core::live::agent::run_agent(settings)),
                Err(error) => Err(error),
            }
        }
    };
    if let Err(error) = result {
        eprintln!("clawsim: {error}");
        std::process::exit(2);
    }
}

/// Exits with the command's status, or hands its error on.
fn exit_with(result: Result<i32, String>) -> Result<(), String> {
    let code = result?;
    std::process::exit(code)
}
