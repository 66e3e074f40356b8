//! The host (PROTOCOL §7, §8): routing, delivery, sweep, system actions, recurrence and container
//! lifecycle. Writes the central DB and every session's `inbound.db`; reads `outbound.db`
//! read-only.
//!
//! Code map:
//! - [`central`]: the central DB (groups, wiring, sessions, pending questions).
//! - [`session`]: the session folder, created by an idempotent ensure.
//! - [`router`]: inbound events and agent-to-agent messages into a session's `inbound.db`.
//! - [`delivery`]: delivery passes over a session's `outbound.db`.
//! - [`actions`]: system actions (`schedule_task` and friends).
//! - [`sweep`]: ack sync, stale detection with retries, wake-ups, idle stop.
//! - [`recurrence`]: cron and the step from one occurrence of a series to the next.
//! - [`lifecycle`]: waking and stopping containers within the concurrency limit.
//!
//! **Architecture invariants.** The host never opens an `outbound.db` for writing except to
//! create it with its schema. It reads time only from its [`Env`], and judges a container by
//! what it saw change on its own clock, never by the container's clock. Per-session memory
//! (delivery watermark, heartbeat observations, activity) lives in ordered maps and may be lost
//! at any moment: a restarted host rebuilds it from the files with one full read per session.

mod actions;
mod central;
mod connections;
mod delivery;
mod lifecycle;
mod recurrence;
mod router;
mod session;
mod sweep;

pub use central::container_status;
pub use delivery::DeliveryPass;

use crate::channel::{OutboundDelivery, SendError};
use crate::config::HostConfig;
use crate::env::{Env, Millis, SessionPaths};
use crate::model::Route;
use crate::runtime::{ContainerRuntime, ContainerState};
use crate::time::format_instant;
use crate::Result;
use central::Central;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

/// How a messaging group's messages map to sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// One session per messaging group.
    Shared,
    /// One session per thread of the messaging group.
    PerThread,
}

/// A message arriving from a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    pub channel_type: String,
    pub platform_id: String,
    pub thread_id: Option<String>,
    /// `chat`, `chat-sdk` or `webhook`.
    pub kind: String,
    /// The content as the channel gave it (JSON per PROTOCOL §4, or any text).
    pub content: String,
}

/// Where a routed message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub session_id: String,
    pub message_id: String,
    pub seq: i64,
}

/// An active session as the central DB records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub agent_group_id: String,
    pub paths: SessionPaths,
    /// `running`, `idle` or `stopped` (see [`container_status`]).
    pub container_status: String,
}

/// A question the agent asked through a card, waiting for the user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingQuestion {
    pub question_id: String,
    pub session_id: String,
    /// The `messages_out` row that carried the question.
    pub message_out_id: String,
    /// Where the question was sent; the answer is routed like it.
    pub route: Route,
    pub created_at: String,
}

/// What a delivery step asks of its driver.
// One value per send, never stored in bulk: the size difference between variants is harmless.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryStep {
    /// Hand this to the channel adapter, then report with [`Host::delivery_sent`].
    Send(OutboundDelivery),
    /// The pass is over; release it with [`Host::end_delivery`].
    Done,
}

/// What one sweep of a session did (for logs and the simulator's ledger).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Terminal `processing_ack` states copied into `messages_in`.
    pub acks_synced: usize,
    /// A container was started (or queued behind the concurrency limit) for due work.
    pub woke: bool,
    /// The heartbeat had not changed for `stale_after_ms` while messages were claimed.
    pub presumed_dead: bool,
    /// Claimed messages put back with `tries + 1` and a backoff.
    pub retried: usize,
    /// Claimed messages that reached `max_tries` and were failed.
    pub failed: usize,
    /// Claimed messages of a dead container whose reply was already delivered: completed,
    /// not retried (output-sent protection).
    pub output_sent: usize,
    /// Next occurrences of recurring tasks scheduled.
    pub recurrences: usize,
    pub stopped_idle: bool,
    /// outbound.db could not be opened or read (missing, corrupt, or a hot journal only the next
    /// container can roll back): acks and staleness were not judged, the wake still ran.
    pub outbound_unreadable: bool,
}

/// The host's memory of one session. Losing it (a host restart) costs one full read, never
/// correctness.
#[derive(Debug, Default)]
struct SessionMemory {
    delivery: delivery::DeliveryMemory,
    /// The heartbeat mtime last seen, and the host time it was first seen with that value.
    heartbeat: Option<HeartbeatSeen>,
    /// Host time of the session's last activity (wake, inbound message, delivered output, work
    /// in progress), for idle stop.
    last_activity_ms: Option<Millis>,
    /// The `last_activity_ms` last written to the central DB's `sessions.last_active`.
    last_active_written_ms: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeartbeatSeen {
    mtime_ms: Option<Millis>,
    since_ms: Millis,
}

/// The host of one machine.
pub struct Host {
    env: Rc<dyn Env>,
    config: HostConfig,
    runtime: Box<dyn ContainerRuntime>,
    central: Central,
    memory: BTreeMap<String, SessionMemory>,
    /// Sessions whose container this host believes starting or running.
    running: BTreeSet<String>,
    /// Sessions waiting for a container slot, first come first served.
    waiting: VecDeque<String>,
    /// Session DB connections kept between operations.
    connections: connections::ConnectionPool,
}

impl Host {
    /// Opens (creating if needed) the central DB under `config.data_dir` and adopts containers
    /// that still run from an earlier host process.
    pub fn open(
        env: Rc<dyn Env>,
        config: HostConfig,
        runtime: Box<dyn ContainerRuntime>,
    ) -> Result<Host> {
        use crate::error::IoResultExt;
        env.create_dir_all(&config.data_dir).at(&config.data_dir)?;
        let central = Central::open(&*env, &config)?;
        let mut host = Host {
            env,
            config,
            runtime,
            central,
            memory: BTreeMap::new(),
            running: BTreeSet::new(),
            waiting: VecDeque::new(),
            connections: Default::default(),
        };
        host.adopt_running_containers()?;
        Ok(host)
    }

    /// The configuration this host runs with.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Adds an agent group, or renames an existing one.
    pub fn add_agent_group(&mut self, id: &str, name: &str) -> Result<()> {
        let now = self.now_text();
        self.central.add_agent_group(id, name, &now)
    }

    /// Adds a messaging group for `(channel_type, platform_id)`, or re-points an existing id.
    pub fn add_messaging_group(
        &mut self,
        id: &str,
        channel_type: &str,
        platform_id: &str,
    ) -> Result<()> {
        let now = self.now_text();
        self.central
            .add_messaging_group(id, channel_type, platform_id, &now)
    }

    /// Wires an agent group to a messaging group. The highest priority wins the messages.
    pub fn wire(
        &mut self,
        messaging_group_id: &str,
        agent_group_id: &str,
        priority: i64,
        mode: SessionMode,
    ) -> Result<()> {
        self.central
            .wire(messaging_group_id, agent_group_id, priority, mode)
    }

    /// Lets agents of one group send messages to agents of another (one direction).
    pub fn allow_agent_route(
        &mut self,
        from_agent_group: &str,
        to_agent_group: &str,
    ) -> Result<()> {
        self.central
            .allow_agent_route(from_agent_group, to_agent_group)
    }

    /// Active sessions, sorted by id.
    pub fn active_sessions(&mut self) -> Result<Vec<SessionInfo>> {
        let rows = self.central.active_sessions()?;
        Ok(rows.iter().map(|row| row.info(&self.config)).collect())
    }

    /// The sessions a delivery tick visits, sorted by id: every active session, or with
    /// `running_only` those whose container runs (the fast pass).
    pub fn sessions_to_deliver(&mut self, running_only: bool) -> Result<Vec<String>> {
        let rows = self.central.active_sessions()?;
        Ok(rows
            .into_iter()
            .map(|row| row.id)
            .filter(|id| !running_only || self.runtime.state(id) == ContainerState::Running)
            .collect())
    }

    /// One session, or an error naming an unknown one.
    pub fn session(&mut self, session_id: &str) -> Result<SessionInfo> {
        let row = self.central.require_session(session_id)?;
        Ok(row.info(&self.config))
    }

    /// The runtime's view of the session's container.
    pub fn container_state(&mut self, session_id: &str) -> ContainerState {
        self.runtime.state(session_id)
    }

    /// Every question still waiting for an answer, sorted by question id.
    pub fn pending_questions(&mut self) -> Result<Vec<PendingQuestion>> {
        self.central.pending_questions()
    }

    /// Sessions waiting for a container slot, in the order they will get one.
    pub fn waiting_for_container(&self) -> Vec<String> {
        self.waiting.iter().cloned().collect()
    }

    /// Starts a pass over the session's `outbound.db`, or `None` while another pass of the same
    /// session is under way (Decision: one delivery pass per session at a time). Dropping the
    /// pass releases it as [`Host::end_delivery`] does.
    pub fn begin_delivery(&mut self, session_id: &str) -> Result<Option<DeliveryPass>> {
        delivery::begin(self, session_id)
    }

    /// Works through the pass until a row must go to a channel adapter, or the pass is done.
    /// An error ends the pass (it then only answers `Done`); the next pass starts over.
    pub fn delivery_step(&mut self, pass: &mut DeliveryPass) -> Result<DeliveryStep> {
        delivery::step(self, pass)
    }

    /// Reports the outcome of the last [`DeliveryStep::Send`].
    pub fn delivery_sent(
        &mut self,
        pass: &mut DeliveryPass,
        outcome: std::result::Result<(), SendError>,
    ) -> Result<()> {
        delivery::sent(self, pass, outcome)
    }

    /// Releases a pass. A row handed out but never reported is read again by the next pass.
    pub fn end_delivery(&mut self, pass: DeliveryPass) {
        delivery::end(self, pass)
    }

    /// One sweep of one session (PROTOCOL §7 "Sweep").
    pub fn sweep_session(&mut self, session_id: &str) -> Result<SweepReport> {
        sweep::sweep_session(self, session_id)
    }

    /// Sweeps every active session in id order. One session's error is logged and reported,
    /// and never stops the others.
    pub fn sweep_all(&mut self) -> Result<Vec<(String, Result<SweepReport>)>> {
        self.start_waiting();
        let sessions = self.central.active_sessions()?;
        Ok(sessions
            .into_iter()
            .map(|session| {
                let report = self.sweep_session(&session.id);
                if let Err(error) = &report {
                    tracing::warn!(session = %session.id, %error, "sweep failed");
                }
                (session.id, report)
            })
            .collect())
    }

    fn now_ms(&self) -> Millis {
        self.env.now_ms()
    }

    fn now_text(&self) -> String {
        format_instant(self.now_ms())
    }

    fn memory(&mut self, session_id: &str) -> &mut SessionMemory {
        self.memory.entry(session_id.to_string()).or_default()
    }

    /// Notes activity in a session, postponing its idle stop.
    fn note_activity(&mut self, session_id: &str) {
        let now_ms = self.now_ms();
        self.memory(session_id).last_activity_ms = Some(now_ms);
    }

    fn clock<'a>(env: &'a dyn Env, config: &HostConfig) -> recurrence::Clock<'a> {
        recurrence::Clock {
            env,
            now_ms: env.now_ms(),
            tz: config.time_zone,
        }
    }
}
