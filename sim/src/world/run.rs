//! A run from setup to outcome: the host is opened and wired, the workload's messages, the
//! planned faults, the quiet period and the end are scheduled; then the scheduler's events are
//! dispatched one at a time, each one bounded step of one actor, until the end; then both DBs
//! of every session are read into the ledger.

use super::config::WorldConfig;
use super::event::Event;
use super::integrity;
use super::outcome::RunOutcome;
use super::state::World;
use crate::ledger::SentMessage;
use crate::workload::SIM_CHANNEL;
use clawsim_core::host::SessionMode;
use clawsim_core::model::Route;
use clawsim_oracle::event::{Actor, Event as TypedEvent};

/// More events than this at one simulated instant is a livelock (time stopped moving).
const LIVELOCK_EVENTS_MAX: u64 = 10_000;

/// Runs one world to its end and returns its trace and ledger.
pub fn run_world(config: WorldConfig) -> RunOutcome {
    let mut world = World::new(config);
    world.run();
    world.finish()
}

impl World {
    fn run(&mut self) {
        if let Err(error) = self.setup() {
            self.record.errors.push(format!("setup failed: {error}"));
            return;
        }
        // Events run at one instant in a row: a livelock (actors waking each other without time
        // moving) is reported instead of spinning to the step bound.
        let (mut instant_ms, mut events_at_instant) = (i64::MIN, 0u64);
        while let Some((at_ms, event)) = self.queue.pop() {
            if at_ms > self.end_ms || matches!(event, Event::End) {
                break;
            }
            if self.record.trace.steps() >= self.config.max_steps {
                self.record
                    .errors
                    .push(format!("step bound {} reached", self.config.max_steps));
                break;
            }
            self.clock.advance_to_us(at_ms * 1_000);
            let now_ms = self.now_ms();
            if now_ms == instant_ms {
                events_at_instant += 1;
            } else {
                (instant_ms, events_at_instant) = (now_ms, 0);
            }
            if events_at_instant > LIVELOCK_EVENTS_MAX {
                let what =
                    format!("livelock: {events_at_instant} events at {now_ms} ms, last {event:?}");
                self.record.errors.push(what);
                break;
            }
            self.record.begin_dispatch();
            self.dispatch(event);
            self.charge_io_delay();
            self.check_power_cut();
            self.check_armed_storage();
            self.check_traps();
        }
    }

    /// Opens the host, wires the workload's chats and starts every timer.
    fn setup(&mut self) -> clawsim_core::Result<()> {
        let mut host = self.host.open(self.containers.runtime_handle())?;
        for chat in &self.config.workload.chats {
            host.add_agent_group(&chat.agent_group_id, &chat.agent_group_id)?;
            host.add_messaging_group(
                &chat.messaging_group_id,
                crate::workload::SIM_CHANNEL,
                &chat.platform_id,
            )?;
            let mode = if chat.per_thread {
                SessionMode::PerThread
            } else {
                SessionMode::Shared
            };
            host.wire(&chat.messaging_group_id, &chat.agent_group_id, 0, mode)?;
        }
        let chats = &self.config.workload.chats;
        for &(from, to) in &self.config.workload.agent_routes {
            host.allow_agent_route(&chats[from].agent_group_id, &chats[to].agent_group_id)?;
        }
        self.host.running = Some(host);
        self.host.incarnation = 1;
        let setup = TypedEvent::Setup {
            seed: self.config.seed,
            profile: self.config.profile.to_string(),
            start: clawsim_core::time::format_instant(self.start_ms),
            chats: self.config.workload.chats.len(),
            messages: self.config.workload.messages.len(),
            faults: self.config.faults.faults.len(),
            active_ms: self.config.active_ms,
            quiet_ms: self.config.quiet_ms,
        };
        self.record(Actor::World, None, setup);
        self.schedule_timers();
        for index in 0..self.config.workload.messages.len() {
            let message = &self.config.workload.messages[index];
            let at_ms = self.start_ms + message.at_ms;
            self.record.ledger.sent.push(SentMessage {
                index,
                chat: message.chat,
                thread_id: message.thread_id.clone(),
                text: message.text.clone(),
                sent_at_ms: at_ms,
                offers: 0,
                routed_at_ms: None,
                session_id: None,
                message_id: None,
                seq: None,
                sender_id: message.sender_id_sent().map(str::to_string),
                conversation: Some(Route {
                    channel_type: Some(SIM_CHANNEL.to_string()),
                    platform_id: Some(self.config.workload.chats[message.chat].platform_id.clone()),
                    thread_id: message.thread_id.clone(),
                }),
            });
            self.schedule(at_ms, Event::Arrival { index });
        }
        for index in 0..self.config.faults.faults.len() {
            let at_ms = self.start_ms + self.config.faults.faults[index].at_ms;
            self.schedule(at_ms, Event::Fault { index });
        }
        let quiet_at = self.start_ms + self.config.active_ms;
        self.schedule(quiet_at, Event::QuietStart);
        self.schedule(self.end_ms, Event::End);
        Ok(())
    }

    /// Runs one event's step. The host's timers, a send's completion and its restart are host
    /// steps as a whole ([`World::host_step`] handles the runtime requests they leave); a
    /// user's message or answer wraps only its call of the router (`router.rs`), because the
    /// containers that call started are recorded before what the platform heard back.
    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Arrival { index } => self.arrival(index),
            Event::Answer {
                question_id,
                option,
                attempt,
            } => self.answer(question_id, option, attempt),
            Event::Tick {
                timer,
                incarnation,
                once,
            } => self.host_step(|world| world.tick(timer, incarnation, once)),
            Event::SendDone {
                pass_id,
                incarnation,
                delivery,
                outcome,
            } => self.host_step(|world| world.send_done(pass_id, incarnation, delivery, outcome)),
            Event::ContainerUp {
                spec,
                generation,
                fails,
            } => self.container_up(spec, generation, fails),
            Event::CrashMidSend {
                incarnation,
                session_id,
                down_ms,
            } => self.crash_mid_send(incarnation, &session_id, down_ms),
            Event::KillStarting {
                session_id,
                generation,
            } => self.kill_starting(&session_id, generation),
            Event::RunnerWake {
                session_id,
                generation,
                token,
                duplicate,
            } => self.runner_wake(&session_id, generation, token, duplicate),
            Event::HangEnd {
                session_id,
                generation,
            } => self.hang_end(&session_id, generation),
            Event::HostRestart => self.host_step(Self::host_restart),
            Event::Fault { index } => self.strike(index),
            Event::QuietStart => self.quiet_start(),
            Event::End => {}
        }
    }

    fn finish(mut self) -> RunOutcome {
        self.record.ledger.shared_session_file =
            self.config.design.layout == clawsim_core::config::SessionLayout::Single;
        self.record.ledger.final_state = integrity::final_state(
            self.host.env.as_ref(),
            &self.fs,
            self.now_ms(),
            self.config.design.layout,
        );
        // Processes go before the files they hold open.
        self.host.running = None;
        self.host.passes.clear();
        self.containers.processes.clear();
        let counters = self.record.counters(self.fs.counters());
        let sim_ms = self.now_ms() - self.start_ms;
        let record = self.record;
        RunOutcome {
            host_config: self.host.config.clone(),
            timing: self.config.timing,
            seed: self.config.seed,
            profile: self.config.profile.name().to_string(),
            trace_hash: record.trace.hash(),
            steps: record.trace.steps(),
            trace: record.trace,
            ledger: record.ledger,
            fault_counts: record.fault_counts,
            counters,
            sim_ms,
            errors: record.errors,
        }
    }
}
