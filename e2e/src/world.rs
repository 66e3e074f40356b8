//! A live world for one e2e test: a host on a temporary data dir, its agents in real Docker
//! containers, a memory channel standing in for the chat platform, and the record the oracle
//! judges ([`crate::record`]: what the test sent, what the channel received, which faults were
//! injected, the files at the end).
//!
//! Each message the test sends carries a token `m<index>` as its first word, its index in the
//! ledger; the mock provider's default answer quotes it, which is how the oracle attributes
//! answers. A task's prompt carries `k<n>` ([`World::task_token`]).
//!
//! Intervals are tuned down ([`tune_for_tests`]) so a test takes seconds; the protocol is the
//! same at any interval. Every wait is bounded; a timeout fails the test with a report of the
//! session's rows. When a test fails, dropping the world prints every container's logs; in any
//! case it removes every container of its run.

use crate::engine::{self, OutsideFault};
use crate::files::{self, SessionFiles};
pub use crate::record::now_ms;
use crate::record::{Recorder, RecordingChannel};
use crate::{ensure_agent_image, DockerOptions, DockerRuntime};
use clawsim_core::channel::OutboundDelivery;
use clawsim_core::config::HostConfig;
use clawsim_core::host::{InboundEvent, SessionMode};
use clawsim_core::inspect::SessionSnapshot;
use clawsim_core::live::agent::settings_from_vars;
use clawsim_core::live::channels::{MemoryChannel, MemoryInbox};
use clawsim_core::live::host::{spawn_host, LiveHostHandle};
use clawsim_core::model::{status, Route};
use clawsim_core::runtime::ContainerRuntime;
use clawsim_oracle::fault::Fault;
use clawsim_oracle::ledger::{FinalSession, FinalState, IntegrityRecord, Ledger};
use clawsim_oracle::properties::{contains_word, Bounds, RunRecord, ANSWER_PREFIX};
use clawsim_oracle::time::is_due;
use clawsim_oracle::Verdict;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// How long reading the sessions' files may keep failing before a test gives up.
pub const READ_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// The channel type of the test's chat platform.
pub const CHANNEL: &str = "e2e";
/// The chat the test talks in: chat 0 of the oracle's ledger, named as the simulator names it
/// (`chat<n>`), so the oracle can tell the routing field from message text (§9.10).
pub const PLATFORM_ID: &str = "chat0";

/// The sender id of every message the test sends (alice).
pub const SENDER_ID: &str = "u-alice";
/// The slowest container start the oracle allows for on a busy machine (a cold start measures
/// about 0.2 s; CI shares two cores with other builds).
pub const CONTAINER_START_MS_MAX: i64 = 20_000;
/// The slowest channel send: the memory channel returns at once, but the host thread that
/// makes it may wait for a core.
pub const CHANNEL_LATENCY_MS_MAX: i64 = 2_000;
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
    /// One inbox per host life, for waiting; the record holds every delivery.
    inboxes: Vec<MemoryInbox>,
    recorder: Recorder,
    /// The fault that stopped the host, while it is down.
    host_down: Option<usize>,
    task_tokens_made: u32,
}

/// A judged run: the record the oracle read and its verdict.
pub struct Judged {
    pub ledger: Ledger,
    /// The sessions as the final read found them.
    pub sessions: Vec<SessionFiles>,
    pub verdict: Verdict,
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
            recorder: Recorder::default(),
            host_down: None,
            task_tokens_made: 0,
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
        let incarnation = self.recorder.lock().incarnation + 1;
        let channel = RecordingChannel::new(channel, self.recorder.clone(), incarnation);
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
        self.recorder.host_started();
        self.inboxes.push(inbox);
        self.host = Some(handle);
    }

    /// Stops the host (its runtime removes its containers) and starts a new one on the same data.
    pub fn restart_host(&mut self) {
        self.stop_host();
        self.start_host();
    }

    /// Stops the host; its runtime removes its containers. Recorded as a host crash (one that
    /// lands between two of the host's steps: the shutdown waits for the step under way).
    pub fn stop_host(&mut self) {
        if let Some(host) = self.host.take() {
            host.shutdown();
            let fault = Fault::HostCrash { down_ms: 0 };
            self.host_down = Some(self.recorder.fault(None, fault, true));
        }
    }

    /// Starts a host on the world's data unless one runs.
    pub fn start_host(&mut self) {
        if self.host.is_none() {
            self.spawn_host();
            if let Some(fault) = self.host_down.take() {
                self.recorder.host_back(fault);
            }
        }
    }

    fn host(&self) -> &LiveHostHandle {
        self.host.as_ref().expect("host running")
    }

    /// A fresh token for a task's prompt (`k1`, `k2`, ...): a word no message carries.
    pub fn task_token(&mut self) -> String {
        self.task_tokens_made += 1;
        format!("k{}", self.task_tokens_made)
    }

    /// Sends a chat message `m<index> <text>` from alice as the platform would, and records it
    /// and what the router answered; returns its token `m<index>`.
    pub fn send(&mut self, text: &str) -> String {
        let index = self.recorder.lock().ledger.sent.len();
        let token = format!("m{index}");
        let text = format!("{token} {text}");
        let conversation = Route {
            channel_type: Some(CHANNEL.into()),
            platform_id: Some(PLATFORM_ID.into()),
            thread_id: None,
        };
        let recorded = self.recorder.sent(text.clone(), SENDER_ID, conversation);
        debug_assert_eq!(recorded, index, "one test thread sends");
        let content = serde_json::json!({ "sender": "alice", "senderId": SENDER_ID, "text": text });
        let event = InboundEvent {
            channel_type: CHANNEL.into(),
            platform_id: PLATFORM_ID.into(),
            thread_id: None,
            kind: "chat".into(),
            content: content.to_string(),
        };
        let recorder = self.recorder.clone();
        self.host().call(move |host| {
            let routed = host.route(&event).map_err(|e| e.to_string());
            recorder.routed(index, &routed);
        });
        token
    }

    /// Answers a pending question as the user.
    pub fn answer(&self, question_id: &str, option: &str) {
        let recorder = self.recorder.clone();
        let (question_id, option) = (question_id.to_string(), option.to_string());
        self.host().call(move |host| {
            let routed = host
                .answer_question(&question_id, &option)
                .map_err(|e| e.to_string());
            recorder.answered(&question_id, &option, &routed);
        });
    }

    /// Everything the channel received, over every host life, in order.
    pub fn received(&self) -> Vec<OutboundDelivery> {
        self.recorder.lock().deliveries.clone()
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

    /// Waits for the default answer quoting `token`.
    pub fn wait_answer(&self, token: &str, timeout: Duration) -> OutboundDelivery {
        self.wait_delivery(&format!("the answer to {token}"), timeout, |d| {
            quotes(d, token)
        })
    }

    /// Waits until at least `count` default answers quote `token`.
    pub fn wait_answers(&self, token: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.answers_to(token) < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting for {count} answers to {token}"
                ));
            }
            let current = self.inboxes.last().expect("an inbox");
            let _ = current.wait_for(|_| false, left.min(Duration::from_millis(200)));
        }
    }

    /// Default answers received that quote `token` as a word.
    pub fn answers_to(&self, token: &str) -> usize {
        self.received().iter().filter(|d| quotes(d, token)).count()
    }

    /// Every session folder's files, read now.
    ///
    /// A read can fail for a moment (a writer holds its commit lock past the busy timeout, or a
    /// killed writer left a hot journal that only its next writer may roll back); it is retried
    /// for up to [`READ_RETRY_TIMEOUT`] before the test fails.
    pub fn sessions(&self) -> Vec<SessionFiles> {
        let deadline = Instant::now() + READ_RETRY_TIMEOUT;
        loop {
            match files::read_sessions(self.data_dir.path(), self.config.design.layout) {
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

    /// Waits (at most `timeout`) until `predicate` holds of the sessions' files.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&[SessionFiles]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !predicate(&self.sessions()) {
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most `timeout`) until the message carrying `marker` is claimed (acked
    /// `processing` by an agent-runner).
    pub fn wait_claimed(&self, marker: &str, timeout: Duration) {
        self.wait_until(&format!("{marker} claimed"), timeout, |sessions| {
            let snapshot = &sessions[0].snapshot;
            let Some(row) = snapshot
                .inbound
                .iter()
                .find(|r| carries(&r.content, marker))
            else {
                return false;
            };
            snapshot
                .acks
                .iter()
                .any(|ack| ack.message_id == row.id && ack.status == status::PROCESSING)
        });
    }

    /// Waits until every due, unpaused row is completed or failed (own status, after the host's
    /// ack sync) and every due output is recorded: the quiet period after which the oracle
    /// judges "eventually".
    pub fn wait_settled(&self, timeout: Duration) {
        self.wait_until("the sessions to settle", timeout, |sessions| {
            let now_ms = now_ms();
            sessions.iter().all(|s| settled(&s.snapshot, now_ms))
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
                    finished(&row.status) || !is_due(row.process_after.as_deref(), now_ms)
                })
            })
        });
    }

    /// Waits until every row of every session is finished, those not yet due included (a
    /// message backing off after a dead container, a scheduled task).
    pub fn wait_all_finished(&self, timeout: Duration) {
        self.wait_until("every row finished", timeout, |sessions| {
            sessions
                .iter()
                .all(|s| s.snapshot.inbound.iter().all(|row| finished(&row.status)))
        });
    }

    /// Applies `fault` to the session's running container if it has one, and records it
    /// (skipped when there was none); true if it did.
    pub fn try_inject(&mut self, session_id: &str, fault: OutsideFault) -> bool {
        let hit = engine::inject(self.run_id(), session_id, fault)
            .unwrap_or_else(|e| self.fail(&format!("{fault:?} failed: {e}")));
        self.recorder
            .fault(Some(session_id), oracle_fault(fault), hit > 0);
        hit > 0
    }

    /// Kills the session's container from outside (`docker kill`).
    pub fn kill_container(&mut self, session_id: &str) {
        self.inject(session_id, OutsideFault::Kill);
    }

    /// Freezes the session's container from outside (`docker pause`).
    pub fn pause_container(&mut self, session_id: &str) {
        self.inject(session_id, OutsideFault::Pause);
    }

    fn inject(&mut self, session_id: &str, fault: OutsideFault) {
        if !self.try_inject(session_id, fault) {
            self.fail(&format!(
                "{fault:?}: session {session_id} has no running container"
            ));
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

    /// Faults injected so far that struck, by kind (`container-killed`, `host-crash`, ...).
    pub fn fault_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for fault in self
            .recorder
            .lock()
            .ledger
            .faults
            .iter()
            .filter(|f| f.applied)
        {
            *counts.entry(fault.kind()).or_default() += 1;
        }
        counts
    }

    /// The timings the oracle bounds promptness with: the agent-runner's as the agents read
    /// them from the environment this world gives them, and the engine's and channel's.
    pub fn bounds(&self) -> Bounds {
        let settings = settings_from_vars(&self.config.agent_env)
            .unwrap_or_else(|e| self.fail(&format!("the agents' settings: {e}")));
        Bounds {
            poll_interval_idle_ms: settings.runner.poll_interval_idle_ms,
            query_idle_timeout_ms: settings.runner.query_idle_timeout_ms,
            container_start_ms_max: CONTAINER_START_MS_MAX,
            channel_latency_ms_max: CHANNEL_LATENCY_MS_MAX,
        }
    }

    /// The files now, as the record's final state: every session read read-only, every DB's
    /// integrity.
    fn final_state(&self) -> (FinalState, Vec<SessionFiles>) {
        let sessions = self.sessions();
        let at_ms = now_ms();
        let db_files = files::db_files(
            self.data_dir.path(),
            &self.config.central_db(),
            self.config.design.layout,
        )
        .unwrap_or_else(|e| self.fail(&format!("cannot list the DB files: {e}")));
        let integrity = db_files
            .into_iter()
            .map(|(path, schema)| IntegrityRecord {
                at_ms,
                file: path.display().to_string(),
                result: files::integrity_of_file(&path, schema),
            })
            .collect();
        let state = FinalState {
            at_ms,
            // One machine, one clock: the host's "now" is the true time.
            host_now_ms: at_ms,
            sessions: sessions
                .iter()
                .map(|s| FinalSession {
                    session_id: s.session_id.clone(),
                    agent_group_id: s.agent_group_id.clone(),
                    dir: s.dir.display().to_string(),
                    snapshot: Some(s.snapshot.clone()),
                    error: None,
                })
                .collect(),
            integrity,
            single_writer_violations: Vec::new(),
            maybe_durable: Vec::new(),
        };
        (state, sessions)
    }

    /// Reads the files and judges the run with the oracle (`clawsim_oracle::check`), as the
    /// simulator's runs are judged.
    pub fn judge(&self) -> Judged {
        let (final_state, sessions) = self.final_state();
        let bounds = self.bounds();
        let record = self.recorder.lock();
        let mut ledger = record.ledger.clone();
        ledger.final_state = final_state;
        let run = RunRecord {
            events: record.trace.events(),
            ledger: &ledger,
            sim_ms: now_ms() - record.started_ms,
            errors: &[],
            host: self.config.clone(),
            bounds,
        };
        let verdict = clawsim_oracle::check(&run);
        drop(record);
        Judged {
            ledger,
            sessions,
            verdict,
        }
    }

    /// Judges the run; fails the test with the violations, and prints what was judged and what
    /// this world could not judge.
    pub fn check(&self) -> Judged {
        let judged = self.judge();
        say(&format!(
            "{}: oracle verdict\n{}",
            self.name,
            judged.verdict.summary()
        ));
        if !judged.verdict.held() {
            let list: Vec<String> = judged
                .verdict
                .violations
                .iter()
                .map(ToString::to_string)
                .collect();
            self.fail(&format!("property violations:\n  {}", list.join("\n  ")));
        }
        judged
    }

    /// Fails the test with `message` and a report of every session's rows and deliveries
    /// (container logs follow when the world is dropped).
    pub fn fail(&self, message: &str) -> ! {
        panic!("{}: {message}\n{}", self.name, self.report())
    }

    /// The rows of every session, what the channel received and the run's trace, for a
    /// failure report.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let sessions = match files::read_sessions(self.data_dir.path(), self.config.design.layout) {
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
        out.push_str("--- the run's record\n");
        // The lock may be held by this very thread when a wait inside it fails; never block.
        match self.recorder.try_lock() {
            Some(record) => {
                for event in record.trace.events() {
                    out.push_str(&format!("  {}\n", truncate(&event.to_string(), 160)));
                }
            }
            None => out.push_str("  (busy)\n"),
        }
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

/// The oracle's name for a fault injected from outside.
fn oracle_fault(fault: OutsideFault) -> Fault {
    // One session per world: its container is the only one to pick.
    match fault {
        OutsideFault::Kill => Fault::ContainerKilled { pick: 0 },
        // Frozen until the host kills it: no end of its own.
        OutsideFault::Pause => Fault::ContainerHung {
            pick: 0,
            duration_ms: i64::MAX,
        },
    }
}

/// True when `delivery` is a default answer of the mock quoting `token` as a word.
pub fn quotes(delivery: &OutboundDelivery, token: &str) -> bool {
    delivery
        .content
        .get("text")
        .and_then(serde_json::Value::as_str)
        .and_then(|text| text.strip_prefix(ANSWER_PREFIX))
        .is_some_and(|quoted| contains_word(quoted, token))
}

fn finished(row_status: &str) -> bool {
    [status::COMPLETED, status::FAILED, status::PAUSED].contains(&row_status)
}

/// True when nothing due is left in the session: every due, unpaused row has its own terminal
/// status and every due output row is recorded. A wait condition, not a check: the oracle
/// judges the state the wait lets it read.
pub fn settled(snapshot: &SessionSnapshot, now_ms: i64) -> bool {
    let rows_done = snapshot
        .inbound
        .iter()
        .all(|row| finished(&row.status) || !is_due(row.process_after.as_deref(), now_ms));
    let outputs_done = snapshot.outbound.iter().all(|row| {
        snapshot
            .delivered
            .iter()
            .any(|d| d.message_out_id == row.id)
            || !is_due(row.deliver_after.as_deref(), now_ms)
    });
    rows_done && outputs_done
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    format!("{cut}…")
}

/// True when a row's content carries `token` as a word (`m1` is not found in `m10`).
pub fn carries(content: &str, token: &str) -> bool {
    contains_word(content, token)
}
