//! A container runtime without containers: each session's agent-runner is a local child process
//! of `clawsim-agent`, with the session folder given by `CLAWSIM_SESSION_DIR`. It lets the whole
//! system run on a machine without Docker (`clawsim chat`, core's end-to-end tests).
//!
//! **Surviving the host.** Beside each session folder the runtime keeps `<id>.agent.pid` and
//! `<id>.agent.lock`; the agent holds the lock while it lives ([`agent_lock`]). A restarted
//! host's runtime adopts a session whose lock is held ([`ContainerRuntime::adopt`], and again
//! before any start) instead of starting a second agent-runner on it; an adopted agent is
//! killed through its pid file, and only while its lock shows it alive.

use super::agent_lock;
use crate::runtime::{ContainerRuntime, ContainerSpec, ContainerState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The environment variable naming the lock file the agent must hold.
pub const AGENT_LOCK_VAR: &str = "CLAWSIM_AGENT_LOCK";

pub struct ProcessRuntime {
    agent_binary: PathBuf,
    agent_args: Vec<String>,
    children: BTreeMap<String, Child>,
    /// Agents an earlier host process started, still alive when seen: session → session dir.
    adopted: BTreeMap<String, PathBuf>,
}

impl ProcessRuntime {
    /// `agent_binary`: path of `clawsim-agent`. Each child's log goes to
    /// `<session_dir>/../<session_id>.agent.log`, outside the folder the agent sees.
    pub fn new(agent_binary: impl Into<PathBuf>) -> Self {
        Self {
            agent_binary: agent_binary.into(),
            agent_args: Vec::new(),
            children: BTreeMap::new(),
            adopted: BTreeMap::new(),
        }
    }

    /// Arguments for the agent binary (`clawsim agent` runs the agent-runner in the CLI itself).
    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.agent_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// The process id of a session's running child agent, if any (tests kill it from outside).
    pub fn pid(&mut self, session_id: &str) -> Option<u32> {
        (self.state(session_id) == ContainerState::Running)
            .then(|| self.children.get(session_id).map(Child::id))
            .flatten()
    }

    /// Forgets every agent without stopping it, as a host process that dies does; the children
    /// are returned so that a test simulating that death can still reap them.
    pub fn abandon(&mut self) -> Vec<Child> {
        self.adopted.clear();
        std::mem::take(&mut self.children).into_values().collect()
    }

    fn log_file(spec: &ContainerSpec) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(beside(&spec.session_dir, &spec.session_id, "log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    }

    /// Adopts the session's agent when its lock shows it alive.
    fn adopt_if_alive(&mut self, spec: &ContainerSpec) -> bool {
        let lock = beside(&spec.session_dir, &spec.session_id, "lock");
        if !agent_lock::is_held(&lock) {
            return false;
        }
        if !self.adopted.contains_key(&spec.session_id) {
            tracing::info!(session = %spec.session_id, "adopted a live agent of an earlier host");
        }
        let dir = spec.session_dir.clone();
        self.adopted.insert(spec.session_id.clone(), dir);
        true
    }

    fn kill_adopted(&mut self, session_id: &str) -> Result<(), String> {
        let Some(dir) = self.adopted.remove(session_id) else {
            return Ok(());
        };
        if !agent_lock::is_held(&beside(&dir, session_id, "lock")) {
            return Ok(());
        }
        let pid_path = beside(&dir, session_id, "pid");
        let text = std::fs::read_to_string(&pid_path)
            .map_err(|e| format!("{}: {e}", pid_path.display()))?;
        let pid: i32 = text
            .trim()
            .parse()
            .map_err(|e| format!("{}: {e}", pid_path.display()))?;
        agent_lock::kill_pid(pid).map_err(|e| format!("session {session_id}: pid {pid}: {e}"))
    }
}

/// `<session_dir>/../<session_id>.agent.<ext>`: outside the folder the agent sees.
fn beside(session_dir: &Path, session_id: &str, ext: &str) -> PathBuf {
    session_dir.with_file_name(format!("{session_id}.agent.{ext}"))
}

impl ContainerRuntime for ProcessRuntime {
    fn start(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        if self.state(&spec.session_id) == ContainerState::Running || self.adopt_if_alive(spec) {
            return Ok(());
        }
        let child = Command::new(&self.agent_binary)
            .args(&self.agent_args)
            .envs(&spec.env_vars)
            .env("CLAWSIM_SESSION_DIR", &spec.session_dir)
            .env(
                AGENT_LOCK_VAR,
                beside(&spec.session_dir, &spec.session_id, "lock"),
            )
            .stdin(Stdio::null())
            .stdout(Self::log_file(spec))
            .stderr(Self::log_file(spec))
            .spawn()
            .map_err(|e| format!("{}: {e}", self.agent_binary.display()))?;
        // The pid file lets a restarted host, an operator or a test kill the agent from
        // outside, as `docker kill`.
        let pid_path = beside(&spec.session_dir, &spec.session_id, "pid");
        let _ = std::fs::write(pid_path, child.id().to_string());
        self.children.insert(spec.session_id.clone(), child);
        Ok(())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        if let Some(dir) = self.adopted.get(session_id) {
            if agent_lock::is_held(&beside(dir, session_id, "lock")) {
                return ContainerState::Running;
            }
            self.adopted.remove(session_id);
        }
        match self.children.get_mut(session_id).map(Child::try_wait) {
            Some(Ok(None)) => ContainerState::Running,
            _ => ContainerState::Stopped,
        }
    }

    fn adopt(&mut self, spec: &ContainerSpec) -> ContainerState {
        match self.state(&spec.session_id) {
            ContainerState::Stopped if self.adopt_if_alive(spec) => ContainerState::Running,
            state => state,
        }
    }

    fn kill(&mut self, session_id: &str) -> Result<(), String> {
        self.kill_adopted(session_id)?;
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
        let sessions: Vec<String> = self
            .children
            .keys()
            .chain(self.adopted.keys())
            .cloned()
            .collect();
        for session_id in sessions {
            let _ = self.kill(&session_id);
        }
    }
}
