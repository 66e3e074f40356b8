//! The coverage catalog: named situations a run must reach, counted from the typed record.
//!
//! A property that never meets its situation proves nothing there ("0 violations" over a
//! workload that never sends a threaded follow-up says nothing about threads), so each seed
//! reports which situations of the [`CATALOG`] its record shows, the summary prints "reached in
//! N of M seeds" for each, and `clawsim run` warns about any it never reached. Each situation is
//! recognised from typed events, the ledger and the landings — never from log text.

use crate::landing::Landing;
use clawsim_oracle::event::{Event, SendResult};
use clawsim_sim::world::RunOutcome;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One situation of the catalog: its name and what shows it reached.
pub struct Situation {
    pub name: &'static str,
    pub what: &'static str,
}

const fn situation(name: &'static str, what: &'static str) -> Situation {
    Situation { name, what }
}

/// Every situation a run is expected to reach, in the order the summary prints them.
pub const CATALOG: &[Situation] = &[
    situation(
        "follow-up pushed mid-turn",
        "a pending message pushed into a running provider query",
    ),
    situation(
        "turn aborted for quiet",
        "the runner aborted a query that stayed silent",
    ),
    situation("provider error", "the provider returned an error"),
    situation("provider exit", "the provider took its agent process down"),
    situation(
        "empty result",
        "the provider chose silence (a result without text)",
    ),
    situation(
        "shared session with threads",
        "messages of two threads routed into one shared session",
    ),
    situation("question asked", "ask_user_question called"),
    situation("question answered", "a user's answer reached the host"),
    situation(
        "question answered late",
        "a user's answer reached the host after the question's timeout",
    ),
    situation(
        "question never answered",
        "a question asked whose answer never reached the host",
    ),
    situation("task scheduled", "schedule_task called"),
    situation(
        "series next occurrence",
        "a sweep scheduled a recurring task's next occurrence",
    ),
    situation("series cancelled", "cancel_task called"),
    situation("series paused", "pause_task called"),
    situation(
        "series cancelled while an occurrence runs",
        "cancel_task called in a turn whose input holds a scheduled task's occurrence",
    ),
    situation(
        "series paused while an occurrence runs",
        "pause_task called in a turn whose input holds a scheduled task's occurrence",
    ),
    situation("file sent", "send_file called"),
    situation(
        "hostile file name",
        "send_file called with a name holding '/' or '..'",
    ),
    situation("agent-to-agent", "send_to_agent called"),
    situation(
        "agent-to-agent answered back",
        "the other agent's answer to a relayed message reached the asking agent's provider",
    ),
    situation("edit or reaction", "edit_message or add_reaction called"),
    situation(
        "row refused for good",
        "the platform refused a row for good",
    ),
    situation("send failed for now", "the platform refused a row for now"),
    situation(
        "outbox removal failed",
        "the host could not remove a sent row's outbox folder and kept running",
    ),
    situation(
        "heartbeat touch failed",
        "an agent-runner could not touch its .heartbeat and kept running",
    ),
    situation(
        "provider silent past idle timeout",
        "the runner ended a turn whose provider stayed silent past the idle timeout",
    ),
    situation(
        "crash between send and record",
        "the host died after the platform accepted a send, before its delivered row",
    ),
    situation(
        "crash between answer and ack",
        "an agent-runner died after storing an answer, before acking its message",
    ),
    situation(
        "crash between action and record",
        "the host died inside the commit of a system action and its delivered row",
    ),
    situation(
        "crash between central row and folder",
        "the host died after a new session's central row, before its folder",
    ),
    situation(
        "resend after crash between send and record",
        "one row received twice across a host death",
    ),
    situation(
        "container stopped for idleness",
        "a sweep stopped an idle container",
    ),
    situation(
        "container presumed dead",
        "a sweep presumed a silent container dead",
    ),
    situation(
        "stale claim retried",
        "a dead container's claim put back with a backoff",
    ),
    situation(
        "message failed its last try",
        "a sweep failed a message out of tries",
    ),
    situation(
        "output-sent protection",
        "a dead container's claim completed because its answer was out",
    ),
    situation(
        "command denied to a non-admin",
        "a `Permission denied: …` reply reached the channel",
    ),
    situation("host restarted", "a second host incarnation started"),
    situation(
        "power cut mid-operation",
        "an armed power cut fired inside a disk operation",
    ),
    situation(
        "host crash mid-send",
        "a host crash while a channel send was in flight",
    ),
    situation(
        "kill in a turn",
        "a container killed while its runner was in a turn",
    ),
    situation(
        "kill between polls",
        "a container killed while its runner was idle",
    ),
    situation(
        "kill while starting",
        "a container killed while it was coming up",
    ),
    situation(
        "power cut in delivery",
        "a power cut inside a delivery step",
    ),
    situation(
        "power cut in a runner step",
        "a power cut inside an agent-runner step",
    ),
    situation(
        "io error in delivery",
        "an fsync error, full disk or busy lock inside a delivery step",
    ),
    situation(
        "io error in a runner step",
        "an fsync error, full disk or busy lock inside a runner step",
    ),
    situation(
        "io error in the sweep",
        "an fsync error, full disk or busy lock inside a sweep",
    ),
    situation(
        "io error in the router",
        "an fsync error, full disk or busy lock while routing",
    ),
];

/// The names of the catalog's situations `outcome` reached.
pub fn reached(outcome: &RunOutcome, landings: &[Landing]) -> Vec<String> {
    let mut found = BTreeSet::new();
    for recorded in outcome.trace.events() {
        event_situations(&recorded.event, &mut found);
    }
    turn_situations(outcome, &mut found);
    ledger_situations(outcome, &mut found);
    landing_situations(landings, &mut found);
    question_situations(outcome, &mut found);
    CATALOG
        .iter()
        .filter(|s| found.contains(s.name))
        .map(|s| s.name.to_string())
        .collect()
}

fn event_situations(event: &Event, found: &mut BTreeSet<&'static str>) {
    let name = match event {
        Event::TurnPushed { .. } => "follow-up pushed mid-turn",
        Event::TurnAborted => "turn aborted for quiet",
        Event::ProviderError { .. } => "provider error",
        Event::ProviderExit { .. } => "provider exit",
        Event::ProviderResult { text: None } => "empty result",
        Event::ToolCalled { name, args } => match tool_situation(name, args) {
            Some(name) => name,
            None => return,
        },
        Event::SendFinished {
            result: SendResult::Permanent { .. },
            host_alive: true,
            ..
        } => "row refused for good",
        Event::SendFinished {
            result: SendResult::Transient { .. },
            host_alive: true,
            ..
        } => "send failed for now",
        Event::Swept { facts } => {
            for (flag, name) in [
                (facts.stopped_idle, "container stopped for idleness"),
                (facts.presumed_dead, "container presumed dead"),
                (facts.retried > 0, "stale claim retried"),
                (facts.failed > 0, "message failed its last try"),
                (facts.output_sent > 0, "output-sent protection"),
                (facts.recurrences > 0, "series next occurrence"),
            ] {
                if flag {
                    found.insert(name);
                }
            }
            return;
        }
        Event::HostStarted { incarnation } if *incarnation > 1 => "host restarted",
        Event::FaultFired { kind, .. } => match targeted_situation(kind) {
            Some(name) => name,
            None => return,
        },
        Event::PowerCutFired { .. } => "power cut mid-operation",
        _ => return,
    };
    found.insert(name);
}

/// The situation a targeted fault of `kind` reaches when it fires.
fn targeted_situation(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "channel-refuses-row" => "row refused for good",
        "outbox-removal-fails" => "outbox removal failed",
        "heartbeat-touch-fails" => "heartbeat touch failed",
        "provider-silent-past-idle" => "provider silent past idle timeout",
        "crash-between-send-and-record" => "crash between send and record",
        "crash-between-answer-and-ack" => "crash between answer and ack",
        "crash-between-action-and-record" => "crash between action and record",
        "crash-between-central-row-and-folder" => "crash between central row and folder",
        _ => return None,
    })
}

/// What a provider input holds, for the situations judged per turn.
const OCCURRENCE_MARK: &str = "[SCHEDULED TASK]";

/// The answer back the generators' relayed messages ask for (`say a<n> back`), carrying a
/// script that makes the asking agent choose silence.
const ANSWER_BACK_MARK: &str = " back @mock reply 0";

/// Situations judged over a session's turns: a series stopped from a turn that holds one of
/// its occurrences, a question answered after its timeout, an agent's answer coming back.
fn turn_situations(outcome: &RunOutcome, found: &mut BTreeSet<&'static str>) {
    let mut occurrence_in_turn: BTreeMap<&str, bool> = BTreeMap::new();
    let mut questions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for recorded in outcome.trace.events() {
        let Some(session) = recorded.session.as_deref() else {
            continue;
        };
        let input = match &recorded.event {
            Event::TurnStarted { prompt, .. } => {
                occurrence_in_turn.insert(session, false);
                Some(prompt)
            }
            Event::TurnPushed { text } => Some(text),
            _ => None,
        };
        if let Some(input) = input {
            if input.contains(OCCURRENCE_MARK) {
                occurrence_in_turn.insert(session, true);
            }
            if input.contains(ANSWER_BACK_MARK) {
                found.insert("agent-to-agent answered back");
            }
        }
        match &recorded.event {
            Event::ToolCalled { name, args } => {
                let in_occurrence = occurrence_in_turn.get(session).copied().unwrap_or(false);
                match name.as_str() {
                    "cancel_task" if in_occurrence => {
                        found.insert("series cancelled while an occurrence runs");
                    }
                    "pause_task" if in_occurrence => {
                        found.insert("series paused while an occurrence runs");
                    }
                    "ask_user_question" => {
                        let timeout_s =
                            args.get("timeout").and_then(Value::as_f64).unwrap_or(300.0);
                        let due_ms = recorded.at_ms + (timeout_s * 1_000.0) as i64;
                        questions.entry(session).or_default().push(due_ms);
                    }
                    _ => {}
                }
            }
            Event::QuestionAnswered { .. } => {
                let asked = questions.entry(session).or_default();
                if !asked.is_empty() && asked.remove(0) < recorded.at_ms {
                    found.insert("question answered late");
                }
            }
            Event::TurnEnded | Event::TurnAborted => {
                occurrence_in_turn.insert(session, false);
            }
            _ => {}
        }
    }
}

fn tool_situation(name: &str, args: &Value) -> Option<&'static str> {
    Some(match name {
        "ask_user_question" => "question asked",
        "schedule_task" => "task scheduled",
        "cancel_task" => "series cancelled",
        "pause_task" => "series paused",
        "send_to_agent" => "agent-to-agent",
        "edit_message" | "add_reaction" => "edit or reaction",
        "send_file" => {
            let filename = args.get("filename").and_then(Value::as_str).unwrap_or("");
            if filename.contains('/') || filename.contains("..") {
                "hostile file name"
            } else {
                "file sent"
            }
        }
        _ => return None,
    })
}

fn ledger_situations(outcome: &RunOutcome, found: &mut BTreeSet<&'static str>) {
    let ledger = &outcome.ledger;
    let mut receipts: BTreeMap<&str, u32> = BTreeMap::new();
    for send in ledger.received() {
        *receipts.entry(&send.message_out_id).or_default() += 1;
        let text = send
            .content
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("");
        if text.starts_with("Permission denied:") {
            found.insert("command denied to a non-admin");
        }
    }
    if receipts.values().any(|n| *n > 1) {
        found.insert("resend after crash between send and record");
    }
    let mut threads_by_session: BTreeMap<&str, BTreeSet<Option<&str>>> = BTreeMap::new();
    for sent in &ledger.sent {
        if let (Some(session), true) = (&sent.session_id, chat_is_shared(outcome, sent.chat)) {
            threads_by_session
                .entry(session)
                .or_default()
                .insert(sent.thread_id.as_deref());
        }
    }
    if threads_by_session.values().any(|t| t.len() > 1) {
        found.insert("shared session with threads");
    }
}

/// True when chat `chat` of the run's workload keeps one session for all its threads. The
/// ledger does not say, so the routing it shows decides: a chat whose messages of different
/// threads landed in one session is shared.
fn chat_is_shared(outcome: &RunOutcome, chat: usize) -> bool {
    let sessions: BTreeSet<&str> = outcome
        .ledger
        .sent
        .iter()
        .filter(|s| s.chat == chat)
        .filter_map(|s| s.session_id.as_deref())
        .collect();
    sessions.len() == 1
}

fn question_situations(outcome: &RunOutcome, found: &mut BTreeSet<&'static str>) {
    let asked = outcome
        .ledger
        .received()
        .filter(|s| s.content.get("type").and_then(Value::as_str) == Some("ask_question"))
        .filter_map(|s| s.content.get("questionId").and_then(Value::as_str))
        .collect::<BTreeSet<_>>();
    let answered: BTreeSet<&str> = outcome
        .ledger
        .answers
        .iter()
        .filter(|a| a.message_id.is_some())
        .map(|a| a.question_id.as_str())
        .collect();
    if !answered.is_empty() {
        found.insert("question answered");
    }
    if asked.iter().any(|q| !answered.contains(q)) {
        found.insert("question never answered");
    }
}

fn landing_situations(landings: &[Landing], found: &mut BTreeSet<&'static str>) {
    for landing in landings {
        // The "io error in …" situations are those of the storage faults the catalog names
        // (fsync error, full disk, busy lock); a targeted failure has a situation of its own.
        let storage = matches!(
            landing.fault.as_str(),
            "fsync-error" | "disk-full" | "sqlite-busy"
        );
        let name = match (
            landing.class.as_str(),
            landing.fault.as_str(),
            landing.step.as_str(),
        ) {
            ("crash", "host-crash" | "host-crash-mid-send" | "machine-crash", "delivery-send") => {
                "host crash mid-send"
            }
            ("crash", "container-killed" | "machine-crash", "runner-turn") => "kill in a turn",
            ("crash", "container-killed" | "machine-crash", "runner-idle") => "kill between polls",
            (
                "crash",
                "container-killed" | "container-killed-starting" | "machine-crash",
                "container-start",
            ) => "kill while starting",
            ("crash", "power-cut", "delivery") => "power cut in delivery",
            ("crash", "power-cut", "runner-turn" | "runner-idle") => "power cut in a runner step",
            ("io-error", _, "delivery") if storage => "io error in delivery",
            ("io-error", _, "runner-turn" | "runner-idle") if storage => {
                "io error in a runner step"
            }
            ("io-error", _, "sweep") if storage => "io error in the sweep",
            ("io-error", _, "router") if storage => "io error in the router",
            _ => continue,
        };
        found.insert(name);
    }
}
