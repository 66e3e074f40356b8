//! A container runtime without containers: each session's agent-runner is a local child process
//! of `clawsim-agent`, with the session folder given by `CLAWSIM_SESSION_DIR`. It lets the whole
//! system run on a machine without Docker (`clawsim chat`, core's end-to-end tests).
//!
//! A container runtime reports only "running" or "stopped"; a person at a terminal needs to know
//! that an agent died and why. So the runtime keeps every exit it did not cause (a child that
//! failed at start, or whose provider exited the process) until [`ProcessRuntime::take_exits`]
//! hands it on, with the child's exit status and the path of its log.
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
use std::process::{Child, Command, ExitStatus, Stdio};

/// The variable telling a child agent-runner its parent's pid: it exits once that parent is
/// gone, so a host killed without a chance to clean up leaves no agent polling forever.
pub const PARENT_PID_VAR: &str = "CLAWSIM_PARENT_PID";

/// The environment variable naming the lock file the agent must hold.
pub const AGENT_LOCK_VAR: &str = "CLAWSIM_AGENT_LOCK";

pub struct ProcessRuntime {
    agent_binary: PathBuf,
    agent_args: Vec<String>,
    children: BTreeMap<String, Agent>,
    exits: Vec<AgentExit>,
    /// Agents an earlier host process started, still alive when seen: session → session dir.
    adopted: BTreeMap<String, PathBuf>,
}

struct Agent {
    child: Child,
    log_path: PathBuf,
}

/// An agent-runner that ended without being stopped by the runtime.
#[derive(Debug, Clone)]
pub struct AgentExit {
    pub session_id: String,
    pub pid: u32,
    pub status: ExitStatus,
    /// Where its stdout and stderr went (appended to by every agent of the session).
    pub log_path: PathBuf,
}

/// Where the agent-runner of `session_id` logs: beside its session folder, outside what the
/// agent sees.
pub fn agent_log_path(session_dir: &Path, session_id: &str) -> PathBuf {
    beside(session_dir, session_id, "log")
}

impl ProcessRuntime {
    /// `agent_binary`: path of `clawsim-agent`. Each child's log goes to
    /// `<session_dir>/../<session_id>.agent.log` ([`agent_log_path`]).
    pub fn new(agent_binary: impl Into<PathBuf>) -> Self {
        Self {
            agent_binary: agent_binary.into(),
            agent_args: Vec::new(),
            children: BTreeMap::new(),
            exits: Vec::new(),
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
            .then(|| self.children.get(session_id).map(|a| a.child.id()))
            .flatten()
    }

    /// The process id of the session's latest agent, running or not yet seen to exit.
    pub fn latest_pid(&self, session_id: &str) -> Option<u32> {
        self.children.get(session_id).map(|a| a.child.id())
    }

    /// Session id and pid of every agent not yet seen to exit.
    pub fn agents(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(session_id, agent)| (session_id.clone(), agent.child.id()))
            .collect()
    }

    /// Agents that exited on their own since the last call, oldest first. Agents the runtime
    /// killed or stopped are not among them.
    pub fn take_exits(&mut self) -> Vec<AgentExit> {
        self.collect_exits();
        std::mem::take(&mut self.exits)
    }

    /// Kills and reaps every agent.
    pub fn kill_all(&mut self) {
        let sessions: Vec<String> = self
            .children
            .keys()
            .chain(self.adopted.keys())
            .cloned()
            .collect();
        for session_id in sessions {
            if let Err(error) = self.kill(&session_id) {
                tracing::warn!(%error, "agent-runner not reaped");
            }
        }
    }

    /// Moves every exited child to `exits` (reaped: its status is known).
    fn collect_exits(&mut self) {
        let exited: Vec<(String, ExitStatus)> = self
            .children
            .iter_mut()
            .filter_map(|(session_id, agent)| match agent.child.try_wait() {
                Ok(Some(status)) => Some((session_id.clone(), status)),
                _ => None,
            })
            .collect();
        for (session_id, status) in exited {
            if let Some(agent) = self.children.remove(&session_id) {
                self.exits.push(AgentExit {
                    session_id,
                    pid: agent.child.id(),
                    status,
                    log_path: agent.log_path,
                });
            }
        }
    }

    /// Forgets every agent without stopping it, as a host process that dies does; the children
    /// are returned so that a test simulating that death can still reap them.
    pub fn abandon(&mut self) -> Vec<Child> {
        self.adopted.clear();
        std::mem::take(&mut self.children)
            .into_values()
            .map(|agent| agent.child)
            .collect()
    }

    fn log_file(log_path: &Path) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
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
        // An earlier agent of the session that exited is reported, not overwritten.
        self.collect_exits();
        let log_path = agent_log_path(&spec.session_dir, &spec.session_id);
        let child = Command::new(&self.agent_binary)
            .args(&self.agent_args)
            .envs(&spec.env_vars)
            .env("CLAWSIM_SESSION_DIR", &spec.session_dir)
            .env(PARENT_PID_VAR, std::process::id().to_string())
            .env(
                AGENT_LOCK_VAR,
                beside(&spec.session_dir, &spec.session_id, "lock"),
            )
            .stdin(Stdio::null())
            .stdout(Self::log_file(&log_path))
            .stderr(Self::log_file(&log_path))
            .spawn()
            .map_err(|e| format!("{}: {e}", self.agent_binary.display()))?;
        // The pid file lets a restarted host, an operator or a test kill the agent from
        // outside, as `docker kill`.
        let pid_path = beside(&spec.session_dir, &spec.session_id, "pid");
        let _ = std::fs::write(pid_path, child.id().to_string());
        self.children
            .insert(spec.session_id.clone(), Agent { child, log_path });
        Ok(())
    }

    fn state(&mut self, session_id: &str) -> ContainerState {
        if let Some(dir) = self.adopted.get(session_id) {
            if agent_lock::is_held(&beside(dir, session_id, "lock")) {
                return ContainerState::Running;
            }
            self.adopted.remove(session_id);
        }
        match self
            .children
            .get_mut(session_id)
            .map(|a| a.child.try_wait())
        {
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
        // One that already ended on its own is reported as such.
        self.collect_exits();
        self.kill_adopted(session_id)?;
        if let Some(mut agent) = self.children.remove(session_id) {
            // An already exited child is what we want; only a failed wait is an error.
            let _ = agent.child.kill();
            agent
                .child
                .wait()
                .map_err(|e| format!("session {session_id}: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for ProcessRuntime {
    fn drop(&mut self) {
        self.kill_all();
    }
}
