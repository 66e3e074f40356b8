//! The actors: one bounded step each, driving the core exactly as the live drivers do.
//!
//! Host side (one host process, restarted after crashes): the router takes the users'
//! messages and answers; three timers run the fast delivery pass (sessions whose container
//! runs), the slow one (every active session) and the sweep; a delivery pass stops at each
//! channel send and resumes when the send completes, so other actors run in between. Container
//! side: the runtime turns the host's start and kill requests into containers that come up after
//! a latency; each running container's agent-runner is stepped at the wake-up it asks for, on
//! its own clock, unless the container hangs. Every step ends with the runtime requests the host
//! made during it.

use crate::fs::Side;
use crate::ledger::{AnswerRecord, ChannelSend, SendOutcome};
use crate::provider::RecordingProvider;
use crate::runtime::RuntimeRequest;
use crate::workload::{UserMessage, SIM_CHANNEL};
use crate::world::{ActivePass, ContainerProcess, Event, StartFault, Timer, World};
use clawsim_core::channel::{OutboundDelivery, SendError};
use clawsim_core::config::RunnerConfig;
use clawsim_core::host::{DeliveryStep, Host, InboundEvent, SweepReport};
use clawsim_core::live::agent::settings_from_vars;
use clawsim_core::runner::mock::MockProvider;
use clawsim_core::runner::AgentRunner;
use clawsim_core::runtime::{ContainerSpec, ContainerState};
use clawsim_core::{Env, SessionPaths};
use clawsim_oracle::event::{Actor, Event as TypedEvent, SendResult, SweepFacts};
use serde_json::Value;

/// How many times a user tries to answer a question before giving up.
const ANSWER_ATTEMPTS_MAX: u32 = 20;

impl World {
    // ---- router -------------------------------------------------------------------------

    /// A user's message reaches the host (or waits for it while it is down).
    pub(crate) fn arrival(&mut self, index: usize) {
        let now = self.now_ms();
        if self.ledger.sent[index].offers == 0 {
            self.attach_armed_scripts(index);
        }
        let sent = &mut self.ledger.sent[index];
        sent.offers += 1;
        // The text as sent: the workload's, plus any provider-fault script it carries.
        let message = UserMessage {
            text: sent.text.clone(),
            ..self.config.workload.messages[index].clone()
        };
        let event = InboundEvent {
            channel_type: SIM_CHANNEL.into(),
            platform_id: self.config.workload.chats[message.chat].platform_id.clone(),
            thread_id: message.thread_id.clone(),
            kind: "chat".into(),
            content: message.content(),
        };
        let Some(host) = self.host.as_mut() else {
            self.backlog.push(index);
            self.record(Actor::Router, None, TypedEvent::MessageWaits { index });
            return;
        };
        let routed = host.route(&event);
        self.after_host_step();
        match routed {
            Ok(routed) => {
                let sent = &mut self.ledger.sent[index];
                sent.routed_at_ms = Some(now);
                sent.session_id = Some(routed.session_id.clone());
                sent.message_id = Some(routed.message_id.clone());
                sent.seq = Some(routed.seq);
                let routed_event = TypedEvent::MessageRouted {
                    index,
                    message_id: routed.message_id.clone(),
                    seq: routed.seq,
                };
                self.record(Actor::Router, Some(&routed.session_id), routed_event);
            }
            Err(error) => {
                let delay_ms = self.redelivery_delay_ms();
                self.schedule_in(delay_ms, Event::Arrival { index });
                let error = error.to_string();
                self.record(
                    Actor::Router,
                    None,
                    TypedEvent::MessageRefused { index, error },
                );
            }
        }
    }

    /// How long the platform waits before offering something the host refused again.
    fn redelivery_delay_ms(&mut self) -> i64 {
        1 + self
            .choices
            .below(self.config.timing.redelivery_ms_max as u64) as i64
    }

    /// Provider faults take effect here: their mock scripts ride on this message's text, and
    /// each is counted now that it will meet the provider.
    fn attach_armed_scripts(&mut self, index: usize) {
        if self.armed_scripts.is_empty() {
            return;
        }
        let armed = std::mem::take(&mut self.armed_scripts);
        let scripts: Vec<&str> = armed.iter().map(|(_, script)| script.as_str()).collect();
        let sent = &mut self.ledger.sent[index];
        sent.text = format!("{} @mock {}", sent.text, scripts.join("; "));
        for (kind, _) in &armed {
            *self.fault_counts.entry(kind.to_string()).or_default() += 1;
        }
        let scripts = scripts.into_iter().map(str::to_string).collect();
        self.record(
            Actor::Faults,
            None,
            TypedEvent::ScriptsAttached { index, scripts },
        );
    }

    /// A user answers a question card.
    pub(crate) fn answer(&mut self, question_id: String, option: String, attempt: u32) {
        let retry = Event::Answer {
            question_id: question_id.clone(),
            option: option.clone(),
            attempt: attempt + 1,
        };
        let result = match self.host.as_mut() {
            Some(host) => host
                .answer_question(&question_id, &option)
                .map_err(|e| e.to_string()),
            None => Err("host down".to_string()),
        };
        self.after_host_step();
        let now = self.now_ms();
        match result {
            Ok(routed) => {
                self.ledger.answers.push(AnswerRecord {
                    at_ms: now,
                    question_id: question_id.clone(),
                    option,
                    message_id: Some(routed.message_id.clone()),
                });
                let answered = TypedEvent::QuestionAnswered {
                    question_id,
                    message_id: routed.message_id,
                };
                self.record(Actor::User, Some(&routed.session_id), answered);
            }
            Err(error) => {
                if attempt + 1 < ANSWER_ATTEMPTS_MAX {
                    let delay_ms = self.redelivery_delay_ms();
                    self.schedule_in(delay_ms, retry);
                }
                let refused = TypedEvent::AnswerRefused { question_id, error };
                self.record(Actor::User, None, refused);
            }
        }
    }

    // ---- host timers --------------------------------------------------------------------

    /// One of the host's timers fires (and re-arms, unless it is a one-off or its host died).
    pub(crate) fn tick(&mut self, timer: Timer, incarnation: u64, once: bool) {
        if self.host.is_none() || incarnation != self.host_incarnation {
            return;
        }
        if !once {
            let event = Event::Tick {
                timer,
                incarnation,
                once,
            };
            self.schedule_in(self.interval_ms(timer), event);
        }
        match timer {
            Timer::DeliveryFast => self.deliver_sessions(true),
            Timer::DeliverySlow => self.deliver_sessions(false),
            Timer::Sweep => self.sweep_sessions(),
        }
    }

    /// Ids of the active sessions (only those whose container runs, for the fast pass).
    fn session_ids(&mut self, running_only: bool, actor: Actor) -> Vec<String> {
        let Some(host) = self.host.as_mut() else {
            return Vec::new();
        };
        match host.sessions_to_deliver(running_only) {
            Ok(ids) => ids,
            Err(error) => {
                let error = error.to_string();
                self.record(actor, None, TypedEvent::SessionsUnlisted { error });
                Vec::new()
            }
        }
    }

    fn deliver_sessions(&mut self, fast: bool) {
        let actor = pass_actor(fast);
        for session_id in self.session_ids(fast, actor) {
            let Some(host) = self.host.as_mut() else {
                return;
            };
            match host.begin_delivery(&session_id) {
                Ok(Some(pass)) => {
                    let pass_id = self.next_pass_id;
                    self.next_pass_id += 1;
                    let active = ActivePass {
                        session_id,
                        pass,
                        fast,
                    };
                    self.passes.insert(pass_id, active);
                    self.continue_pass(pass_id);
                }
                Ok(None) => self.record(actor, Some(&session_id), TypedEvent::PassBusy),
                Err(error) => {
                    let error = error.to_string();
                    let failed = TypedEvent::PassBeginFailed { error };
                    self.record(actor, Some(&session_id), failed)
                }
            }
        }
        self.after_host_step();
    }

    /// Runs a delivery pass until it needs the channel or is over.
    fn continue_pass(&mut self, pass_id: u64) {
        let (Some(host), Some(active)) = (self.host.as_mut(), self.passes.get_mut(&pass_id)) else {
            return;
        };
        let actor = pass_actor(active.fast);
        let session_id = active.session_id.clone();
        match host.delivery_step(&mut active.pass) {
            Ok(DeliveryStep::Send(delivery)) => {
                let planned = self.channel.plan_send(self.choices.as_mut());
                let started = TypedEvent::SendStarted {
                    row: delivery.message_out_id.clone(),
                    seq: delivery.seq,
                    latency_ms: planned.latency_ms,
                };
                let event = Event::SendDone {
                    pass_id,
                    incarnation: self.host_incarnation,
                    delivery,
                    outcome: planned.outcome,
                };
                self.schedule_in(planned.latency_ms, event);
                self.record(actor, Some(&session_id), started);
            }
            Ok(DeliveryStep::Done) => {
                self.end_pass(pass_id);
                self.record(actor, Some(&session_id), TypedEvent::PassDone);
            }
            Err(error) => {
                self.end_pass(pass_id);
                let error = error.to_string();
                self.record(actor, Some(&session_id), TypedEvent::PassFailed { error });
            }
        }
    }

    fn end_pass(&mut self, pass_id: u64) {
        if let (Some(host), Some(active)) = (self.host.as_mut(), self.passes.remove(&pass_id)) {
            host.end_delivery(active.pass);
        }
    }

    /// A channel send completes: the platform records what it got, then the host hears how it
    /// went — unless the host died meanwhile, in which case the request may or may not have
    /// left the process before it did.
    pub(crate) fn send_done(
        &mut self,
        pass_id: u64,
        incarnation: u64,
        delivery: OutboundDelivery,
        outcome: Result<(), SendError>,
    ) {
        let host_alive = self.host.is_some() && incarnation == self.host_incarnation;
        let reached = host_alive || self.choices.chance(0.5);
        let session_id = delivery.session_id.clone();
        if reached {
            self.platform_receives(&delivery, &outcome, incarnation);
        }
        let finished = TypedEvent::SendFinished {
            row: delivery.message_out_id.clone(),
            result: send_result(&outcome),
            host_alive,
            reached,
        };
        self.record(Actor::Channel, Some(&session_id), finished);
        if !host_alive {
            return;
        }
        let (Some(host), Some(active)) = (self.host.as_mut(), self.passes.get_mut(&pass_id)) else {
            return;
        };
        match host.delivery_sent(&mut active.pass, outcome) {
            Ok(()) => self.continue_pass(pass_id),
            Err(error) => {
                self.end_pass(pass_id);
                let failed = TypedEvent::RecordFailed {
                    row: delivery.message_out_id.clone(),
                    error: error.to_string(),
                };
                self.record(Actor::Delivery, Some(&session_id), failed);
            }
        }
        self.after_host_step();
    }

    /// The ledger's record of a send, and the user's answer if it was a question card.
    fn platform_receives(
        &mut self,
        delivery: &OutboundDelivery,
        outcome: &Result<(), SendError>,
        incarnation: u64,
    ) {
        let outcome = match outcome {
            Ok(()) => SendOutcome::Received,
            Err(SendError::Transient(_)) => SendOutcome::Transient,
            Err(SendError::Permanent(_)) => SendOutcome::Permanent,
        };
        self.ledger.channel.push(ChannelSend {
            at_ms: self.now_ms(),
            outcome,
            message_out_id: delivery.message_out_id.clone(),
            seq: delivery.seq,
            session_id: delivery.session_id.clone(),
            route: delivery.route.clone(),
            kind: delivery.kind.clone(),
            content: delivery.content.clone(),
            files: delivery
                .files
                .iter()
                .map(|(name, _)| name.clone())
                .collect(),
            host_incarnation: incarnation,
        });
        if outcome != SendOutcome::Received {
            return;
        }
        if let Some((question_id, option)) = question_of(&delivery.content) {
            let max = self.config.workload.answer_delay_ms_max.max(0) as u64;
            let delay = self.choices.below(max + 1) as i64;
            let event = Event::Answer {
                question_id,
                option,
                attempt: 0,
            };
            self.schedule_in(delay, event);
        }
    }

    /// The sweep, as the live host runs it: every active session, one report each.
    fn sweep_sessions(&mut self) {
        let Some(host) = self.host.as_mut() else {
            return;
        };
        match host.sweep_all() {
            Ok(reports) => {
                for (session_id, report) in reports {
                    let swept = match report {
                        Ok(report) => TypedEvent::Swept {
                            facts: sweep_facts(&report),
                        },
                        Err(error) => TypedEvent::SweepFailed {
                            error: error.to_string(),
                        },
                    };
                    self.record(Actor::Sweep, Some(&session_id), swept);
                }
            }
            Err(error) => {
                let error = error.to_string();
                self.record(Actor::Sweep, None, TypedEvent::SessionsUnlisted { error })
            }
        }
        self.after_host_step();
    }

    /// The host process starts again.
    pub(crate) fn host_restart(&mut self) {
        if self.host.is_some() {
            return;
        }
        let opened = Host::open(
            self.host_env.clone(),
            self.host_config.clone(),
            self.runtime_handle(),
        );
        match opened {
            Ok(host) => {
                self.host = Some(host);
                self.host_incarnation += 1;
                let incarnation = self.host_incarnation;
                self.record(Actor::World, None, TypedEvent::HostStarted { incarnation });
                if std::mem::take(&mut self.crashed_since_restart) {
                    let checks = self.integrity_of_all();
                    self.ledger.crash_checks.extend(checks);
                }
                self.schedule_timers();
                for index in std::mem::take(&mut self.backlog) {
                    self.schedule_in(0, Event::Arrival { index });
                }
            }
            Err(error) => {
                let error = error.to_string();
                self.record(Actor::World, None, TypedEvent::HostStartFailed { error });
                let retry_ms = self.config.timing.host_restart_retry_ms;
                self.schedule_in(retry_ms, Event::HostRestart);
            }
        }
        self.after_host_step();
    }

    // ---- container runtime --------------------------------------------------------------

    /// Handles what the host asked of the runtime during its last step.
    pub(crate) fn after_host_step(&mut self) {
        let requests = self.table.borrow_mut().take_requests();
        for request in requests {
            match request {
                RuntimeRequest::Start { spec, generation } => {
                    self.start_container(spec, generation)
                }
                RuntimeRequest::Kill { session_id, stop } => {
                    self.end_container(&session_id, !stop);
                    let ended = if stop {
                        TypedEvent::ContainerStopped
                    } else {
                        TypedEvent::ContainerKilled
                    };
                    self.record(Actor::Runtime, Some(&session_id), ended);
                }
            }
        }
    }

    fn start_container(&mut self, spec: ContainerSpec, generation: u64) {
        let timing = self.config.timing;
        let mut latency_ms = self
            .choices
            .range_inclusive(timing.container_start_ms_min, timing.container_start_ms_max);
        let mut fails = false;
        if !self.start_faults.is_empty() {
            match self.start_faults.remove(0) {
                StartFault::Slow { extra_ms } => latency_ms += extra_ms,
                StartFault::Fails => fails = true,
            }
        }
        let session_id = spec.session_id.clone();
        let requested = TypedEvent::StartRequested {
            generation,
            latency_ms,
        };
        self.schedule_in(
            latency_ms,
            Event::ContainerUp {
                spec,
                generation,
                fails,
            },
        );
        self.record(Actor::Runtime, Some(&session_id), requested);
    }

    /// A requested container comes up (or fails to), and its agent process starts.
    pub(crate) fn container_up(&mut self, spec: ContainerSpec, generation: u64, fails: bool) {
        let session_id = spec.session_id.clone();
        let starting =
            self.table
                .borrow()
                .is_current(&session_id, generation, ContainerState::Starting);
        if !starting {
            return;
        }
        if fails {
            self.table
                .borrow_mut()
                .set_state(&session_id, ContainerState::Stopped);
            let failed = TypedEvent::ContainerStartFailed;
            self.record(Actor::Runtime, Some(&session_id), failed);
            return;
        }
        self.table
            .borrow_mut()
            .set_state(&session_id, ContainerState::Running);
        if self.declared_writers.insert(spec.session_dir.clone()) {
            let outbound = spec.session_dir.join("outbound.db");
            self.fs
                .set_writer(&outbound.display().to_string(), Side::Container);
        }
        let env = self.container_env(&session_id, generation);
        let process = ContainerProcess {
            generation,
            spec,
            env,
            runner: None,
            poll_interval_idle_ms: RunnerConfig::new(SessionPaths::default()).poll_interval_idle_ms,
            wake_token: 0,
            hung_until_ms: None,
        };
        self.containers.insert(session_id.clone(), process);
        self.record(
            Actor::Runtime,
            Some(&session_id),
            TypedEvent::ContainerRunning,
        );
        self.wake_runner_at(&session_id, self.now_ms());
    }

    /// Schedules the runner's own next wake-up at true time `at_ms`; earlier ones go stale.
    pub(crate) fn wake_runner_at(&mut self, session_id: &str, at_ms: i64) {
        let token = self.next_wake_token;
        self.next_wake_token += 1;
        let Some(process) = self.containers.get_mut(session_id) else {
            return;
        };
        process.wake_token = token;
        let event = Event::RunnerWake {
            session_id: session_id.to_string(),
            generation: process.generation,
            token,
            duplicate: false,
        };
        self.schedule(at_ms, event);
    }

    /// The session's container process ends: a kill takes it down between two of its steps
    /// with no clean-up (its handles die, its locks go); a stop lets it close its files.
    pub(crate) fn end_container(&mut self, session_id: &str, killed: bool) {
        let process = self.containers.remove(session_id);
        if killed {
            self.fs.crash_named_process(
                Side::Container,
                &crate::world::container_process(session_id),
            );
        }
        drop(process);
    }

    /// An agent-runner's wake-up: one poll iteration, unless the container hangs or is gone.
    pub(crate) fn runner_wake(
        &mut self,
        session_id: &str,
        generation: u64,
        token: u64,
        duplicate: bool,
    ) {
        let Some(process) = self.containers.get(session_id) else {
            return;
        };
        let stale = process.generation != generation || (!duplicate && process.wake_token != token);
        if stale || process.hung_until_ms.is_some() || (duplicate && process.runner.is_none()) {
            return;
        }
        if process.runner.is_none() {
            self.start_runner(session_id);
        } else {
            self.step_runner(session_id, duplicate);
        }
    }

    /// The agent process starts its runner; like the live binary, it retries until it can.
    fn start_runner(&mut self, session_id: &str) {
        let Some(process) = self.containers.get_mut(session_id) else {
            return;
        };
        let mut vars = process.spec.env_vars.clone();
        vars.entry("CLAWSIM_SESSION_DIR".into())
            .or_insert_with(|| process.spec.session_dir.display().to_string());
        let settings = match settings_from_vars(&vars) {
            Ok(settings) => settings,
            Err(error) => {
                let error = error.to_string();
                let bad = TypedEvent::RunnerBadSettings { error };
                self.record(Actor::Runner, Some(session_id), bad);
                self.agent_exits(session_id, 2);
                return;
            }
        };
        let idle_ms = settings.runner.poll_interval_idle_ms;
        let env = process.env.clone();
        let provider = RecordingProvider::new(MockProvider::new(), self.provider_log.clone());
        let started = AgentRunner::start(env.clone(), settings.runner, Box::new(provider));
        let (started, wake_side_ms) = match started {
            Ok(runner) => {
                process.runner = Some(runner);
                process.poll_interval_idle_ms = idle_ms;
                (TypedEvent::RunnerStarted, env.now_ms())
            }
            Err(error) => {
                let error = error.to_string();
                let failed = TypedEvent::RunnerStartFailed { error };
                (failed, env.now_ms() + idle_ms)
            }
        };
        self.record(Actor::Runner, Some(session_id), started);
        let at_ms = self.clock.true_ms_when(Side::Container, wake_side_ms);
        self.wake_runner_at(session_id, at_ms);
    }

    fn step_runner(&mut self, session_id: &str, duplicate: bool) {
        let Some(process) = self.containers.get_mut(session_id) else {
            return;
        };
        let Some(runner) = process.runner.as_mut() else {
            return;
        };
        let stepped = runner.step();
        self.record_provider_facts(session_id);
        let Some(process) = self.containers.get_mut(session_id) else {
            return;
        };
        let (polled, wake_side_ms) = match stepped {
            Ok(step) => {
                if let Some(code) = step.exit_code {
                    self.record(
                        Actor::Runner,
                        Some(session_id),
                        TypedEvent::RunnerExit { code },
                    );
                    self.agent_exits(session_id, code);
                    return;
                }
                let next_in_ms = step.next_wake_ms - process.env.now_ms();
                let polled = TypedEvent::Polled {
                    next_in_ms,
                    duplicate,
                };
                (polled, step.next_wake_ms)
            }
            Err(error) => {
                // The live binary logs the error and tries again at the idle interval.
                let retry_side_ms = process.env.now_ms() + process.poll_interval_idle_ms;
                let error = error.to_string();
                (TypedEvent::PollFailed { error, duplicate }, retry_side_ms)
            }
        };
        self.record(Actor::Runner, Some(session_id), polled);
        if !duplicate {
            let at_ms = self.clock.true_ms_when(Side::Container, wake_side_ms);
            self.wake_runner_at(session_id, at_ms);
        }
    }

    /// Records what the provider boundary saw during the last runner step.
    fn record_provider_facts(&mut self, session_id: &str) {
        let facts = std::mem::take(&mut *self.provider_log.borrow_mut());
        for fact in facts {
            self.record(Actor::Provider, Some(session_id), fact);
        }
    }

    /// The agent process exits on its own: the container stops.
    fn agent_exits(&mut self, session_id: &str, code: i32) {
        if let Some(process) = self.containers.remove(session_id) {
            let generation = process.generation;
            let mut table = self.table.borrow_mut();
            if table.is_current(session_id, generation, ContainerState::Running) {
                table.set_state(session_id, ContainerState::Stopped);
            }
        }
        self.record(
            Actor::Runtime,
            Some(session_id),
            TypedEvent::ContainerExited { code },
        );
    }

    /// A hung container resumes where it stopped.
    pub(crate) fn hang_end(&mut self, session_id: &str, generation: u64) {
        let Some(process) = self.containers.get_mut(session_id) else {
            return;
        };
        if process.generation != generation || process.hung_until_ms.take().is_none() {
            return;
        }
        self.record(
            Actor::Runtime,
            Some(session_id),
            TypedEvent::ContainerResumed,
        );
        self.wake_runner_at(session_id, self.now_ms());
    }
}

/// The actor of a delivery pass.
fn pass_actor(fast: bool) -> Actor {
    if fast {
        Actor::DeliveryFast
    } else {
        Actor::DeliverySlow
    }
}

/// A send's outcome as the platform saw it.
fn send_result(outcome: &Result<(), SendError>) -> SendResult {
    match outcome {
        Ok(()) => SendResult::Received,
        Err(SendError::Transient(error)) => SendResult::Transient {
            error: error.clone(),
        },
        Err(SendError::Permanent(error)) => SendResult::Permanent {
            error: error.clone(),
        },
    }
}

/// What a sweep returned, as the record keeps it.
fn sweep_facts(report: &SweepReport) -> SweepFacts {
    SweepFacts {
        acks_synced: report.acks_synced,
        woke: report.woke,
        presumed_dead: report.presumed_dead,
        retried: report.retried,
        failed: report.failed,
        output_sent: report.output_sent,
        recurrences: report.recurrences,
        stopped_idle: report.stopped_idle,
        outbound_unreadable: report.outbound_unreadable,
    }
}

/// `(question id, first option)` of an `ask_question` card.
fn question_of(content: &Value) -> Option<(String, String)> {
    if content.get("type").and_then(Value::as_str) != Some("ask_question") {
        return None;
    }
    let question_id = content.get("questionId")?.as_str()?.to_string();
    let option = match content.get("options").and_then(|o| o.get(0)) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other
            .get("value")
            .or_else(|| other.get("label"))
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), str::to_string),
        None => String::new(),
    };
    Some((question_id, option))
}
