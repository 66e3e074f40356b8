//! `clawsim-agent`: the agent-runner of one session, as run inside its container (or as a child
//! process of the host's ProcessRuntime). Configured by environment variables only.

use clawsim_core::live::agent::{run_agent, settings_from_vars, AGENT_ENV_VARS};

fn main() {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("clawsim-agent: the agent-runner of one clawsim session.\n\nEnvironment:");
        for (name, meaning) in AGENT_ENV_VARS {
            println!("  {name:<32} {meaning}");
        }
        return;
    }
    clawsim_core::live::init_logging("info");
    let vars = std::env::vars().collect();
    match settings_from_vars(&vars) {
        Ok(settings) => std::process::exit(run_agent(settings)),
        Err(error) => {
            eprintln!("clawsim-agent: {error}");
            std::process::exit(2);
        }
    }
}
