//! Protocol constants (PROTOCOL defaults); every one is configuration.

use crate::env::SessionPaths;
use chrono_tz::Tz;
use std::path::PathBuf;

/// The host's settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `<data>`: the central DB is `<data>/central.db`, sessions live in `<data>/sessions/`.
    pub data_dir: PathBuf,
    /// Delivery pass for sessions whose container runs.
    pub delivery_fast_interval_ms: i64,
    /// Delivery pass for every active session.
    pub delivery_slow_interval_ms: i64,
    pub sweep_interval_ms: i64,
    /// A container whose heartbeat has not changed this long (host clock) is presumed dead.
    pub stale_after_ms: i64,
    /// A message is tried at most this many times.
    pub max_tries: i64,
    /// Backoff after a stale claim: `backoff_base_ms · 2^tries`.
    pub backoff_base_ms: i64,
    /// A container with no delivered output for this long is stopped.
    pub idle_stop_ms: i64,
    pub max_concurrent_containers: usize,
    /// Attempts of a transiently failing channel send before the row is undeliverable.
    pub send_attempts_max: u32,
    /// Backoff between channel send attempts: `send_backoff_base_ms · 2^attempt`.
    pub send_backoff_base_ms: i64,
    /// Environment passed to every agent-runner the host starts (admin id, time zone, …).
    pub agent_env: std::collections::BTreeMap<String, String>,
    /// Zone cron expressions of recurring tasks are evaluated in.
    pub time_zone: Tz,
}

impl HostConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            delivery_fast_interval_ms: 1_000,
            delivery_slow_interval_ms: 60_000,
            sweep_interval_ms: 60_000,
            stale_after_ms: 10 * 60_000,
            max_tries: 5,
            backoff_base_ms: 5_000,
            idle_stop_ms: 30 * 60_000,
            max_concurrent_containers: 8,
            send_attempts_max: 5,
            send_backoff_base_ms: 1_000,
            agent_env: Default::default(),
            time_zone: Tz::UTC,
        }
    }

    pub fn central_db(&self) -> PathBuf {
        self.data_dir.join("central.db")
    }

    pub fn session_paths(&self, agent_group_id: &str, session_id: &str) -> SessionPaths {
        SessionPaths::new(
            self.data_dir
                .join("sessions")
                .join(agent_group_id)
                .join(session_id),
        )
    }
}

/// The agent-runner's settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub paths: SessionPaths,
    pub poll_interval_idle_ms: i64,
    pub poll_interval_active_ms: i64,
    /// A query with no provider event and no new message for this long is ended.
    pub query_idle_timeout_ms: i64,
    /// Sender id allowed to run admin commands; `None` = nobody.
    pub admin_user_id: Option<String>,
    /// Zone of times shown to the agent.
    pub time_zone: Tz,
    /// Default `ask_user_question` timeout.
    pub question_timeout_ms: i64,
}

impl RunnerConfig {
    pub fn new(paths: SessionPaths) -> Self {
        Self {
            paths,
            poll_interval_idle_ms: 1_000,
            poll_interval_active_ms: 500,
            query_idle_timeout_ms: 20_000,
            admin_user_id: None,
            time_zone: Tz::UTC,
            question_timeout_ms: 300_000,
        }
    }
}
