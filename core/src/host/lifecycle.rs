//! Container lifecycle (PROTOCOL §7): wake a session's container unless one runs, keep at most
//! `max_concurrent_containers` running, stop the idle and kill the presumed dead, and keep the
//! central DB's `container_status` (running / idle / stopped) in step with what the runtime says.
//!
//! Wakes beyond the limit wait in a first-come-first-served queue and start when a slot frees
//! (checked on every wake and every sweep). The runtime is the authority on whether a container
//! runs: the host's set of running sessions is refreshed from it before any slot is counted.

use super::central::container_status;
use super::Host;
use crate::config::DESIGN_VAR;
use crate::runtime::{ContainerSpec, ContainerState};
use crate::{Error, Result};

impl Host {
    /// Wakes the session's container: starts one unless one is starting or running. Returns
    /// whether a container is up after the call (`false`: it waits for a slot).
    pub fn wake(&mut self, session_id: &str) -> Result<bool> {
        let session = self.central.require_session(session_id)?;
        self.ensure_session_folder(session_id, &self.paths(&session))?;
        if self.container_is_up(session_id) {
            self.running.insert(session_id.to_string());
            return Ok(true);
        }
        if !self.waiting.iter().any(|waiting| waiting == session_id) {
            self.waiting.push_back(session_id.to_string());
        }
        self.start_waiting();
        if !self.running.contains(session_id) {
            tracing::info!(session = session_id, "waiting for a container slot");
        }
        Ok(self.running.contains(session_id))
    }

    /// Starts waiting sessions, oldest first, while slots are free.
    pub(super) fn start_waiting(&mut self) {
        self.refresh_running();
        while self.running.len() < self.config.max_concurrent_containers {
            let Some(session_id) = self.waiting.pop_front() else {
                break;
            };
            if let Err(error) = self.start_container(&session_id) {
                tracing::warn!(session = %session_id, %error, "container not started");
            }
        }
    }

    fn start_container(&mut self, session_id: &str) -> Result<()> {
        let session = self.central.require_session(session_id)?;
        let paths = self.paths(&session);
        self.ensure_session_folder(session_id, &paths)?;
        let spec = self.container_spec(&session);
        self.runtime.start(&spec).map_err(|error| {
            Error::Invalid(format!(
                "session {session_id}: container start failed: {error}"
            ))
        })?;
        tracing::info!(session = session_id, "container started");
        self.running.insert(session_id.to_string());
        self.note_activity(session_id);
        self.central
            .set_container_status(session_id, container_status::RUNNING)
    }

    /// Drops sessions whose container the runtime no longer runs.
    fn refresh_running(&mut self) {
        let runtime = &mut self.runtime;
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|id| runtime.state(id) == ContainerState::Stopped)
            .cloned()
            .collect();
        for session_id in gone {
            self.forget_container(&session_id);
        }
    }

    /// Stops (idle) or kills (presumed dead) the session's container.
    pub(super) fn stop_container(&mut self, session_id: &str, kill: bool) {
        let result = if kill {
            self.runtime.kill(session_id)
        } else {
            self.runtime.stop(session_id)
        };
        match result {
            Ok(()) => tracing::info!(session = session_id, kill, "container stopped"),
            Err(error) => tracing::warn!(session = session_id, kill, %error, "stop failed"),
        }
        self.forget_container(session_id);
    }

    fn forget_container(&mut self, session_id: &str) {
        self.running.remove(session_id);
        self.record_container_status(session_id, container_status::STOPPED);
    }

    pub(super) fn record_container_status(&mut self, session_id: &str, status_text: &str) {
        if let Err(error) = self.central.set_container_status(session_id, status_text) {
            tracing::warn!(session = session_id, %error, "container status not recorded");
        }
    }

    pub(super) fn container_is_up(&mut self, session_id: &str) -> bool {
        self.runtime.state(session_id) != ContainerState::Stopped
    }

    /// At open: containers an earlier host process started and the runtime still runs are
    /// adopted and count against the limit; the others are recorded stopped. Every active
    /// session is asked, whatever its recorded status: a host may die between starting a
    /// container and recording it.
    pub(super) fn adopt_running_containers(&mut self) -> Result<()> {
        for session in self.central.active_sessions()? {
            let spec = self.container_spec(&session);
            if self.runtime.adopt(&spec) != ContainerState::Stopped {
                self.running.insert(session.id);
            } else if session.container_status != container_status::STOPPED {
                self.record_container_status(&session.id, container_status::STOPPED);
            }
        }
        Ok(())
    }

    /// What every agent-runner is started with: the configured environment and the design
    /// its files follow (the host's, so both sides open the same files the same way).
    fn agent_env(&self) -> std::collections::BTreeMap<String, String> {
        let mut env = self.config.agent_env.clone();
        env.insert(DESIGN_VAR.into(), self.config.design.name.into());
        env
    }

    fn container_spec(&self, session: &super::central::SessionRow) -> ContainerSpec {
        ContainerSpec {
            session_id: session.id.clone(),
            agent_group_id: session.agent_group_id.clone(),
            session_dir: self.paths(session).root,
            env_vars: self.agent_env(),
        }
    }
}
