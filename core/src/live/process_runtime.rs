//! A container runtime without containers: each session's agent-runner is a local child process
//! of `clawsim-agent`, with the session folder given by `CLAWSIM_SESSION_DIR`. It lets the whole
//! system run on a machine without Docker (`clawsim chat`, core's end-to-end tests).

use crate::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct ProcessRuntime {
    agent_binary: PathBuf,
    agent_args: Vec<String>,
    children: BTreeMap<String, Child>,
}

impl ProcessRuntime {
    /// `agent_binary`: path of `clawsim-agent`. Each child's log goes to
    /// `<session_dir>/../<session_id>.agent.log`, outside the folder the agent sees.
    pub fn new(agent_binary: impl Into<PathBuf>) -> Self {
        Self {
            agent_binary: agent_binary.into(),
            agent_args: Vec::new(),
            children: BTreeMap::new(),
        }
    }

    /// Arguments for the agent binary (`clawsim agent` runs the agent-runner in the CLI itself).
    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.agent_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// The process id of a session's running agent, if any (tests kill it from outside).
    pub fn pid(&mut self, session_id: &str) -> Option<u32> {
        (self.state(session_id) == ContainerState::Running)
            .then(|| self.children.get(session_id).map(Child::id))
            .flatten()
    }

    fn log_file(spec: &ContainerSpec) -> Stdio {
        let log_path = spec
            .session_dir
            .with_file_name(format!("{}.agent.log", spec.session_id));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    }
}

impl ContainerRuntime for ProcessRuntime {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        if self.state(&spec.session_id) == ContainerState::Running {
            return Ok(());
        }
        let child = Command::new(&self.agent_binary)
            .args(&self.agent_args)
            .envs(&spec.env_vars)
            .env("CLAWSIM_SESSION_DIR", &spec.session_dir)
            .stdin(Stdio::null())
            .stdout(Self::log_file(spec))
            .stderr(Self::log_file(spec))
            .spawn()
            .map_err(|e| format!("{}: {e}", self.agent_binary.display()))?;
        // The pid file lets an operator (or a test) kill the agent from outside, as `docker kill`.
        let pid_path = spec
            .session_dir
            .with_file_name(format!("{}.agent.pid", spec.session_id));
        let _ = std::fs::write(pid_path, child.id().to_string());
        self.children.insert(spec.session_id.clone(), child);
        Ok(())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        match self.children.get_mut(session_id).map(Child::try_wait) {
            Some(Ok(None)) => ContainerState::Running,
            _ => ContainerState::Stopped,
        }
    }

    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        if let Some(mut child) = self.children.remove(session_id) {
            // An already exited child is what we want; only a failed wait is an error.
            let _ = child.kill();
            child
                .wait()
                .map_err(|e| format!("session {session_id}: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for ProcessRuntime {
    fn drop(&mut self) {
        let sessions: Vec<String> = self.children.keys().cloned().collect();
        for session_id in sessions {
            let _ = self.kill(&session_id);
        }
    }
}
