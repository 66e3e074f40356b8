//! The evidence of one run, indexed once for every checker: sessions by id, channel receipts
//! by row, workload tokens, faults, and the facts only the typed events hold (sends that
//! finished after their host died, sweeps that presumed a container dead, the agent-runner's
//! polls). Events are matched by variant and field, never by their text.
//!
//! Messages are recognised by their token, the first word of each workload text (`m7`): the
//! mock provider's default answer quotes the first 100 characters of its prompt, so an answer
//! is attributed to a message by its text, not by the core's `in_reply_to`.

use super::RunRecord;
use crate::event::{Event, FaultEffect};
use crate::fault::{Fault, FaultSide};
use crate::ledger::{
    ChannelSend, FaultRecord, Ledger, MaybeDurableRecord, SendOutcome, SentMessage,
};
use crate::time::{is_due, parse_instant};
use crate::trace::TraceEvent;
use clawsim_core::config::HostConfig;
use clawsim_core::inspect::SessionSnapshot;
use clawsim_core::model::{kind, parse_content, text_of, OutboundRow, Route, AGENT_CHANNEL};
use clawsim_core::runner::mock::{Directive, MockScript};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The prefix of the mock provider's default answer.
pub const ANSWER_PREFIX: &str = "Mock response to: ";

/// Everything the checkers read, indexed.
pub struct Evidence<'a> {
    pub outcome: &'a RunRecord<'a>,
    pub ledger: &'a Ledger,
    /// The host's settings as the world ran it.
    pub host: &'a HostConfig,
    /// The host's clock at the end, for "due".
    pub now_ms: i64,
    /// Readable sessions, by id.
    pub snapshots: BTreeMap<&'a str, &'a SessionSnapshot>,
    /// Default answers the run produced, by outbound row id: from the channel and the DBs.
    pub answers: BTreeMap<String, Answer>,
    /// Sends the host that made them never recorded because it died first: the send finished
    /// after its host had died, or its record failed and the host restarted before sending the
    /// row again (a power cut in the middle of the record). Each excuses one resend.
    pub orphaned_sends: BTreeSet<(String, i64)>,
    /// Sessions a sweep presumed dead, with when.
    pub presumed_dead: Vec<(String, i64)>,
    /// When each session's agent was seen alive (`true`: it polled) or dead (`false`: its
    /// container exited, was killed, stopped, paused, or the machine crashed), in time order.
    pub liveness: BTreeMap<String, Vec<(i64, bool)>>,
    /// The trace step at which the router accepted each workload message, by index.
    pub routed_steps: BTreeMap<usize, u64>,
    /// The trace step of each completed send, by row id and time.
    pub send_steps: BTreeMap<(String, i64), u64>,
    /// What each session's agent-runner gave the provider, in order.
    pub inputs: BTreeMap<String, Vec<ProviderInput>>,
    /// Every plain file a process read or wrote, in order.
    pub file_accesses: Vec<FileAccess>,
    /// Every text reply the run produced for a platform, by outbound row id: what the channel
    /// got (any outcome), and rows still in outbound.db it never got.
    pub replies: BTreeMap<String, Reply>,
}

/// One input the agent-runner gave the provider: a turn's prompt or a follow-up.
#[derive(Debug, Clone)]
pub struct ProviderInput {
    pub at_ms: i64,
    pub step: u64,
    /// Its first [`crate::event::PROMPT_CHARS_KEPT`] characters.
    pub text: String,
    /// Its whole length, in characters.
    pub chars: usize,
    /// `Some(resumed)` for a turn's prompt, `None` for a follow-up pushed into a turn.
    pub started: Option<bool>,
    /// The tools the provider called after this input, before the next one.
    pub tools: Vec<String>,
}

impl ProviderInput {
    /// True when the record keeps all of it.
    pub fn whole(&self) -> bool {
        self.chars <= crate::event::PROMPT_CHARS_KEPT
    }
}

/// One plain file a process read or wrote.
#[derive(Debug, Clone)]
pub struct FileAccess {
    pub at_ms: i64,
    pub step: u64,
    /// The session the step served.
    pub session: String,
    pub side: FaultSide,
    pub path: String,
    pub written: bool,
}

/// One reply meant for a platform: its text and the conversation it went to.
#[derive(Debug, Clone)]
pub struct Reply {
    pub message_out_id: String,
    pub session_id: String,
    pub text: String,
    /// Where the channel was asked to send it (the row's own route, when never sent).
    pub route: Route,
    /// When the platform first received it, if it did.
    pub received_at_ms: Option<i64>,
}

/// One default answer (`Mock response to: …`) and where it was seen.
#[derive(Debug, Clone)]
pub struct Answer {
    pub message_out_id: String,
    pub session_id: String,
    /// What the answer quotes of its prompt.
    pub quoted: String,
    /// When the channel first received it (true time), if it did.
    pub received_at_ms: Option<i64>,
    /// Its `timestamp` column (container clock), if its row was still in outbound.db.
    pub written_at_ms: Option<i64>,
}

impl<'a> Evidence<'a> {
    /// Indexes `outcome`.
    pub fn new(outcome: &'a RunRecord<'a>) -> Self {
        let ledger = outcome.ledger;
        let snapshots = ledger
            .final_state
            .sessions
            .iter()
            .filter_map(|s| Some((s.session_id.as_str(), s.snapshot.as_ref()?)))
            .collect();
        let mut evidence = Self {
            outcome,
            ledger,
            host: &outcome.host,
            now_ms: ledger.final_state.host_now_ms,
            snapshots,
            answers: BTreeMap::new(),
            orphaned_sends: BTreeSet::new(),
            presumed_dead: Vec::new(),
            liveness: BTreeMap::new(),
            routed_steps: BTreeMap::new(),
            send_steps: BTreeMap::new(),
            inputs: BTreeMap::new(),
            file_accesses: Vec::new(),
            replies: BTreeMap::new(),
        };
        evidence.index_answers();
        evidence.index_replies();
        evidence.index_events(outcome.events);
        evidence
    }

    fn index_answers(&mut self) {
        for send in self.ledger.received() {
            let Some(quoted) = quoted_prompt(&send.content) else {
                continue;
            };
            self.answers
                .entry(send.message_out_id.clone())
                .or_insert_with(|| Answer {
                    message_out_id: send.message_out_id.clone(),
                    session_id: send.session_id.clone(),
                    quoted,
                    received_at_ms: Some(send.at_ms),
                    written_at_ms: None,
                });
        }
        for (session_id, snapshot) in &self.snapshots {
            for row in &snapshot.outbound {
                let Some(quoted) = quoted_prompt(&row.content_json()) else {
                    continue;
                };
                let answer = self
                    .answers
                    .entry(row.id.clone())
                    .or_insert_with(|| Answer {
                        message_out_id: row.id.clone(),
                        session_id: session_id.to_string(),
                        quoted,
                        received_at_ms: None,
                        written_at_ms: None,
                    });
                answer.written_at_ms = parse_instant(&row.timestamp);
            }
        }
    }

    fn index_replies(&mut self) {
        for send in &self.ledger.channel {
            let reply = self
                .replies
                .entry(send.message_out_id.clone())
                .or_insert_with(|| Reply {
                    message_out_id: send.message_out_id.clone(),
                    session_id: send.session_id.clone(),
                    text: text_of_content(&send.content),
                    route: send.route.clone(),
                    received_at_ms: None,
                });
            if send.outcome == SendOutcome::Received && reply.received_at_ms.is_none() {
                reply.received_at_ms = Some(send.at_ms);
            }
        }
        for (session_id, snapshot) in &self.snapshots {
            let to_platform = |row: &&OutboundRow| {
                row.kind != kind::SYSTEM && row.route.channel_type.as_deref() != Some(AGENT_CHANNEL)
            };
            for row in snapshot.outbound.iter().filter(to_platform) {
                self.replies.entry(row.id.clone()).or_insert_with(|| Reply {
                    message_out_id: row.id.clone(),
                    session_id: session_id.to_string(),
                    text: text_of_content(&row.content_json()),
                    route: row.route.clone(),
                    received_at_ms: None,
                });
            }
        }
    }

    /// Records what crossed the provider boundary and the files.
    fn index_boundary(&mut self, recorded: &TraceEvent) {
        let session = recorded.session.clone().unwrap_or_default();
        let input = |text: &str, chars: usize, started: Option<bool>| ProviderInput {
            at_ms: recorded.at_ms,
            step: recorded.step,
            text: text.to_string(),
            chars,
            started,
            tools: Vec::new(),
        };
        let access = |side: FaultSide, path: &str, written: bool| FileAccess {
            at_ms: recorded.at_ms,
            step: recorded.step,
            session: session.clone(),
            side,
            path: path.to_string(),
            written,
        };
        match &recorded.event {
            Event::TurnStarted {
                prompt,
                prompt_chars,
                resumed,
            } => {
                let started = input(prompt, *prompt_chars, Some(*resumed));
                self.inputs.entry(session).or_default().push(started);
            }
            Event::TurnPushed { text } => {
                // The record keeps no length for a push: one as long as the record keeps may
                // have been cut (found by the swarm run: seed 6188, power-loss, a batch of
                // scripted follow-ups whose last tokens fell past the kept characters).
                let kept = text.chars().count();
                let chars = kept + usize::from(kept >= crate::event::PROMPT_CHARS_KEPT);
                let pushed = input(text, chars, None);
                self.inputs.entry(session).or_default().push(pushed);
            }
            Event::ToolCalled { name, .. } => {
                let last = self.inputs.get_mut(&session).and_then(|i| i.last_mut());
                if let Some(last) = last {
                    last.tools.push(name.clone());
                }
            }
            Event::FileRead { side, path } => self.file_accesses.push(access(*side, path, false)),
            Event::FileWritten { side, path } => self.file_accesses.push(access(*side, path, true)),
            _ => {}
        }
    }

    fn index_events(&mut self, events: &[TraceEvent]) {
        let mut running = RunningContainers::default();
        // Rows sent whose `delivered` record failed, not sent again since.
        let mut unrecorded: BTreeMap<String, i64> = BTreeMap::new();
        for recorded in events {
            self.index_boundary(recorded);
            let session = recorded.session.as_deref().unwrap_or("");
            let at_ms = recorded.at_ms;
            match &recorded.event {
                Event::RecordFailed { row, .. } => {
                    unrecorded.insert(row.clone(), at_ms);
                }
                Event::HostStarted { .. } => {
                    // The host died between those sends and their records: the new one cannot
                    // know they were sent, the one duplicate the protocol allows.
                    self.orphaned_sends.extend(std::mem::take(&mut unrecorded));
                }
                Event::SendFinished {
                    row,
                    host_alive,
                    reached,
                    ..
                } => {
                    if !host_alive && *reached {
                        self.orphaned_sends.insert((row.clone(), at_ms));
                    }
                    unrecorded.remove(row);
                    self.send_steps.insert((row.clone(), at_ms), recorded.step);
                }
                Event::MessageRouted { index, .. } => {
                    self.routed_steps.insert(*index, recorded.step);
                }
                Event::Swept { facts } if facts.presumed_dead => {
                    self.presumed_dead.push((session.to_string(), at_ms));
                }
                event if event.shows_live_runner() => self.seen(session, at_ms, true),
                event => {
                    for (who, alive) in running.observe(session, event) {
                        self.seen(&who, at_ms, alive);
                    }
                }
            }
        }
    }

    fn seen(&mut self, session: &str, at_ms: i64, alive: bool) {
        self.liveness
            .entry(session.to_string())
            .or_default()
            .push((at_ms, alive));
    }

    /// Receipts the platform accepted, in time order.
    pub fn received(&self) -> impl Iterator<Item = &'a ChannelSend> {
        self.ledger.received()
    }

    /// Faults that struck (and were counted), in time order.
    pub fn applied_faults(&self) -> impl Iterator<Item = &'a FaultRecord> {
        self.ledger.faults.iter().filter(|f| f.applied)
    }

    /// True when any fault struck at all.
    pub fn any_fault(&self) -> bool {
        self.applied_faults().next().is_some()
    }

    /// True when some clock fault struck the given side (any side when `None`).
    pub fn clock_faulted(&self, side: Option<FaultSide>) -> bool {
        self.applied_faults().any(|f| {
            let clock = matches!(f.fault, Fault::ClockSkew { .. } | Fault::ClockStep { .. });
            clock && side.is_none_or(|side| fault_side(f) == Some(side))
        })
    }

    /// True when a failed fsync (never a lost commit: that is a violation) may have cost `path_suffix` of `session_id` rows written on the
    /// writer's clock at or before `written_ms` (or at any time when `written_ms` is unknown).
    pub fn maybe_durable(&self, session_id: &str, file: &str, written_ms: Option<i64>) -> bool {
        let suffix = format!("{session_id}/{file}");
        self.ledger
            .final_state
            .maybe_durable
            .iter()
            .filter(|m| m.path.ends_with(&suffix) && !m.is_lost_commit())
            .any(|m| covers(m, written_ms))
    }

    /// The longest a due message may wait on a healthy session before its first answer or ack:
    /// one sweep, one poll, a container start, a turn's idle end, a delivery pass and a send.
    pub fn prompt_bound_ms(&self) -> i64 {
        let bounds = &self.outcome.bounds;
        self.host.sweep_interval_ms
            + bounds.poll_interval_idle_ms
            + bounds.container_start_ms_max
            + bounds.query_idle_timeout_ms
            + self.host.delivery_fast_interval_ms
            + bounds.channel_latency_ms_max
            + 1_000
    }

    /// How long before the end something may have come due and still be owed nothing: the
    /// prompt bound plus how far the clocks were pushed from true time (a side whose clock lags
    /// sees things come due later).
    pub fn settle_grace_ms(&self) -> i64 {
        self.prompt_bound_ms() + self.clocks_pushed_ms()
    }

    /// How far the clock faults pushed the sides' clocks from true time, summed over the run: a
    /// bound on how far apart two clocks read at one true instant.
    pub fn clocks_pushed_ms(&self) -> i64 {
        let run_ms = self.outcome.sim_ms.max(0);
        self.applied_faults()
            .map(|f| match f.fault {
                Fault::ClockSkew {
                    offset_ms,
                    drift_ppm,
                    ..
                } => offset_ms.abs() + drift_ppm.abs() * run_ms / 1_000_000,
                Fault::ClockStep { delta_ms, .. } => delta_ms.abs(),
                _ => 0,
            })
            .sum()
    }

    /// True when `after` (an instant on the writer's clock, or none) came due long enough
    /// before the end that the quiet period owed it its processing.
    pub fn owed(&self, after: Option<&str>) -> bool {
        is_due(after, self.now_ms - self.settle_grace_ms())
    }

    /// The workload token of sent message `index` (`m7`).
    pub fn token(&self, index: usize) -> String {
        token_of(&self.ledger.sent[index].text).to_string()
    }

    /// The script a sent message carries, if any (including one a provider fault armed).
    pub fn script(&self, index: usize) -> Option<MockScript> {
        MockScript::from_input(&self.ledger.sent[index].text)
    }

    /// Default answers whose quote contains `token` as a word, in the order first seen.
    pub fn answers_quoting<'e>(&'e self, token: &'e str) -> impl Iterator<Item = &'e Answer> {
        self.answers
            .values()
            .filter(move |a| contains_word(&a.quoted, token))
    }

    /// Index of the chat a session belongs to, from the messages routed into it.
    pub fn chat_of_session(&self, session_id: &str) -> Option<usize> {
        self.ledger
            .sent
            .iter()
            .find(|s| s.session_id.as_deref() == Some(session_id))
            .map(|s| s.chat)
    }

    /// How many default answers a message's own script allows (1 without a script).
    pub fn answers_allowed(&self, index: usize) -> u32 {
        self.script(index).map_or(1, |s| answers_allowed_by(&s))
    }

    /// The workload message whose token is `token`, if any.
    pub fn sent_with_token(&self, token: &str) -> Option<&'a SentMessage> {
        self.ledger.sent.iter().find(|s| token_of(&s.text) == token)
    }

    /// The inputs of `session` that carry `token` as a word.
    pub fn inputs_with<'e>(
        &'e self,
        session: &str,
        token: &'e str,
    ) -> impl Iterator<Item = &'e ProviderInput> {
        self.inputs
            .get(session)
            .into_iter()
            .flatten()
            .filter(move |input| contains_word(&input.text, token))
    }

    /// True when some input of `session` is longer than the record keeps.
    pub fn inputs_cut_short(&self, session: &str) -> bool {
        self.inputs
            .get(session)
            .is_some_and(|inputs| inputs.iter().any(|i| !i.whole()))
    }

    /// The replies that went (or were to go) to `route`.
    pub fn replies_to<'e>(&'e self, route: &'e Route) -> impl Iterator<Item = &'e Reply> {
        self.replies.values().filter(move |r| r.route == *route)
    }

    /// True when a message of `chat` carries a script that may hold a turn up (think, silence,
    /// errors, exits, questions), so the chat's turns need not be prompt.
    pub fn slowed_chat(&self, chat: usize) -> bool {
        self.ledger
            .sent
            .iter()
            .filter(|s| s.chat == chat)
            .filter_map(|s| MockScript::from_input(&s.text))
            .any(|script| script.directives.iter().any(holds_a_turn_up))
    }
}

/// True for a directive that may keep a turn from ending promptly.
fn holds_a_turn_up(directive: &Directive) -> bool {
    match directive {
        Directive::Say(_) | Directive::Reply(_) | Directive::Progress(_) => false,
        Directive::Tool { name, .. } => name == "ask_user_question",
        _ => true,
    }
}

/// Default answers a script lets a turn give.
pub fn answers_allowed_by(script: &MockScript) -> u32 {
    let mut allowed = 1;
    for directive in &script.directives {
        match directive {
            Directive::Silent | Directive::Exit(_) | Directive::Error { .. } => return 0,
            Directive::Say(_) => allowed = 0,
            Directive::Reply(n) => allowed = *n,
            _ => {}
        }
    }
    allowed
}

/// The text of a row's content (a JSON object or a JSON string holding one).
pub fn text_of_content(content: &Value) -> String {
    match content {
        Value::String(text) => text_of(&parse_content(text)).to_string(),
        other => text_of(other).to_string(),
    }
}

/// A workload text's unique token: its first word of the form `m<digits>` (a command carries it
/// after the command word: `/cost m4`), else its first word.
pub fn token_of(text: &str) -> &str {
    let is_token = |word: &&str| {
        word.strip_prefix('m')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut words = text.split_whitespace();
    let first = words.clone().next().unwrap_or("");
    words.find(is_token).unwrap_or(first)
}

/// True when `word` occurs in `text` not glued to a letter, digit or `-` on either side.
pub fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !glued(before) && !glued(after)
    })
}

/// What a default answer quotes of its prompt, or `None` for any other content.
pub fn quoted_prompt(content: &Value) -> Option<String> {
    let text = text_of_content(content);
    text.strip_prefix(ANSWER_PREFIX).map(str::to_string)
}

/// Containers up (running, possibly paused) as the trace tells, in session order: the set the
/// world picks a kill's or a pause's victim from.
#[derive(Default)]
pub struct RunningContainers {
    up: BTreeSet<String>,
}

impl RunningContainers {
    /// An event of `session`: whose agent went down (`false`) or came back (`true`).
    pub fn observe(&mut self, session: &str, event: &Event) -> Vec<(String, bool)> {
        match event {
            Event::ContainerRunning => {
                self.up.insert(session.to_string());
                Vec::new()
            }
            Event::ContainerResumed => vec![(session.to_string(), true)],
            Event::ContainerExited { .. }
            | Event::ContainerKilled
            | Event::ContainerStopped
            | Event::ContainerStartFailed => {
                self.up.remove(session);
                vec![(session.to_string(), false)]
            }
            Event::PowerCutFired { .. } => self.all_down(),
            Event::Fault { fault, effect } if *effect != FaultEffect::Skipped => {
                self.fault_struck(fault)
            }
            _ => Vec::new(),
        }
    }

    /// A fault that struck: the agents it stopped.
    fn fault_struck(&mut self, fault: &Fault) -> Vec<(String, bool)> {
        match *fault {
            Fault::MachineCrash { .. } => self.all_down(),
            Fault::ContainerKilled { pick } => {
                let victim = self.pick(pick);
                if let Some(victim) = &victim {
                    self.up.remove(victim);
                }
                victim.into_iter().map(|v| (v, false)).collect()
            }
            Fault::ContainerHung { pick, .. } => {
                self.pick(pick).into_iter().map(|v| (v, false)).collect()
            }
            _ => Vec::new(),
        }
    }

    fn all_down(&mut self) -> Vec<(String, bool)> {
        std::mem::take(&mut self.up)
            .into_iter()
            .map(|s| (s, false))
            .collect()
    }

    /// The `pick`-th running container, modulo their number.
    pub fn pick(&self, pick: u64) -> Option<String> {
        let count = self.up.len() as u64;
        (count > 0).then(|| {
            let index = (pick % count) as usize;
            self.up.iter().nth(index).cloned().unwrap_or_default()
        })
    }

    /// Sessions whose container is up, in id order.
    pub fn sessions(&self) -> Vec<String> {
        self.up.iter().cloned().collect()
    }
}

/// The side a fault record names in its detail, if it names one.
pub fn fault_side(record: &FaultRecord) -> Option<FaultSide> {
    match record.fault {
        Fault::FsyncError { side }
        | Fault::DiskFull { side, .. }
        | Fault::SqliteBusy { side }
        | Fault::SlowDisk { side, .. }
        | Fault::ClockSkew { side, .. }
        | Fault::ClockStep { side, .. } => Some(side),
        Fault::PowerCut { counted_on, .. } => counted_on,
        _ => None,
    }
}

/// True when a failed sync may cover a row written at `written_ms` on the same clock.
fn covers(record: &MaybeDurableRecord, written_ms: Option<i64>) -> bool {
    match (record.at_ms, written_ms) {
        (Some(failed_ms), Some(written_ms)) => written_ms <= failed_ms,
        _ => true,
    }
}

/// A conversation in words for a violation's text: `channel:platform` and its thread, if any.
pub fn conversation_name(route: &Route) -> String {
    let place = format!(
        "{}:{}",
        route.channel_type.as_deref().unwrap_or("?"),
        route.platform_id.as_deref().unwrap_or("?")
    );
    match &route.thread_id {
        Some(thread) => format!("{place} thread {thread}"),
        None => place,
    }
}

/// A sequence number in words (`none` for a row without one).
pub fn seq_name(seq: Option<i64>) -> String {
    seq.map_or_else(|| "none".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_not_prefixes_of_longer_tokens() {
        assert!(contains_word("<message>m1 hello</message>", "m1"));
        assert!(!contains_word("<message>m11 hello</message>", "m1"));
        assert!(!contains_word("am1 x", "m1"));
        assert!(contains_word("m1", "m1"));
        assert!(!contains_word("anything", ""));
    }

    #[test]
    fn tokens_are_found_after_a_command_word() {
        assert_eq!(token_of("m3 hello"), "m3");
        assert_eq!(token_of("/cost m12 please"), "m12");
        assert_eq!(token_of("hello there"), "hello");
    }

    #[test]
    fn scripts_bound_the_default_answers() {
        let allowed = |text: &str| answers_allowed_by(&MockScript::parse(text));
        assert_eq!(allowed("think 5s"), 1);
        assert_eq!(allowed("reply 3"), 3);
        assert_eq!(allowed("say hi"), 0);
        assert_eq!(allowed("think 1s; exit 2"), 0);
        assert_eq!(allowed("error fatal boom"), 0);
    }

    #[test]
    fn a_power_cut_that_fires_stops_every_container() {
        let mut running = RunningContainers::default();
        running.observe("s1", &Event::ContainerRunning);
        running.observe("s2", &Event::ContainerRunning);
        let armed = Event::Fault {
            fault: Fault::PowerCut {
                after_ops: 25,
                down_ms: 1,
                counted_on: None,
            },
            effect: FaultEffect::Armed,
        };
        assert!(running.observe("", &armed).is_empty());
        let fired = Event::PowerCutFired { struck_in: Some(7) };
        let down = running.observe("", &fired);
        assert_eq!(down, vec![("s1".into(), false), ("s2".into(), false)]);
        assert!(running.sessions().is_empty());
    }
}
