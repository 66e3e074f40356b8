//! The container side: the runtime turns the host's start and kill requests into containers
//! that come up after a latency (or fail to, or start slowly, as armed faults say); each
//! running container's agent-runner is started, then stepped at the wake-up it asks for, on
//! its own clock, unless the container hangs; a runner that exits stops its container.

use super::armed::AnswerCrashes;
use super::armed::StartFault;
use super::containers::{container_env, container_process, ContainerProcess};
use super::event::Event;
use super::state::World;
use crate::fs::{FsTrap, PathMatch, Side, SimFs, TrapEffect};
use crate::provider::{AnswerHook, RecordingProvider};
use crate::runtime::RuntimeRequest;
use clawsim_core::config::RunnerConfig;
use clawsim_core::live::agent::settings_from_vars;
use clawsim_core::runner::mock::MockProvider;
use clawsim_core::runner::AgentRunner;
use clawsim_core::runtime::{ContainerSpec, ContainerState};
use clawsim_core::{Env, SessionPaths};
use clawsim_oracle::event::{Actor, Event as TypedEvent};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// The tools whose row asks the host for a system action (PROTOCOL §7).
const SYSTEM_ACTION_TOOLS: [&str; 4] =
    ["schedule_task", "cancel_task", "pause_task", "resume_task"];

impl World {
    /// Runs `step` — one step of the host process: a call of its router, or all it does for
    /// one of its timers, a send's completion or its restart — then turns what the host asked
    /// of the runtime during it into container starts and kills. The only place runtime
    /// requests are drained, so each is seen right after the host step that made it, before
    /// anything else happens.
    pub(super) fn host_step<R>(&mut self, step: impl FnOnce(&mut Self) -> R) -> R {
        let result = step(self);
        self.drain_runtime_requests();
        result
    }

    /// Handles what the host asked of the runtime during its last step.
    fn drain_runtime_requests(&mut self) {
        let requests = self.containers.take_requests();
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
        let session_id = spec.session_id.clone();
        match self.armed.next_start_fault() {
            Some(StartFault::Slow { extra_ms }) => latency_ms += extra_ms,
            Some(StartFault::Fails) => fails = true,
            Some(StartFault::Killed { at_permille }) => {
                let kill = Event::KillStarting {
                    session_id: session_id.clone(),
                    generation,
                };
                self.schedule_in(latency_ms * i64::from(at_permille) / 1_000, kill);
            }
            None => {}
        }
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
    pub(super) fn container_up(&mut self, spec: ContainerSpec, generation: u64, fails: bool) {
        let session_id = spec.session_id.clone();
        let starting = self.containers.table.borrow().is_current(
            &session_id,
            generation,
            ContainerState::Starting,
        );
        if !starting {
            return;
        }
        if fails {
            self.containers
                .table
                .borrow_mut()
                .set_state(&session_id, ContainerState::Stopped);
            let failed = TypedEvent::ContainerStartFailed;
            self.record(Actor::Runtime, Some(&session_id), failed);
            return;
        }
        self.containers
            .table
            .borrow_mut()
            .set_state(&session_id, ContainerState::Running);
        if self.containers.declare_writer(&spec.session_dir) {
            let outbound = spec.session_dir.join("outbound.db");
            self.fs
                .set_writer(&outbound.display().to_string(), Side::Container);
        }
        let env = container_env(&self.fs, &self.clock, &self.rng, &session_id, generation);
        let process = ContainerProcess {
            generation,
            spec,
            env,
            runner: None,
            poll_interval_idle_ms: RunnerConfig::new(SessionPaths::default()).poll_interval_idle_ms,
            wake_token: 0,
            hung_until_ms: None,
        };
        self.containers
            .processes
            .insert(session_id.clone(), process);
        self.record(
            Actor::Runtime,
            Some(&session_id),
            TypedEvent::ContainerRunning,
        );
        self.wake_runner_at(&session_id, self.now_ms());
    }

    /// Schedules the runner's own next wake-up at true time `at_ms`; earlier ones go stale.
    pub(super) fn wake_runner_at(&mut self, session_id: &str, at_ms: i64) {
        let token = self.containers.next_wake_token();
        let Some(process) = self.containers.processes.get_mut(session_id) else {
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
    pub(super) fn end_container(&mut self, session_id: &str, killed: bool) {
        let process = self.containers.processes.remove(session_id);
        if killed {
            self.fs
                .crash_named_process(Side::Container, &container_process(session_id));
        }
        drop(process);
    }

    /// An agent-runner's wake-up: one poll iteration, unless the container hangs or is gone.
    pub(super) fn runner_wake(
        &mut self,
        session_id: &str,
        generation: u64,
        token: u64,
        duplicate: bool,
    ) {
        let Some(process) = self.containers.processes.get(session_id) else {
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
        let Some(process) = self.containers.processes.get_mut(session_id) else {
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
        let hook = answer_crash_hook(
            self.armed.answer_crashes.clone(),
            self.fs.clone(),
            session_id,
            &settings.runner.paths.outbound_db(),
        );
        let provider =
            RecordingProvider::new(MockProvider::new(), self.record.provider_log.clone())
                .with_answer_hook(hook);
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
        let Some(process) = self.containers.processes.get_mut(session_id) else {
            return;
        };
        let Some(runner) = process.runner.as_mut() else {
            return;
        };
        let stepped = runner.step();
        self.record_provider_facts(session_id);
        let Some(process) = self.containers.processes.get_mut(session_id) else {
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

    /// Records what the provider boundary saw during the last runner step; the targeted
    /// faults waiting for it take their aim: a crash waiting for a system action aims at this
    /// session's next delivery steps, a silence past the idle timeout strikes when the runner
    /// ends the turn it silenced.
    fn record_provider_facts(&mut self, session_id: &str) {
        let facts = self.record.take_provider_facts();
        for fact in facts {
            let silenced = matches!(fact, TypedEvent::TurnEnded | TypedEvent::TurnAborted);
            let action = matches!(&fact, TypedEvent::ToolCalled { name, .. }
                if SYSTEM_ACTION_TOOLS.contains(&name.as_str()));
            self.record(Actor::Provider, Some(session_id), fact);
            if action && !self.armed.action_crashes.is_empty() {
                let down_ms = self.armed.action_crashes.remove(0);
                let session = session_id.to_string();
                self.armed
                    .action_sessions
                    .entry(session)
                    .or_default()
                    .push(down_ms);
            }
            let waiting = self.armed.silent_sessions.get_mut(session_id);
            if let (true, Some(count @ 1..)) = (silenced, waiting) {
                *count -= 1;
                // Counted when its script rode on the message; recorded where it struck.
                let fired = TypedEvent::FaultFired {
                    kind: "provider-silent-past-idle".into(),
                    struck_in: self.record.struck_step(),
                };
                self.record(Actor::Faults, Some(session_id), fired);
            }
        }
    }

    /// The agent process exits on its own: the container stops.
    fn agent_exits(&mut self, session_id: &str, code: i32) {
        if let Some(process) = self.containers.processes.remove(session_id) {
            let generation = process.generation;
            let mut table = self.containers.table.borrow_mut();
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
    pub(super) fn hang_end(&mut self, session_id: &str, generation: u64) {
        let Some(process) = self.containers.processes.get_mut(session_id) else {
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

/// The provider boundary's hook for a crash aimed between an answer and its ack: when one
/// waits, the runner of `session_id` dies at its next write to `outbound` (its outbound file,
/// or that file's journal), now that its answer is stored.
fn answer_crash_hook(
    crashes: Rc<RefCell<AnswerCrashes>>,
    fs: SimFs,
    session_id: &str,
    outbound: &Path,
) -> AnswerHook {
    let session_id = session_id.to_string();
    let path = PathMatch::Contains(outbound.display().to_string());
    Rc::new(move || {
        let mut crashes = crashes.borrow_mut();
        if crashes.pending == 0 {
            return;
        }
        crashes.pending -= 1;
        let trap = fs.arm_trap(FsTrap {
            side: Side::Container,
            op: None,
            path: path.clone(),
            effect: TrapEffect::Crash,
        });
        crashes.armed.push((trap, session_id.clone()));
    })
}
