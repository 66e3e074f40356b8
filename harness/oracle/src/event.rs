//! The typed record of a run: every fact a checker or a picture needs, as an event with fields.
//!
//! A world records these at its own vantage points — the users and the channel, the provider
//! boundary, the container runtime, the fault injector, and the driver around each core step
//! (what the step was given and what it returned) — never by the core reporting on itself. The
//! trace a person reads is each event's [`std::fmt::Display`]; the trace hash is over their JSON.
//! Checkers match on variants and fields, never on text: an error message inside an event is
//! data for a person, not something a verdict depends on.

use crate::fault::Fault;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Who took the step an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    /// The world itself: setup, host (re)starts, the quiet period.
    World,
    /// The host's router taking a user's message.
    Router,
    /// A user answering a question card.
    User,
    /// The 1 s delivery pass (sessions whose container runs).
    DeliveryFast,
    /// The 60 s delivery pass (every active session).
    DeliverySlow,
    /// The host recording a send's outcome.
    Delivery,
    /// The platform at the other end of the channel adapter.
    Channel,
    /// The host's sweep.
    Sweep,
    /// The container runtime.
    Runtime,
    /// An agent-runner's poll loop.
    Runner,
    /// The provider boundary inside an agent-runner.
    Provider,
    /// The fault injector.
    Faults,
    /// The test driving a real-Docker world.
    Test,
    /// The files as the VFS saw them: plain files a process read or wrote.
    Files,
}

impl Actor {
    /// The actor's name, as the trace and the step counters print it.
    pub fn name(self) -> &'static str {
        match self {
            Actor::World => "world",
            Actor::Router => "router",
            Actor::User => "user",
            Actor::DeliveryFast => "delivery-fast",
            Actor::DeliverySlow => "delivery-slow",
            Actor::Delivery => "delivery",
            Actor::Channel => "channel",
            Actor::Sweep => "sweep",
            Actor::Runtime => "runtime",
            Actor::Runner => "runner",
            Actor::Provider => "provider",
            Actor::Faults => "faults",
            Actor::Test => "test",
            Actor::Files => "files",
        }
    }

    /// The side of the mount the actor runs on, when it runs on one.
    pub fn side(self) -> Option<crate::fault::FaultSide> {
        use crate::fault::FaultSide;
        match self {
            Actor::Router
            | Actor::DeliveryFast
            | Actor::DeliverySlow
            | Actor::Delivery
            | Actor::Sweep => Some(FaultSide::Host),
            Actor::Runner | Actor::Provider => Some(FaultSide::Container),
            _ => None,
        }
    }
}

/// How a channel send ended, as the platform saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum SendResult {
    /// The platform got the message.
    Received,
    /// The platform refused it for now.
    Transient { error: String },
    /// The platform refused it for good.
    Permanent { error: String },
}

/// What a planned fault did when its time came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultEffect {
    /// It took effect now.
    Struck,
    /// It waits for its moment (a script for the next message, a power cut for a disk
    /// operation, an I/O error for the next operation that meets it).
    Armed,
    /// It found nothing to act on.
    Skipped,
}

/// What one sweep of one session returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepFacts {
    pub acks_synced: usize,
    pub woke: bool,
    pub presumed_dead: bool,
    pub retried: usize,
    pub failed: usize,
    pub output_sent: usize,
    pub recurrences: usize,
    pub stopped_idle: bool,
    pub outbound_unreadable: bool,
}

/// How long a prompt the record keeps: the start of a prompt is what a checker reads (the
/// mock's answer quotes its first 100 characters); 10 MB prompts must not bloat the record.
pub const PROMPT_CHARS_KEPT: usize = 1_000;

/// One fact of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum Event {
    // ---- the world ------------------------------------------------------------------------
    /// The world was built.
    Setup {
        seed: u64,
        profile: String,
        start: String,
        chats: usize,
        messages: usize,
        faults: usize,
        active_ms: i64,
        quiet_ms: i64,
    },
    /// A host process started; `incarnation` counts them from 1.
    HostStarted { incarnation: u64 },
    /// A host process could not open its files.
    HostStartFailed { error: String },
    /// Faults stopped; what is owed must now finish.
    QuietPeriod,

    // ---- users and the router -------------------------------------------------------------
    /// Workload message `index` waits: no host is up to take it.
    MessageWaits { index: usize },
    /// The host accepted workload message `index`.
    MessageRouted {
        index: usize,
        message_id: String,
        seq: i64,
    },
    /// The host refused workload message `index`; the platform offers it again later.
    MessageRefused { index: usize, error: String },
    /// A user's answer to a question reached the host as `message_id`.
    QuestionAnswered {
        question_id: String,
        message_id: String,
    },
    /// A user's answer was refused (the host was down or failed).
    AnswerRefused { question_id: String, error: String },

    // ---- delivery -------------------------------------------------------------------------
    /// The host could not list its sessions for a pass or a sweep.
    SessionsUnlisted { error: String },
    /// A pass found the session's delivery already running.
    PassBusy,
    /// A pass could not begin.
    PassBeginFailed { error: String },
    /// The pass handed row `row` to the channel; the send takes `latency_ms`.
    SendStarted {
        row: String,
        seq: Option<i64>,
        latency_ms: i64,
    },
    /// The pass had nothing more to do.
    PassDone,
    /// The pass ended on an error.
    PassFailed { error: String },
    /// The host heard a send's outcome but failed to record it.
    RecordFailed { row: String, error: String },

    // ---- the channel ----------------------------------------------------------------------
    /// A send of row `row` finished. `host_alive`: the host that started it still runs;
    /// `reached`: the platform got the request at all (it may not have, when the host died
    /// while it was in flight).
    SendFinished {
        row: String,
        result: SendResult,
        host_alive: bool,
        reached: bool,
    },

    // ---- the sweep ------------------------------------------------------------------------
    /// A sweep of one session returned.
    Swept { facts: SweepFacts },
    /// A sweep of one session failed.
    SweepFailed { error: String },

    // ---- the container runtime ------------------------------------------------------------
    /// The host asked for a container; it comes up after `latency_ms`.
    StartRequested { generation: u64, latency_ms: i64 },
    /// The container runs and its agent process starts.
    ContainerRunning,
    /// The container failed to start.
    ContainerStartFailed,
    /// The host killed the container.
    ContainerKilled,
    /// The host stopped the container (idle, or at its limit).
    ContainerStopped,
    /// The agent process exited on its own.
    ContainerExited { code: i32 },
    /// A hung container resumed.
    ContainerResumed,

    // ---- the agent-runner -----------------------------------------------------------------
    /// The agent process read settings it cannot run with.
    RunnerBadSettings { error: String },
    /// The agent-runner started.
    RunnerStarted,
    /// The agent-runner could not start; it retries.
    RunnerStartFailed { error: String },
    /// A poll asked the process to exit with `code`.
    RunnerExit { code: i32 },
    /// One poll iteration ran; the next is due in `next_in_ms` (the runner's clock).
    /// `duplicate`: an extra wake-up a fault caused.
    Polled { next_in_ms: i64, duplicate: bool },
    /// A poll iteration failed; the runner tries again.
    PollFailed { error: String, duplicate: bool },

    // ---- the provider boundary ------------------------------------------------------------
    /// The runner started a provider query: the first [`PROMPT_CHARS_KEPT`] characters of
    /// its prompt, the prompt's length in characters, and whether it resumed a session.
    TurnStarted {
        prompt: String,
        prompt_chars: usize,
        resumed: bool,
    },
    /// The runner pushed a follow-up into the running query.
    TurnPushed { text: String },
    /// The provider returned a result (`None`: the agent chose silence).
    ProviderResult { text: Option<String> },
    /// The provider returned an error.
    ProviderError { message: String, retryable: bool },
    /// The provider called a tool.
    ToolCalled { name: String, args: Value },
    /// The provider took its process down.
    ProviderExit { code: i32 },
    /// The runner ended the query.
    TurnEnded,
    /// The runner aborted the query.
    TurnAborted,

    // ---- faults ---------------------------------------------------------------------------
    /// Provider faults ride on workload message `index` as mock scripts.
    ScriptsAttached { index: usize, scripts: Vec<String> },
    /// A planned fault's time came.
    Fault { fault: Fault, effect: FaultEffect },
    /// An armed storage fault (fsync error, disk full, busy, slow disk) met its first disk
    /// operation. `struck_in`: the step (trace sequence number) whose operation it struck,
    /// `None` when no step of either side ran the operation.
    FaultFired {
        kind: String,
        struck_in: Option<u64>,
    },
    /// An armed power cut fired in the middle of a disk operation of step `struck_in`: the
    /// machine and every process on it went down.
    PowerCutFired { struck_in: Option<u64> },

    // ---- the files ------------------------------------------------------------------------
    /// A process of `side` read the plain file (not a database) `path`. The event's session is
    /// the one the reading step served: the session a delivery pass delivered, the session
    /// whose container read.
    FileRead {
        side: crate::fault::FaultSide,
        path: String,
    },
    /// A process of `side` wrote the plain file `path` (the event's session as for a read).
    FileWritten {
        side: crate::fault::FaultSide,
        path: String,
    },
}

impl Event {
    /// True for the one fact that shows an agent-runner alive: it polled (and so touched its
    /// heartbeat) or started.
    pub fn shows_live_runner(&self) -> bool {
        matches!(self, Event::Polled { .. } | Event::RunnerStarted)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Setup {
                seed,
                profile,
                start,
                chats,
                messages,
                faults,
                active_ms,
                quiet_ms,
            } => write!(
                f,
                "setup: seed {seed} profile {profile} start {start} chats {chats} messages \
                 {messages} faults {faults} active {active_ms} ms quiet {quiet_ms} ms"
            ),
            Event::HostStarted { incarnation } => {
                write!(f, "host started (incarnation {incarnation})")
            }
            Event::HostStartFailed { error } => write!(f, "host failed to start: {error}"),
            Event::QuietPeriod => write!(f, "quiet period: faults off"),
            Event::MessageWaits { index } => write!(f, "m{index} waits: host down"),
            Event::MessageRouted {
                index,
                message_id,
                seq,
            } => write!(f, "m{index} routed as {message_id} seq {seq}"),
            Event::MessageRefused { index, error } => write!(f, "m{index} refused: {error}"),
            Event::QuestionAnswered {
                question_id,
                message_id,
            } => write!(f, "answered {question_id} as {message_id}"),
            Event::AnswerRefused { question_id, error } => {
                write!(f, "answer {question_id} refused: {error}")
            }
            Event::SessionsUnlisted { error } => write!(f, "cannot list sessions: {error}"),
            Event::PassBusy => write!(f, "pass busy"),
            Event::PassBeginFailed { error } => write!(f, "begin failed: {error}"),
            Event::SendStarted {
                row,
                seq,
                latency_ms,
            } => write!(f, "send {row} seq {} ({latency_ms} ms)", OrDash(*seq)),
            Event::PassDone => write!(f, "pass done"),
            Event::PassFailed { error } => write!(f, "pass failed: {error}"),
            Event::RecordFailed { row, error } => write!(f, "record of {row} failed: {error}"),
            Event::SendFinished {
                row,
                result,
                host_alive,
                reached,
            } => send_finished(f, row, result, *host_alive, *reached),
            Event::Swept { facts } => sweep_line(f, facts),
            Event::SweepFailed { error } => write!(f, "sweep failed: {error}"),
            Event::StartRequested {
                generation,
                latency_ms,
            } => write!(
                f,
                "start requested (generation {generation}, {latency_ms} ms)"
            ),
            Event::ContainerRunning => write!(f, "container running"),
            Event::ContainerStartFailed => write!(f, "container failed to start"),
            Event::ContainerKilled => write!(f, "container killed"),
            Event::ContainerStopped => write!(f, "container stopped"),
            Event::ContainerExited { code } => write!(f, "container exited ({code})"),
            Event::ContainerResumed => write!(f, "container resumed"),
            Event::RunnerBadSettings { error } => write!(f, "bad settings: {error}"),
            Event::RunnerStarted => write!(f, "agent-runner started"),
            Event::RunnerStartFailed { error } => write!(f, "start failed: {error}"),
            Event::RunnerExit { code } => write!(f, "exit {code}"),
            Event::Polled {
                next_in_ms,
                duplicate,
            } => write!(f, "{}poll, next in {next_in_ms} ms", dup(*duplicate)),
            Event::PollFailed { error, duplicate } => {
                write!(f, "{}poll failed: {error}", dup(*duplicate))
            }
            Event::TurnStarted {
                prompt,
                prompt_chars,
                resumed,
            } => {
                let resumed = if *resumed { ", resumed" } else { "" };
                write!(
                    f,
                    "turn started ({prompt_chars} chars{resumed}): {}",
                    Short(prompt)
                )
            }
            Event::TurnPushed { text } => write!(f, "follow-up pushed: {}", Short(text)),
            Event::ProviderResult { text: Some(text) } => write!(f, "result: {}", Short(text)),
            Event::ProviderResult { text: None } => write!(f, "empty result"),
            Event::ProviderError { message, retryable } => {
                let kind = if *retryable { "retryable" } else { "fatal" };
                write!(f, "{kind} error: {}", Short(message))
            }
            Event::ToolCalled { name, .. } => write!(f, "tool call {name}"),
            Event::ProviderExit { code } => write!(f, "provider exits the process ({code})"),
            Event::TurnEnded => write!(f, "turn ended"),
            Event::TurnAborted => write!(f, "turn aborted"),
            Event::ScriptsAttached { index, scripts } => {
                write!(f, "m{index} carries @mock {}", scripts.join("; "))
            }
            Event::Fault { fault, effect } => fault_line(f, fault, *effect),
            Event::FaultFired { kind, struck_in } => {
                write!(f, "{kind} struck{}", InStep(*struck_in))
            }
            Event::PowerCutFired { struck_in } => write!(
                f,
                "power cut in the middle of a disk operation{}",
                InStep(*struck_in)
            ),
            Event::FileRead { side, path } => write!(f, "{} read {path}", side_name(*side)),
            Event::FileWritten { side, path } => write!(f, "{} wrote {path}", side_name(*side)),
        }
    }
}

fn side_name(side: crate::fault::FaultSide) -> &'static str {
    match side {
        crate::fault::FaultSide::Host => "host",
        crate::fault::FaultSide::Container => "container",
    }
}

fn dup(duplicate: bool) -> &'static str {
    if duplicate {
        "duplicate wake: "
    } else {
        ""
    }
}

fn send_finished(
    f: &mut fmt::Formatter<'_>,
    row: &str,
    result: &SendResult,
    host_alive: bool,
    reached: bool,
) -> fmt::Result {
    if !host_alive {
        let reached = if reached {
            "the platform got it"
        } else {
            "it never left"
        };
        return write!(f, "send {row} finished after its host died ({reached})");
    }
    match result {
        SendResult::Received => write!(f, "sent {row}"),
        SendResult::Transient { error } => write!(f, "send {row} failed for now: {error}"),
        SendResult::Permanent { error } => write!(f, "send {row} refused for good: {error}"),
    }
}

fn sweep_line(f: &mut fmt::Formatter<'_>, facts: &SweepFacts) -> fmt::Result {
    let mut parts: Vec<String> = Vec::new();
    let mut count = |n: usize, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    count(facts.acks_synced, "acks synced");
    count(facts.retried, "retried");
    count(facts.failed, "failed");
    count(facts.output_sent, "already answered");
    count(facts.recurrences, "next occurrences");
    for (flag, what) in [
        (facts.woke, "woke a container"),
        (facts.presumed_dead, "presumed the container dead"),
        (facts.stopped_idle, "stopped an idle container"),
        (facts.outbound_unreadable, "outbound.db unreadable"),
    ] {
        if flag {
            parts.push(what.to_string());
        }
    }
    if parts.is_empty() {
        return write!(f, "swept: nothing to do");
    }
    write!(f, "swept: {}", parts.join(", "))
}

fn fault_line(f: &mut fmt::Formatter<'_>, fault: &Fault, effect: FaultEffect) -> fmt::Result {
    let json = serde_json::to_string(fault).unwrap_or_default();
    match effect {
        FaultEffect::Struck => write!(f, "{} struck {json}", fault.kind()),
        FaultEffect::Armed => write!(f, "{} armed {json}", fault.kind()),
        FaultEffect::Skipped => write!(f, "{} skipped (nothing to act on)", fault.kind()),
    }
}

/// ` in step N`, or nothing.
struct InStep(Option<u64>);

impl fmt::Display for InStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(step) => write!(f, " in step {step}"),
            None => Ok(()),
        }
    }
}

/// An optional number, or `-`.
struct OrDash(Option<i64>);

impl fmt::Display for OrDash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "-"),
        }
    }
}

/// The start of a long text, on one line, for the trace a person reads.
struct Short<'a>(&'a str);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN_CHARS: usize = 80;
        for (shown, c) in self.0.chars().enumerate() {
            if shown == SHOWN_CHARS {
                return write!(f, "…");
            }
            let c = if c.is_control() { ' ' } else { c };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The first `chars` characters of `text`.
pub fn prefix_chars(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_one_line_of_plain_words() {
        let routed = Event::MessageRouted {
            index: 3,
            message_id: "msg-1".into(),
            seq: 4,
        };
        assert_eq!(routed.to_string(), "m3 routed as msg-1 seq 4");
        let send = Event::SendStarted {
            row: "out-1".into(),
            seq: None,
            latency_ms: 12,
        };
        assert_eq!(send.to_string(), "send out-1 seq - (12 ms)");
        let swept = Event::Swept {
            facts: SweepFacts {
                presumed_dead: true,
                retried: 2,
                ..SweepFacts::default()
            },
        };
        assert_eq!(
            swept.to_string(),
            "swept: 2 retried, presumed the container dead"
        );
        let prompt = Event::TurnStarted {
            prompt: "a\nb".into(),
            prompt_chars: 3,
            resumed: false,
        };
        assert_eq!(prompt.to_string(), "turn started (3 chars): a b");
    }

    #[test]
    fn events_round_trip_through_json() {
        let events = [
            Event::QuietPeriod,
            Event::Fault {
                fault: Fault::HostCrash { down_ms: 5 },
                effect: FaultEffect::Struck,
            },
            Event::SendFinished {
                row: "r".into(),
                result: SendResult::Permanent { error: "no".into() },
                host_alive: true,
                reached: true,
            },
        ];
        for event in events {
            let json = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(back, event, "{json}");
        }
    }
}
