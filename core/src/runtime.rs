//! Containers, as the host sees them (PROTOCOL §7, container lifecycle).
//!
//! Every method returns at once: starting a container is a request whose outcome the host
//! observes later through [`ContainerRuntime::state`]. That keeps the host's steps bounded
//! whether the runtime is a child process, Docker, or the simulator's model of either.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the host asks a runtime to start for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub session_id: String,
    pub agent_group_id: String,
    /// The session folder on the host; mounted at `/workspace` in a container.
    pub session_dir: PathBuf,
    /// Environment of the agent-runner (see `clawsim-agent --help`).
    pub env_vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Asked to start; not known to run yet.
    Starting,
    Running,
    /// Not running: never started, exited, killed, or failed to start.
    Stopped,
}

pub trait ContainerRuntime {
    /// Requests a container for `spec.session_id`; a no-op when one is starting or running.
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String>;
    fn state(&mut self, session_id: &str) -> ContainerState;
    /// Kills the session's container at once (a presumed-dead or hung agent).
    fn kill(&mut self, session_id: &str) -> Result<(), String>;
    /// At host start: takes charge of the session's container if one still runs from an
    /// earlier host process, and says whether it does. Runtimes that always know their
    /// containers (Docker by label, the simulator) need nothing more than `state`.
    fn adopt(&mut self, spec: &ContainerSpec) -> ContainerState {
        self.state(&spec.session_id)
    }
    /// Stops an idle container.
    fn stop(&mut self, session_id: &str) -> Result<(), String> {
        self.kill(session_id)
    }
}
