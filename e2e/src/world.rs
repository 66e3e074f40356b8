//! A live world for one e2e test: a host on a temporary data dir, its agents in real Docker
//! containers, a memory channel standing in for the chat platform, and the ledger the checks
//! read (what was sent, what the channel received, which faults were injected).
//!
//! Intervals are tuned down ([`tune_for_tests`]) so a test takes seconds; the protocol is the
//! same at any interval. Every wait is bounded; a timeout fails the test with a report of the
//! session's rows. When a test fails, dropping the world prints every container's logs; in any
//! case it removes every container of its run.

use crate::checks::{
    self, delivery_text, FaultCounts, Ledger, SentMessage, SessionEvidence, Violation,
};
use crate::engine::{self, OutsideFault};
use crate::{ensure_agent_image, DockerOptions, DockerRuntime};
use clawsim_core::channel::OutboundDelivery;
use clawsim_core::config::HostConfig;
use clawsim_core::db::Schema;
use clawsim_core::host::{InboundEvent, SessionMode};
use clawsim_core::live::channels::{MemoryChannel, MemoryInbox};
use clawsim_core::live::host::{spawn_host, HostInput, LiveHostHandle};
use clawsim_core::model::status;
use clawsim_core::runtime::ContainerRuntime;
use clawsim_core::time::is_due;
use std::io::Write;
use std::time::{Duration, Instant};

/// How long reading the sessions' files may keep failing before a test gives up.
pub const READ_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// The channel type of the test's chat platform.
pub const CHANNEL: &str = "e2e";
/// The chat the test talks in.
pub const PLATFORM_ID: &str = "chat-1";
/// Environment variable that turns a missing engine from a skip into a failure.
pub const REQUIRE_DOCKER_ENV: &str = "CLAWSIM_REQUIRE_DOCKER";

/// Writes a line straight to the process's stderr, past the test harness's capture, so a
/// "skipped" line is seen even when the test passes.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The agent image, or `None` after printing why the test is skipped. Panics when the engine
/// is missing and `CLAWSIM_REQUIRE_DOCKER=1`, or when the image cannot be built.
pub fn docker_image_or_skip(test: &str) -> Option<String> {
    if let Err(reason) = engine::probe() {
        if std::env::var(REQUIRE_DOCKER_ENV).as_deref() == Ok("1") {
            panic!("{test}: no Docker engine ({reason}) and {REQUIRE_DOCKER_ENV}=1");
        }
        say(&format!("{test}: skipped: no Docker engine ({reason})"));
        return None;
    }
    match ensure_agent_image() {
        Ok(image) => Some(image),
        Err(error) => panic!("{test}: cannot build the agent image: {error}"),
    }
}

/// Short intervals for tests: delivery every 100 ms, sweep every 500 ms, an agent presumed dead
/// after 10 s without a heartbeat, polls every 100-150 ms, queries ended after 2 s of quiet.
///
/// The staleness bound is the one interval a slow machine can break: an agent starved of CPU
/// or disk for longer misses heartbeats while alive, is presumed dead and its message retried,
/// which the checks count against a test that injected no fault. 10 s is far beyond any such
/// stall; the tests that freeze a container on purpose wait for it within their timeouts.
pub fn tune_for_tests(config: &mut HostConfig) {
    config.delivery_fast_interval_ms = 100;
    config.delivery_slow_interval_ms = 1_000;
    config.sweep_interval_ms = 500;
    config.stale_after_ms = 10_000;
    config.backoff_base_ms = 500;
    config.send_backoff_base_ms = 100;
    for (name, value) in [
        ("CLAWSIM_POLL_IDLE_MS", "150"),
        ("CLAWSIM_POLL_ACTIVE_MS", "100"),
        ("CLAWSIM_QUERY_IDLE_TIMEOUT_MS", "2000"),
    ] {
        config.agent_env.insert(name.into(), value.into());
    }
}

/// One test's live world (see the module docs).
pub struct World {
    name: String,
    data_dir: tempfile::TempDir,
    config: HostConfig,
    options: DockerOptions,
    host: Option<LiveHostHandle>,
    /// One inbox per host life; together they are everything the channel received.
    inboxes: Vec<MemoryInbox>,
    sent: Vec<SentMessage>,
    faults: FaultCounts,
    markers_made: u32,
}

impl World {
    /// A world with tuned intervals, or `None` when the test is skipped (no engine).
    pub fn start(name: &str) -> Option<World> {
        Self::start_with(name, tune_for_tests)
    }

    /// A world whose host config is adjusted by `configure` (starting from the protocol's
    /// defaults plus `RUST_LOG=info` for the agents).
    pub fn start_with(name: &str, configure: impl FnOnce(&mut HostConfig)) -> Option<World> {
        let image = docker_image_or_skip(name)?;
        // The host's warnings (failed passes, refused routes) go to stderr, uncaptured.
        clawsim_core::live::init_logging("warn");
        let data_dir = tempfile::Builder::new()
            .prefix(&format!("clawsim-e2e-{name}-"))
            .tempdir()
            .expect("temporary data dir");
        let mut config = HostConfig::new(data_dir.path());
        config.agent_env.insert("RUST_LOG".into(), "info".into());
        // Logs are read in reports, not on a terminal.
        config.agent_env.insert("NO_COLOR".into(), "1".into());
        configure(&mut config);
        let mut world = World {
            name: name.to_string(),
            data_dir,
            config,
            options: DockerOptions {
                // An upper bound on one engine call (kill, pause): generous on a busy machine.
                reply_timeout_ms: 60_000,
                ..DockerOptions::new(image)
            },
            host: None,
            inboxes: Vec::new(),
            sent: Vec::new(),
            faults: FaultCounts::default(),
            markers_made: 0,
        };
        world.spawn_host();
        Some(world)
    }

    /// The host's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The run id labelling this world's containers.
    pub fn run_id(&self) -> &str {
        &self.options.run_id
    }

    fn spawn_host(&mut self) {
        let (channel, inbox) = MemoryChannel::new(CHANNEL);
        let options = self.options.clone();
        let handle = spawn_host(
            self.config.clone(),
            move || -> Box<dyn ContainerRuntime> {
                Box::new(DockerRuntime::new(options).expect("docker runtime"))
            },
            vec![Box::new(channel)],
            |host| {
                host.add_agent_group("agent", "Agent")?;
                host.add_messaging_group("chat", CHANNEL, PLATFORM_ID)?;
                host.wire("chat", "agent", 0, SessionMode::Shared)
            },
        )
        .unwrap_or_else(|e| panic!("{}: host did not start: {e}", self.name));
        self.inboxes.push(inbox);
        self.host = Some(handle);
    }

    /// Stops the host (its runtime removes its containers) and starts a new one on the same data.
    pub fn restart_host(&mut self) {
        self.stop_host();
        self.start_host();
    }

    /// Stops the host; its runtime removes its containers. Counted as a host restart.
    pub fn stop_host(&mut self) {
        if let Some(host) = self.host.take() {
            host.shutdown();
            self.faults.host_restarts += 1;
        }
    }

    /// Starts a host on the world's data unless one runs.
    pub fn start_host(&mut self) {
        if self.host.is_none() {
            self.spawn_host();
        }
    }

    fn host(&self) -> &LiveHostHandle {
        self.host.as_ref().expect("host running")
    }

    /// A fresh marker: a string no other message of this world contains.
    pub fn marker(&mut self) -> String {
        self.markers_made += 1;
        format!("m{:04}x", self.markers_made)
    }

    /// Sends a chat message `<marker> <text>` from alice; returns the marker.
    pub fn send(&mut self, text: &str) -> String {
        self.send_expecting(text, 1)
    }

    /// As [`World::send`], for a message whose script allows `answers` default answers.
    pub fn send_expecting(&mut self, text: &str, answers: u32) -> String {
        let marker = self.marker();
        self.send_raw(&format!("{marker} {text}"));
        self.expect(&marker, answers);
        marker
    }

    /// Sends a chat message with exactly this text (no marker, nothing recorded).
    pub fn send_raw(&mut self, text: &str) {
        let content = serde_json::json!({ "sender": "alice", "senderId": "u-alice", "text": text });
        self.host().send(HostInput::Message(InboundEvent {
            channel_type: CHANNEL.into(),
            platform_id: PLATFORM_ID.into(),
            thread_id: None,
            kind: "chat".into(),
            content: content.to_string(),
        }));
    }

    /// Records that rows carrying `marker` (a task's prompt, say) exist and may each get
    /// `answers` default answers.
    pub fn expect(&mut self, marker: &str, answers: u32) {
        self.sent.push(SentMessage {
            marker: marker.to_string(),
            answers_per_row_max: answers,
        });
    }

    /// Answers a pending question as the user.
    pub fn answer(&self, question_id: &str, option: &str) {
        self.host().send(HostInput::Answer {
            question_id: question_id.into(),
            option: option.into(),
        });
    }

    /// Everything the channel received, over every host life, in order.
    pub fn received(&self) -> Vec<OutboundDelivery> {
        self.inboxes.iter().flat_map(MemoryInbox::all).collect()
    }

    /// Waits (at most `timeout`) for a delivery matching `predicate`; fails the test otherwise.
    pub fn wait_delivery(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&OutboundDelivery) -> bool,
    ) -> OutboundDelivery {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.received().into_iter().find(|d| predicate(d)) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            let slice = left.min(Duration::from_millis(200));
            let current = self.inboxes.last().expect("an inbox");
            let _ = current.wait_for(&predicate, slice);
        }
    }

    /// Waits for the default answer quoting `marker`.
    pub fn wait_answer(&self, marker: &str, timeout: Duration) -> OutboundDelivery {
        self.wait_delivery(&format!("the answer to {marker}"), timeout, |d| {
            delivery_text(d)
                .is_some_and(|t| t.starts_with(checks::DEFAULT_ANSWER_PREFIX) && t.contains(marker))
        })
    }

    /// Waits until at least `count` default answers quote `marker`.
    pub fn wait_answers(&self, marker: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.answers_to(marker) < count {
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting for {count} answers to {marker}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Default answers received that quote `marker`.
    pub fn answers_to(&self, marker: &str) -> usize {
        self.received()
            .iter()
            .filter_map(delivery_text)
            .filter(|t| t.starts_with(checks::DEFAULT_ANSWER_PREFIX) && t.contains(marker))
            .count()
    }

    /// Every session folder's evidence, read now.
    ///
    /// A read can fail for a moment (a writer holds its commit lock past the busy timeout, or a
    /// killed writer left a hot journal that only its next writer may roll back); it is retried
    /// for up to [`READ_RETRY_TIMEOUT`] before the test fails.
    pub fn sessions(&self) -> Vec<SessionEvidence> {
        let deadline = Instant::now() + READ_RETRY_TIMEOUT;
        loop {
            match checks::read_sessions(self.data_dir.path()) {
                Ok(sessions) => return sessions,
                Err(e) if Instant::now() >= deadline => {
                    self.fail(&format!("cannot read the sessions: {e}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The one session of this world's chat (waits for it to exist).
    pub fn session_id(&self) -> String {
        self.wait_until("the chat's session", Duration::from_secs(10), |s| {
            !s.is_empty()
        });
        self.sessions()[0].session_id.clone()
    }

    /// Waits (at most `timeout`) until `predicate` holds of the sessions' evidence.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&[SessionEvidence]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !predicate(&self.sessions()) {
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every sent message has a row, every due unpaused row is completed or failed
    /// (own status, after the host's ack sync) and every due output is recorded.
    pub fn wait_settled(&self, timeout: Duration) {
        let markers: Vec<String> = self.sent.iter().map(|s| s.marker.clone()).collect();
        self.wait_until("the sessions to settle", timeout, |sessions| {
            let now_ms = now_ms();
            let all_arrived = markers.iter().all(|marker| {
                sessions.iter().any(|s| {
                    s.snapshot
                        .inbound
                        .iter()
                        .any(|r| r.content.contains(marker))
                })
            });
            all_arrived && sessions.iter().all(|s| settled(s, now_ms))
        });
    }

    /// Waits until every due row of every session is finished (completed, failed or paused): no
    /// turn or query runs and none is about to, so the next message starts a batch of its own
    /// instead of joining a running query. (Rows become `completed` when the host syncs the
    /// acks a query writes as it ends, or by output-sent protection after a dead container.)
    pub fn wait_no_query_running(&self, timeout: Duration) {
        self.wait_until("no running query", timeout, |sessions| {
            let now_ms = now_ms();
            sessions.iter().all(|s| {
                s.snapshot.inbound.iter().all(|row| {
                    [status::COMPLETED, status::FAILED, status::PAUSED]
                        .contains(&row.status.as_str())
                        || !is_due(row.process_after.as_deref(), now_ms)
                })
            })
        });
    }

    /// Waits until every row of every session is finished, those not yet due included (a
    /// message backing off after a dead container, a scheduled task).
    pub fn wait_all_finished(&self, timeout: Duration) {
        self.wait_until("every row finished", timeout, |sessions| {
            sessions.iter().all(|s| {
                s.snapshot.inbound.iter().all(|row| {
                    [status::COMPLETED, status::FAILED, status::PAUSED]
                        .contains(&row.status.as_str())
                })
            })
        });
    }

    /// Applies `fault` to the session's running container if it has one; true if it did.
    pub fn try_inject(&mut self, session_id: &str, fault: OutsideFault) -> bool {
        let hit = engine::inject(self.run_id(), session_id, fault)
            .unwrap_or_else(|e| self.fail(&format!("{fault:?} failed: {e}")));
        if hit > 0 {
            match fault {
                OutsideFault::Kill => self.faults.container_kills += 1,
                OutsideFault::Pause => self.faults.container_pauses += 1,
            }
        }
        hit > 0
    }

    /// Kills the session's container from outside (`docker kill`).
    pub fn kill_container(&mut self, session_id: &str) {
        self.inject(session_id, OutsideFault::Kill);
        self.faults.container_kills += 1;
    }

    /// Freezes the session's container from outside (`docker pause`).
    pub fn pause_container(&mut self, session_id: &str) {
        self.inject(session_id, OutsideFault::Pause);
        self.faults.container_pauses += 1;
    }

    fn inject(&self, session_id: &str, fault: OutsideFault) {
        match engine::inject(self.run_id(), session_id, fault) {
            Ok(0) => self.fail(&format!(
                "{fault:?}: session {session_id} has no running container"
            )),
            Ok(_) => {}
            Err(e) => self.fail(&format!("{fault:?} failed: {e}")),
        }
    }

    /// Waits until the session has a running container (seen by the engine).
    pub fn wait_container_running(&self, session_id: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let running = engine::on_docker_thread({
                let (run, session) = (self.run_id().to_string(), session_id.to_string());
                move || async move { running_count(&run, &session).await }
            });
            if running.is_ok_and(|n| n > 0) {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "no container of session {session_id} ran within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Faults injected so far.
    pub fn faults(&self) -> FaultCounts {
        self.faults
    }

    /// Counts a fault injected by the test itself.
    pub fn faults_mut(&mut self) -> &mut FaultCounts {
        &mut self.faults
    }

    /// The run's ledger, read now.
    pub fn ledger(&self) -> Ledger {
        let central = checks::integrity_of_file(&self.config.central_db(), Schema::Central)
            .unwrap_or_else(|e| vec![e]);
        Ledger {
            sent: self.sent.clone(),
            received: self.received(),
            sessions: self.sessions(),
            central_integrity: central,
            faults: self.faults,
            max_tries: self.config.max_tries,
            now_ms: now_ms(),
        }
    }

    /// Applies every §9 check to the ledger; fails the test with the violations.
    pub fn check(&self) -> Ledger {
        let ledger = self.ledger();
        let violations = checks::check_all(&ledger);
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(Violation::to_string).collect();
            self.fail(&format!("property violations:\n  {}", list.join("\n  ")));
        }
        ledger
    }

    /// Fails the test with `message` and a report of every session's rows and deliveries
    /// (container logs follow when the world is dropped).
    pub fn fail(&self, message: &str) -> ! {
        panic!("{}: {message}\n{}", self.name, self.report())
    }

    /// The rows of every session and what the channel received, for a failure report.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let sessions = match checks::read_sessions(self.data_dir.path()) {
            Ok(sessions) => sessions,
            Err(e) => {
                out.push_str(&format!("--- sessions unreadable: {e}\n"));
                Vec::new()
            }
        };
        for session in &sessions {
            out.push_str(&format!("--- session {}\n", session.session_id));
            for row in &session.snapshot.inbound {
                out.push_str(&format!(
                    "  in  seq {:?} {} {} {} tries {} after {:?}: {}\n",
                    row.seq,
                    row.id,
                    row.kind,
                    row.status,
                    row.tries,
                    row.process_after,
                    truncate(&row.content, 120)
                ));
            }
            for ack in &session.snapshot.acks {
                out.push_str(&format!(
                    "  ack {} {} {}\n",
                    ack.message_id, ack.status, ack.status_changed
                ));
            }
            for row in &session.snapshot.outbound {
                out.push_str(&format!(
                    "  out seq {:?} {} {} reply-to {:?}: {}\n",
                    row.seq,
                    row.id,
                    row.kind,
                    row.in_reply_to,
                    truncate(&row.content, 120)
                ));
            }
            for d in &session.snapshot.delivered {
                out.push_str(&format!(
                    "  delivered {} {} {} {:?}\n",
                    d.message_out_id, d.status, d.delivered_at, d.reason
                ));
            }
        }
        out.push_str("--- received by the channel\n");
        for d in self.received() {
            out.push_str(&format!(
                "  {} {}\n",
                d.message_out_id,
                truncate(&d.content.to_string(), 120)
            ));
        }
        out.push_str(&format!("--- faults {:?}\n", self.faults));
        out
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if let Some(host) = self.host.take() {
            host.shutdown();
        }
        let mut logs = self.options.logs.all();
        match engine::remove_run(self.run_id(), failed) {
            Ok(remaining) => logs.extend(remaining),
            Err(e) => eprintln!("{}: could not remove the run's containers: {e}", self.name),
        }
        if failed {
            for (container, text) in logs {
                eprintln!("--- logs of container {container}\n{text}");
            }
        }
    }
}

async fn running_count(run_id: &str, session_id: &str) -> Result<usize, String> {
    let docker = engine::connect().await?;
    Ok(engine::running_containers(&docker, run_id, session_id)
        .await?
        .len())
}

/// True when nothing due is left in the session: every due, unpaused row has its own terminal
/// status and every due output row is recorded.
pub fn settled(session: &SessionEvidence, now_ms: i64) -> bool {
    let snapshot = &session.snapshot;
    let rows_done = snapshot.inbound.iter().all(|row| {
        row.status == status::COMPLETED
            || row.status == status::FAILED
            || row.status == status::PAUSED
            || !is_due(row.process_after.as_deref(), now_ms)
    });
    rows_done && snapshot.is_settled(now_ms)
}

/// Now, on this machine's clock, in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    format!("{cut}…")
}
