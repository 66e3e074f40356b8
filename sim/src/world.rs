//! The world: one seeded run of the unmodified core, from setup to the final ledger.
//!
//! A world owns SimFs, the clock, the host (core's [`Host`]), one agent-runner per running
//! container (core's [`AgentRunner`] with its mock provider), the container table, the channel
//! and the users. [`run_world`] sets the host up, then pops events from the [`Scheduler`] one at
//! a time: each event is one bounded step of one actor (see [`crate::actors`]), recorded in the
//! trace. Faults strike at their planned times ([`crate::inject`]); after the active part of the
//! run comes a quiet period — faults off, hung containers resumed — long enough for everything
//! due to be processed and delivered; then both DBs of every session are read into the ledger.
//!
//! Actors that belong to a process which has since died (a send started by a host that crashed,
//! a wake-up of a container that was killed) carry the incarnation or generation they were
//! scheduled for, and are recognised as stale when they fire.

use crate::channel::{ChannelTiming, SimChannel};
use crate::clock::{SimClock, EPOCH_MS};
use crate::env::SimEnv;
use crate::faults::{FaultPlan, FAULT_KINDS};
use crate::fs::{MountProfile, Side, SimFs};
use crate::ledger::{
    FinalSession, FinalState, IntegrityRecord, Ledger, MaybeDurableRecord, SentMessage,
};
use crate::rng::SimRng;
use crate::runtime::{ContainerTable, SimRuntime};
use crate::scheduler::Scheduler;
use crate::tape::{ChoiceSource, ChoiceTape, SeededChoices};
use crate::trace::{Trace, TraceMode};
use crate::workload::Workload;
use clawsim_core::channel::{OutboundDelivery, SendError};
use clawsim_core::config::{HostConfig, RunnerConfig};
use clawsim_core::host::{DeliveryPass, Host, SessionMode};
use clawsim_core::inspect::snapshot_session;
use clawsim_core::runner::AgentRunner;
use clawsim_core::runtime::ContainerSpec;
use clawsim_core::{Env, SessionPaths};
use clawsim_oracle::event::{Actor, Event as TypedEvent};
use clawsim_oracle::properties::{Bounds, RunRecord};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// The host's data folder inside SimFs.
pub const DATA_DIR: &str = "/data";

/// The fault kinds that cut the machine's power.
const POWER_LOSS_KINDS: [&str; 2] = ["machine-crash", "power-cut"];

/// More events than this at one simulated instant is a livelock (time stopped moving).
const LIVELOCK_EVENTS_MAX: u64 = 10_000;

/// Sender id the agents accept admin commands from.
pub const ADMIN_USER_ID: &str = "id0";

/// Latencies of the world's outside parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub container_start_ms_min: i64,
    pub container_start_ms_max: i64,
    pub channel: ChannelTiming,
    /// How long the platform waits before offering a refused message again.
    pub redelivery_ms_max: i64,
    /// How long the supervisor waits before retrying a host that failed to open.
    pub host_restart_retry_ms: i64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            container_start_ms_min: 300,
            container_start_ms_max: 3_000,
            channel: ChannelTiming::default(),
            redelivery_ms_max: 5_000,
            host_restart_retry_ms: 5_000,
        }
    }
}

/// Everything that determines a run; saved next to a failing seed, it replays the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorldConfig {
    pub seed: u64,
    #[serde(with = "profile_by_name")]
    pub profile: MountProfile,
    pub workload: Workload,
    pub faults: FaultPlan,
    /// Length of the part of the run in which faults strike, ms.
    pub active_ms: i64,
    /// Length of the quiet period after it, ms.
    pub quiet_ms: i64,
    pub timing: Timing,
    pub trace_mode: TraceMode,
    /// Scheduling choices read from this tape instead of drawn from the seed.
    pub tape: Option<Vec<u64>>,
    /// Bound on the number of steps (a run that hits it reports an error).
    pub max_steps: u64,
}

impl WorldConfig {
    /// A run of `workload` under `faults`, with default timing: `active_ms` of activity, then
    /// 30 simulated minutes of quiet.
    pub fn new(
        seed: u64,
        profile: MountProfile,
        workload: Workload,
        faults: FaultPlan,
        active_ms: i64,
    ) -> Self {
        Self {
            seed,
            profile,
            workload,
            faults,
            active_ms,
            quiet_ms: 30 * 60_000,
            timing: Timing::default(),
            trace_mode: TraceMode::Full,
            tape: None,
            max_steps: 5_000_000,
        }
    }

    /// The default scenario: one to three chats, a handful of messages over ten simulated
    /// minutes, and up to four faults, all drawn from `seed`, then the quiet period of
    /// [`settle_ms`]. Power losses (between steps or in the middle of a disk operation) belong
    /// to the `power-loss` profile: there the plan always holds one, elsewhere none.
    pub fn default_scenario(seed: u64, profile: MountProfile) -> Self {
        let active_ms = 10 * 60_000;
        let mut choices = SeededChoices::new(SimRng::new(seed).fork("scenario"));
        let chats = 1 + choices.below(3) as usize;
        let messages = 2 + choices.below(9) as usize;
        // Messages stop a minute before the end so the last ones meet the faults too.
        let mut workload = Workload::generate(&mut choices, chats, messages, active_ms - 60_000);
        let fault_count = choices.below(5) as usize;
        let kinds: Vec<&str> = FAULT_KINDS
            .iter()
            .copied()
            .filter(|kind| !POWER_LOSS_KINDS.contains(kind))
            .collect();
        let mut faults = FaultPlan::generate(&mut choices, &kinds, fault_count, active_ms);
        ask_for_a_recurring_task(seed, &mut workload);
        if profile == MountProfile::PowerLoss {
            let at_ms = choices.range_inclusive(0, active_ms - 1);
            let kind = POWER_LOSS_KINDS[choices.below(2) as usize];
            let power_loss = FaultPlan::single(kind, at_ms, &mut choices);
            faults
                .faults
                .extend(power_loss.into_iter().flat_map(|p| p.faults));
            faults.faults.sort_by_key(|f| f.at_ms);
        }
        let mut config = Self::new(seed, profile, workload, faults, active_ms);
        config.quiet_ms = settle_ms(&HostConfig::new(DATA_DIR), &config.timing);
        config
    }
}

/// How long after the faults stop the protocol may still owe work, and so the default
/// scenario's quiet period (15.4 simulated minutes at the protocol's defaults).
///
/// The longest chain of waits left when faults stop is a message whose every try fails on its
/// own (its script, not a fault — a provider fault armed during the run stays in the message):
/// it is tried `max_tries` times; each try takes a sweep to notice the container exited and
/// reset the claim, the backoff `backoff_base_ms · 2^tries` (PROTOCOL §8), another sweep to
/// find the row due and wake a container, a container start, and at most a turn's idle
/// timeout; then its last output waits for a slow delivery pass. The stale-heartbeat timer is
/// not on that chain: when faults stop, hung containers resume and killed ones are seen exited
/// by the next sweep. Generated cases (with questions, far-off tasks and thirty minutes of
/// quiet) and scenarios set their own.
pub fn settle_ms(host: &HostConfig, timing: &Timing) -> i64 {
    let runner = RunnerConfig::new(SessionPaths::default());
    let per_try =
        2 * host.sweep_interval_ms + timing.container_start_ms_max + runner.query_idle_timeout_ms;
    let backoffs: i64 = (1..host.max_tries)
        .map(|tries| host.backoff_base_ms << tries)
        .sum();
    host.max_tries * per_try + backoffs + host.delivery_slow_interval_ms
}

/// A mount profile in JSON: its name (`bind`, `virtiofs`, `power-loss`); for `#[serde(with)]`.
pub mod profile_by_name {
    use crate::fs::MountProfile;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(profile: &MountProfile, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(profile.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MountProfile, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A storage fault armed in SimFs: its kind, the SimFs counter of its firings, and that
/// counter's value when it was armed.
#[derive(Debug, Clone)]
pub struct ArmedStorageFault {
    pub kind: &'static str,
    pub fired_counter: &'static str,
    pub fired_before: u64,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub seed: u64,
    pub profile: String,
    pub trace: Trace,
    pub trace_hash: u64,
    pub ledger: Ledger,
    /// Faults that struck, by kind.
    pub fault_counts: BTreeMap<String, u64>,
    /// Steps by actor and SimFs counters (`fs.*`).
    pub counters: BTreeMap<String, u64>,
    pub steps: u64,
    /// Simulated time the run covered, ms.
    pub sim_ms: i64,
    /// Problems of the world itself (setup failed, step bound hit); empty for a sound run.
    pub errors: Vec<String>,
    /// The host's settings the world ran with.
    #[serde(skip, default = "sim_host_config")]
    pub host_config: HostConfig,
    /// The world's timings.
    pub timing: Timing,
}

impl RunOutcome {
    /// The run as the checkers read it.
    pub fn record(&self) -> RunRecord<'_> {
        let runner = RunnerConfig::new(SessionPaths::new("/"));
        RunRecord {
            events: self.trace.events(),
            ledger: &self.ledger,
            sim_ms: self.sim_ms,
            errors: &self.errors,
            host: self.host_config.clone(),
            bounds: Bounds {
                poll_interval_idle_ms: runner.poll_interval_idle_ms,
                query_idle_timeout_ms: runner.query_idle_timeout_ms,
                container_start_ms_max: self.timing.container_start_ms_max,
                channel_latency_ms_max: self.timing.channel.latency_ms_max,
            },
        }
    }
}

/// The host's settings in a simulated world: the protocol's defaults, with the world's admin.
pub fn sim_host_config() -> HostConfig {
    let mut host_config = HostConfig::new(DATA_DIR);
    host_config
        .agent_env
        .insert("CLAWSIM_ADMIN_USER_ID".into(), ADMIN_USER_ID.into());
    host_config
}

/// Runs one world to its end and returns its trace and ledger.
pub fn run_world(config: WorldConfig) -> RunOutcome {
    let mut world = World::new(config);
    world.run();
    world.finish()
}

/// What the scheduler runs.
#[derive(Debug)]
pub(crate) enum Event {
    /// A user sends workload message `index` (or the platform offers it again).
    Arrival { index: usize },
    /// A user answers a question card.
    Answer {
        question_id: String,
        option: String,
        attempt: u32,
    },
    /// One of the host's timers fires. A timer belongs to one host incarnation and dies with
    /// it; a `once` tick (a duplicate wake-up) does not re-arm.
    Tick {
        timer: Timer,
        incarnation: u64,
        once: bool,
    },
    /// A channel send completes.
    SendDone {
        pass_id: u64,
        incarnation: u64,
        delivery: OutboundDelivery,
        outcome: Result<(), SendError>,
    },
    /// A requested container comes up (or fails to).
    ContainerUp {
        spec: ContainerSpec,
        generation: u64,
        fails: bool,
    },
    /// An agent-runner's poll wakes; a duplicate wake steps without rescheduling.
    RunnerWake {
        session_id: String,
        generation: u64,
        token: u64,
        duplicate: bool,
    },
    /// A hung container resumes.
    HangEnd { session_id: String, generation: u64 },
    /// The host process starts again after a crash.
    HostRestart,
    /// Fault `index` of the plan strikes.
    Fault { index: usize },
    /// Faults stop; everything is let run.
    QuietStart,
    /// The run ends.
    End,
}

/// The host's periodic loops (PROTOCOL §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Delivery pass over sessions whose container runs.
    DeliveryFast,
    /// Delivery pass over every active session.
    DeliverySlow,
    Sweep,
}

/// An agent-runner process inside a running container.
pub(crate) struct ContainerProcess {
    pub generation: u64,
    pub spec: ContainerSpec,
    pub env: Rc<SimEnv>,
    /// `None` until `AgentRunner::start` succeeds (the process retries it).
    pub runner: Option<AgentRunner>,
    /// The wake-up that is the runner's own; other (stale) wake-ups are ignored.
    pub wake_token: u64,
    pub hung_until_ms: Option<i64>,
    /// The runner's idle poll interval: after a failed poll it tries again this much later,
    /// as the live binary does.
    pub poll_interval_idle_ms: i64,
}

/// A delivery pass between its steps.
pub(crate) struct ActivePass {
    pub session_id: String,
    pub pass: DeliveryPass,
    pub fast: bool,
}

/// A container start the next start request meets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StartFault {
    Slow { extra_ms: i64 },
    Fails,
}

/// The whole simulated world of one run.
pub(crate) struct World {
    pub config: WorldConfig,
    pub fs: SimFs,
    pub clock: SimClock,
    pub rng: SimRng,
    pub choices: Box<dyn ChoiceSource>,
    pub queue: Scheduler<Event>,
    pub trace: Trace,
    pub ledger: Ledger,
    pub fault_counts: BTreeMap<String, u64>,
    pub counters: BTreeMap<String, u64>,
    /// Steps so far by actor (the `steps.*` counters at the end).
    pub steps_by_actor: BTreeMap<Actor, u64>,
    /// What the provider boundary saw during the current runner step.
    pub provider_log: crate::provider::ProviderLog,
    pub errors: Vec<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub quiet: bool,
    pub host_config: HostConfig,
    pub host_env: Rc<SimEnv>,
    pub host: Option<Host>,
    /// Bumped at every host start; events of an older host are stale.
    pub host_incarnation: u64,
    /// A crash happened since the last restart, so the restart checks every DB's integrity.
    pub crashed_since_restart: bool,
    pub table: Rc<RefCell<ContainerTable>>,
    pub containers: BTreeMap<String, ContainerProcess>,
    pub passes: BTreeMap<u64, ActivePass>,
    pub next_pass_id: u64,
    pub next_wake_token: u64,
    pub channel: SimChannel,
    pub start_faults: Vec<StartFault>,
    /// Mock scripts armed by provider faults (with their kind), for the next workload message.
    pub armed_scripts: Vec<(&'static str, String)>,
    /// The downtime of a power cut armed in SimFs and not fired yet.
    pub armed_power_cut: Option<i64>,
    /// Storage faults armed in SimFs and not yet seen firing, in the order armed.
    pub armed_storage: Vec<ArmedStorageFault>,
    /// The trace step the current dispatch started at, and the last step of either side's
    /// actors recorded since: the step a fault that fires now struck in.
    pub dispatch_first_step: u64,
    pub last_side_step: Option<u64>,
    /// Power cuts SimFs has reported firing so far.
    pub power_cuts_seen: u64,
    /// Session folders whose outbound.db has been declared the container side's.
    pub declared_writers: BTreeSet<PathBuf>,
    /// Workload messages offered while the host was down, offered again when it is back.
    pub backlog: Vec<usize>,
}

/// When the world of `seed` starts: a day of the year after [`EPOCH_MS`], drawn from the seed,
/// so cron expressions meet every hour, weekday and month boundary.
pub fn start_ms(seed: u64) -> i64 {
    EPOCH_MS + SimRng::new(seed).fork("epoch").below(365 * 86_400) as i64 * 1_000
}

/// In a third of the default scenarios one message asks the agent for a task recurring every
/// five minutes, first due two minutes later, so the series property (§9.7) is checked in the
/// main run: occurrences keep firing through faults and the quiet period. Drawn from its own
/// fork of the seed, so every other draw of the scenario stays as it was.
fn ask_for_a_recurring_task(seed: u64, workload: &mut Workload) {
    let mut choices = SeededChoices::new(SimRng::new(seed).fork("recurring"));
    if workload.messages.is_empty() || !choices.chance(1.0 / 3.0) {
        return;
    }
    let index = choices.below(workload.messages.len() as u64) as usize;
    let message = &mut workload.messages[index];
    let first_ms = start_ms(seed) + message.at_ms + 2 * 60_000;
    let first = clawsim_core::time::format_instant(first_ms);
    message.text = format!(
        "m{index} repeat @mock tool schedule_task {{\"prompt\":\"k{index} tick\",\
         \"processAfter\":\"{first}\",\"recurrence\":\"*/5 * * * *\"}}"
    );
}

impl World {
    fn new(config: WorldConfig) -> Self {
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
        let host_config = sim_host_config();
        let host_env = Rc::new(SimEnv::new(
            Side::Host,
            fs.clone(),
            clock.clone(),
            rng.fork("host"),
        ));
        let end_ms = start_ms + config.active_ms + config.quiet_ms;
        Self {
            trace: Trace::new(config.trace_mode),
            channel: SimChannel::new(config.timing.channel),
            config,
            fs,
            clock,
            rng,
            choices,
            queue: Scheduler::new(),
            ledger: Ledger::default(),
            fault_counts: BTreeMap::new(),
            counters: BTreeMap::new(),
            steps_by_actor: BTreeMap::new(),
            provider_log: Default::default(),
            errors: Vec::new(),
            start_ms,
            end_ms,
            quiet: false,
            host_config,
            host_env,
            host: None,
            host_incarnation: 0,
            crashed_since_restart: false,
            table: Rc::new(RefCell::new(ContainerTable::default())),
            containers: BTreeMap::new(),
            passes: BTreeMap::new(),
            next_pass_id: 0,
            next_wake_token: 0,
            start_faults: Vec::new(),
            armed_scripts: Vec::new(),
            armed_power_cut: None,
            armed_storage: Vec::new(),
            dispatch_first_step: 0,
            last_side_step: None,
            power_cuts_seen: 0,
            declared_writers: BTreeSet::new(),
            backlog: Vec::new(),
        }
    }

    /// Now, true time, ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Schedules `event` at true time `at_ms`.
    pub fn schedule(&mut self, at_ms: i64, event: Event) {
        self.queue.schedule(at_ms, event, self.choices.as_mut());
    }

    /// Schedules `event` `delay_ms` from now.
    pub fn schedule_in(&mut self, delay_ms: i64, event: Event) {
        let at_ms = self.now_ms() + delay_ms.max(0);
        self.schedule(at_ms, event);
    }

    /// Records one typed event in the trace and counts it for its actor.
    pub fn record(&mut self, actor: Actor, session: Option<&str>, event: TypedEvent) {
        *self.steps_by_actor.entry(actor).or_default() += 1;
        if actor.side().is_some() {
            self.last_side_step = Some(self.trace.steps());
        }
        let now = self.now_ms();
        self.trace.record(now, actor, session, event);
    }

    /// Charges the I/O delays a step accumulated on SimFs (a slow disk) to true time.
    pub fn charge_io_delay(&mut self) {
        let delay_ms =
            self.fs.take_io_delay_ms(Side::Host) + self.fs.take_io_delay_ms(Side::Container);
        self.clock.advance_by_us(delay_ms * 1_000);
    }

    /// A new Env for the container process of `session_id`, generation `generation`, with
    /// its own VFS and random stream.
    pub fn container_env(&self, session_id: &str, generation: u64) -> Rc<SimEnv> {
        Rc::new(SimEnv::for_process(
            Side::Container,
            &container_process(session_id),
            self.fs.clone(),
            self.clock.clone(),
            self.rng
                .fork(&format!("container:{session_id}:{generation}")),
        ))
    }

    /// The host's runtime handle on the shared container table.
    pub fn runtime_handle(&self) -> Box<SimRuntime> {
        Box::new(SimRuntime::new(self.table.clone()))
    }

    fn run(&mut self) {
        if let Err(error) = self.setup() {
            self.errors.push(format!("setup failed: {error}"));
            return;
        }
        // Events run at one instant in a row: a livelock (actors waking each other without time
        // moving) is reported instead of spinning to the step bound.
        let (mut instant_ms, mut events_at_instant) = (i64::MIN, 0u64);
        while let Some((at_ms, event)) = self.queue.pop() {
            if at_ms > self.end_ms || matches!(event, Event::End) {
                break;
            }
            if self.trace.steps() >= self.config.max_steps {
                self.errors
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
                self.errors.push(what);
                break;
            }
            self.dispatch_first_step = self.trace.steps();
            self.dispatch(event);
            self.charge_io_delay();
            self.check_power_cut();
            self.check_armed_storage();
        }
    }

    /// Opens the host, wires the workload's chats and starts every timer.
    fn setup(&mut self) -> clawsim_core::Result<()> {
        let mut host = Host::open(
            self.host_env.clone(),
            self.host_config.clone(),
            self.runtime_handle(),
        )?;
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
        self.host = Some(host);
        self.host_incarnation = 1;
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
            self.ledger.sent.push(SentMessage {
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

    /// Starts the host's timers, as a freshly started host process does.
    pub fn schedule_timers(&mut self) {
        for timer in [Timer::DeliveryFast, Timer::DeliverySlow, Timer::Sweep] {
            let event = Event::Tick {
                timer,
                incarnation: self.host_incarnation,
                once: false,
            };
            self.schedule_in(self.interval_ms(timer), event);
        }
    }

    /// The period of one of the host's timers.
    pub fn interval_ms(&self, timer: Timer) -> i64 {
        match timer {
            Timer::DeliveryFast => self.host_config.delivery_fast_interval_ms,
            Timer::DeliverySlow => self.host_config.delivery_slow_interval_ms,
            Timer::Sweep => self.host_config.sweep_interval_ms,
        }
    }

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
            } => self.tick(timer, incarnation, once),
            Event::SendDone {
                pass_id,
                incarnation,
                delivery,
                outcome,
            } => self.send_done(pass_id, incarnation, delivery, outcome),
            Event::ContainerUp {
                spec,
                generation,
                fails,
            } => self.container_up(spec, generation, fails),
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
            Event::HostRestart => self.host_restart(),
            Event::Fault { index } => self.strike(index),
            Event::QuietStart => self.quiet_start(),
            Event::End => {}
        }
    }

    /// `PRAGMA integrity_check` of every DB file under the data folder, as its next writer
    /// would find it (see [`integrity_of_copy`]).
    pub fn integrity_of_all(&self) -> Vec<IntegrityRecord> {
        let now = self.now_ms();
        db_files(self.host_env.as_ref(), Path::new(DATA_DIR))
            .into_iter()
            .map(|file| IntegrityRecord {
                at_ms: now,
                result: integrity_of_copy(&self.fs, &file),
                file: file.display().to_string(),
            })
            .collect()
    }

    fn finish(mut self) -> RunOutcome {
        self.ledger.final_state = self.final_state();
        // Processes go before the files they hold open.
        self.host = None;
        self.passes.clear();
        self.containers.clear();
        for (actor, steps) in std::mem::take(&mut self.steps_by_actor) {
            self.counters
                .insert(format!("steps.{}", actor.name()), steps);
        }
        for (name, value) in self.fs.counters() {
            self.counters.insert(format!("fs.{name}"), value);
        }
        let sim_ms = self.now_ms() - self.start_ms;
        RunOutcome {
            host_config: self.host_config.clone(),
            timing: self.config.timing,
            seed: self.config.seed,
            profile: self.config.profile.name().to_string(),
            trace_hash: self.trace.hash(),
            steps: self.trace.steps(),
            trace: self.trace,
            ledger: self.ledger,
            fault_counts: self.fault_counts,
            counters: self.counters,
            sim_ms,
            errors: self.errors,
        }
    }

    /// Both DBs of every session folder, found by walking the data folder (not by asking the
    /// host), plus every file's integrity and SimFs's single-writer record.
    fn final_state(&self) -> FinalState {
        let env = self.host_env.as_ref();
        let sessions = session_dirs(env)
            .into_iter()
            .map(|(agent_group_id, session_id, dir)| {
                let paths = SessionPaths::new(dir.clone());
                let (snapshot, error) = match snapshot_session(env, &paths) {
                    Ok(snapshot) => (Some(snapshot), None),
                    Err(error) => (None, Some(error.to_string())),
                };
                FinalSession {
                    session_id,
                    agent_group_id,
                    dir: dir.display().to_string(),
                    snapshot,
                    error,
                }
            })
            .collect();
        FinalState {
            at_ms: self.now_ms(),
            host_now_ms: env.now_ms(),
            sessions,
            integrity: self.integrity_of_all(),
            single_writer_violations: self.fs.violations(),
            maybe_durable: self
                .fs
                .maybe_durable()
                .into_iter()
                .map(|m| MaybeDurableRecord {
                    side: m.side.name().to_string(),
                    path: m.path.display().to_string(),
                    file: m.file.display().to_string(),
                    at_ms: m.at_ms,
                    cause: format!("{:?}", m.cause),
                })
                .collect(),
        }
    }
}

/// The name SimFs knows a session's container process by.
pub(crate) fn container_process(session_id: &str) -> String {
    format!("agent-{session_id}")
}

/// `(agent group, session id, folder)` of every session folder under the data folder.
fn session_dirs(env: &dyn Env) -> Vec<(String, String, PathBuf)> {
    let sessions_dir = Path::new(DATA_DIR).join("sessions");
    let list = |dir: &Path| env.list_dir(dir).unwrap_or_default();
    list(&sessions_dir)
        .into_iter()
        .flat_map(|group| {
            let group_dir = sessions_dir.join(&group);
            list(&group_dir)
                .into_iter()
                .map(move |session| {
                    let dir = group_dir.join(&session);
                    (group.clone(), session, dir)
                })
                .collect::<Vec<_>>()
        })
        .filter(|(_, _, dir)| env.exists(&dir.join("inbound.db")))
        .collect()
}

/// Every `*.db` file under `dir`, depth first, in name order.
fn db_files(env: &dyn Env, dir: &Path) -> Vec<PathBuf> {
    let Ok(names) = env.list_dir(dir) else {
        return Vec::new();
    };
    names
        .into_iter()
        .flat_map(|name| {
            let path = dir.join(&name);
            if name.ends_with(".db") {
                vec![path]
            } else {
                db_files(env, &path)
            }
        })
        .collect()
}

/// An empty SimFs with the same sector size as `fs`: SQLite sizes journal headers by the sector
/// size, so a hot journal is only read back as written on a disk with the same sectors.
fn scratch_like(fs: &SimFs) -> SimFs {
    // The sector size is drawn from the seed; a few seeds cover every size SimFs uses.
    (0..64)
        .map(|seed| SimFs::new(MountProfile::Bind, seed))
        .find(|scratch| scratch.sector_size() == fs.sector_size())
        .unwrap_or_else(|| SimFs::new(MountProfile::Bind, 0))
}

/// `PRAGMA integrity_check` of `file` as its next writer will find it: the file and its
/// journal (if one survived) are copied into a scratch SimFs, opened read-write there, so a hot
/// journal is rolled back as the writer would, and checked. Checking a copy leaves the world
/// untouched: no handle, lock, counter or armed fault of its SimFs is used.
fn integrity_of_copy(fs: &SimFs, file: &Path) -> Vec<String> {
    use rusqlite::{Connection, OpenFlags};
    let Some(image) = fs.visible_image(Side::Host, file) else {
        return vec![format!("error: {} has vanished", file.display())];
    };
    let journal = PathBuf::from(format!("{}-journal", file.display()));
    let scratch = scratch_like(fs);
    let copy = Path::new("/check.db");
    let copied = scratch.write_file(Side::Host, copy, &image).and_then(|()| {
        match fs.visible_image(Side::Host, &journal) {
            Some(journal) => {
                scratch.write_file(Side::Host, Path::new("/check.db-journal"), &journal)
            }
            None => Ok(()),
        }
    });
    if let Err(error) = copied {
        return vec![format!("error: copying {}: {error}", file.display())];
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let vfs = scratch.vfs_name(Side::Host);
    let rows = Connection::open_with_flags_and_vfs(copy, flags, vfs.as_str()).and_then(|conn| {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    });
    rows.unwrap_or_else(|error| vec![format!("error: {error}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_quiet_period_outlasts_a_message_failing_every_try() {
        let host = HostConfig::new(DATA_DIR);
        let timing = Timing::default();
        // Five tries of (two sweeps 120 s + start 3 s + idle end 20 s), backoffs 10+20+40+80 s,
        // and a slow delivery pass of 60 s.
        assert_eq!(settle_ms(&host, &timing), 5 * 143_000 + 150_000 + 60_000);
        let config = WorldConfig::default_scenario(7, MountProfile::Bind);
        assert_eq!(config.quiet_ms, settle_ms(&host, &timing));
        let mut patient = host.clone();
        patient.max_tries += 1;
        assert!(settle_ms(&patient, &timing) > config.quiet_ms);
    }

    #[test]
    fn some_default_scenarios_ask_for_a_recurring_task_due_after_its_message() {
        let mut asking = 0;
        for seed in 0..60 {
            let config = WorldConfig::default_scenario(seed, MountProfile::Bind);
            let start_ms = start_ms(seed);
            for message in &config.workload.messages {
                let Some(after) = message.text.split("\"processAfter\":\"").nth(1) else {
                    continue;
                };
                asking += 1;
                assert!(message.text.contains("\"recurrence\":\"*/5 * * * *\""));
                let first_ms = clawsim_core::time::parse_instant(&after[..24]).unwrap();
                assert_eq!(first_ms, start_ms + message.at_ms + 2 * 60_000);
            }
        }
        assert!((10..=30).contains(&asking), "{asking} of 60 seeds");
    }

    /// A hot journal of a database's first transaction (original size 0, no page records),
    /// as a power cut leaves it, written for a disk of `sector_size`-byte sectors.
    fn first_transaction_journal(sector_size: usize) -> Vec<u8> {
        let mut journal = vec![0u8; sector_size];
        journal[..8].copy_from_slice(&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
        journal[12..16].copy_from_slice(&0x976d_2da3u32.to_be_bytes()); // checksum nonce
        journal[20..24].copy_from_slice(&(sector_size as u32).to_be_bytes());
        journal[24..28].copy_from_slice(&4096u32.to_be_bytes()); // page size
        journal
    }

    #[test]
    fn integrity_is_checked_after_rolling_back_a_hot_journal_on_any_sector_size() {
        let sector_sizes: BTreeSet<usize> = (0..64)
            .map(|seed| SimFs::new(MountProfile::Bind, seed).sector_size())
            .collect();
        assert!(sector_sizes.len() > 1, "{sector_sizes:?}");
        for sector_size in sector_sizes {
            let fs = (0..64)
                .map(|seed| SimFs::new(MountProfile::Bind, seed))
                .find(|fs| fs.sector_size() == sector_size)
                .unwrap();
            let file = Path::new("/s/inbound.db");
            fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
            // The first page never reached the disk; the journal says the file was empty.
            fs.write_file(Side::Host, file, &[0u8; 4096]).unwrap();
            let journal = first_transaction_journal(sector_size);
            fs.write_file(Side::Host, Path::new("/s/inbound.db-journal"), &journal)
                .unwrap();
            assert_eq!(
                integrity_of_copy(&fs, file),
                ["ok"],
                "sector size {sector_size}"
            );
            // Checking a copy leaves the world's files as they were.
            assert!(fs.exists(Side::Host, Path::new("/s/inbound.db-journal")));
        }
    }

    #[test]
    fn machine_crashes_belong_to_the_power_loss_profile() {
        let crashes = |config: &WorldConfig| {
            config
                .faults
                .faults
                .iter()
                .filter(|f| POWER_LOSS_KINDS.contains(&f.fault.kind()))
                .count()
        };
        for seed in 0..50 {
            let power_loss = WorldConfig::default_scenario(seed, MountProfile::PowerLoss);
            assert_eq!(crashes(&power_loss), 1, "seed {seed}");
            assert!(power_loss
                .faults
                .faults
                .windows(2)
                .all(|w| w[0].at_ms <= w[1].at_ms));
            for profile in [MountProfile::Bind, MountProfile::Virtiofs] {
                let config = WorldConfig::default_scenario(seed, profile);
                assert_eq!(crashes(&config), 0, "seed {seed} {profile}");
                // Apart from the crash, the scenario is the same whatever the profile.
                assert_eq!(config.workload, power_loss.workload);
            }
        }
    }
}
