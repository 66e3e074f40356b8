//! The world of one run, composed of one part per subject — the host process, the containers,
//! the fault injector's armed state, the record — plus what every actor shares: the files,
//! the clock, the seeded choices and the event queue. The actors' steps live beside it
//! (`router.rs`, `host_steps.rs`, `runners.rs`, `inject.rs`); this file only builds the world
//! and offers the few operations all of them use.

use super::armed::ArmedFaults;
use super::config::{host_config_of, start_ms, WorldConfig};
use super::containers::Containers;
use super::event::Event;
use super::host::HostProcess;
use super::integrity;
use super::record::Record;
use crate::channel::SimChannel;
use crate::clock::SimClock;
use crate::env::SimEnv;
use crate::fs::{Side, SimFs};
use crate::ledger::IntegrityRecord;
use crate::rng::SimRng;
use crate::scheduler::Scheduler;
use crate::tape::{ChoiceSource, ChoiceTape, SeededChoices};
use clawsim_oracle::event::{Actor, Event as TypedEvent};
use clawsim_oracle::fault::FaultSide;
use std::rc::Rc;
use std::sync::Arc;

/// The whole simulated world of one run.
pub(super) struct World {
    pub(super) config: WorldConfig,
    pub(super) fs: SimFs,
    pub(super) clock: SimClock,
    /// The seed's generator, forked for each container process's random stream.
    pub(super) rng: SimRng,
    /// Every scheduling choice: drawn from the seed, or read from a tape.
    pub(super) choices: Box<dyn ChoiceSource>,
    pub(super) queue: Scheduler<Event>,
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
    /// Faults have stopped.
    pub(super) quiet: bool,
    pub(super) host: HostProcess,
    pub(super) containers: Containers,
    pub(super) channel: SimChannel,
    pub(super) armed: ArmedFaults,
    pub(super) record: Record,
}

impl World {
    pub(super) fn new(config: WorldConfig) -> Self {
        let rng = SimRng::new(config.seed);
        let start_ms = start_ms(config.seed);
        let clock = SimClock::new(start_ms);
        let fs = SimFs::new(config.profile, rng.fork("fs").next_u64());
        // The single-writer rule (PROTOCOL §1), which SimFs records violations of. A session's
        // outbound.db is declared the container's when its first container starts: the host
        // creates both DBs of a new session (PROTOCOL §7) before any container exists.
        fs.set_writer("inbound.db", Side::Host);
        fs.set_writer("central.db", Side::Host);
        let (now_clock, sleep_clock) = (clock.clone(), clock.clone());
        fs.set_time_hooks(
            Arc::new(move |side| now_clock.side_now_ms(side)),
            Arc::new(move |_side, us| sleep_clock.advance_by_us(us)),
        );
        let choices: Box<dyn ChoiceSource> = match &config.tape {
            Some(tape) => Box::new(ChoiceTape::new(tape.clone())),
            None => Box::new(SeededChoices::new(rng.fork("choices"))),
        };
        let host_env = Rc::new(SimEnv::new(
            Side::Host,
            fs.clone(),
            clock.clone(),
            rng.fork("host"),
        ));
        let end_ms = start_ms + config.active_ms + config.quiet_ms;
        let host_config = host_config_of(&config);
        Self {
            record: Record::new(config.trace_mode),
            channel: SimChannel::new(config.timing.channel),
            config,
            fs,
            clock,
            rng,
            choices,
            queue: Scheduler::new(),
            start_ms,
            end_ms,
            quiet: false,
            host: HostProcess::new(host_config, host_env),
            containers: Containers::default(),
            armed: ArmedFaults::default(),
        }
    }

    /// Now, true time, ms.
    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Schedules `event` at true time `at_ms`.
    pub(super) fn schedule(&mut self, at_ms: i64, event: Event) {
        self.queue.schedule(at_ms, event, self.choices.as_mut());
    }

    /// Schedules `event` `delay_ms` from now.
    pub(super) fn schedule_in(&mut self, delay_ms: i64, event: Event) {
        let at_ms = self.now_ms() + delay_ms.max(0);
        self.schedule(at_ms, event);
    }

    /// Records one typed event in the trace, now, and counts it for its actor; first the plain
    /// files the step read or wrote, as SimFs saw them.
    pub(super) fn record(&mut self, actor: Actor, session: Option<&str>, event: TypedEvent) {
        let now = self.now_ms();
        for access in self.fs.take_file_accesses() {
            // A container process is named after its session; the host's main process reads
            // for the session its step served.
            let of_process = access
                .process
                .as_deref()
                .and_then(|p| p.strip_prefix("agent-"));
            let side = match access.side {
                Side::Host => FaultSide::Host,
                Side::Container => FaultSide::Container,
            };
            let path = access.path;
            let fact = if access.written {
                TypedEvent::FileWritten { side, path }
            } else {
                TypedEvent::FileRead { side, path }
            };
            self.record
                .event(now, Actor::Files, of_process.or(session), fact);
        }
        self.record.event(now, actor, session, event);
    }

    /// Charges the I/O delays a step accumulated on SimFs (a slow disk) to true time.
    pub(super) fn charge_io_delay(&mut self) {
        let delay_ms =
            self.fs.take_io_delay_ms(Side::Host) + self.fs.take_io_delay_ms(Side::Container);
        self.clock.advance_by_us(delay_ms * 1_000);
    }

    /// `PRAGMA integrity_check` of every DB file under the data folder, now, as its next
    /// writer would find it.
    pub(super) fn integrity_of_all(&self) -> Vec<IntegrityRecord> {
        integrity::integrity_of_all(self.host.env.as_ref(), &self.fs, self.now_ms())
    }
}
