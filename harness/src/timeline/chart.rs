//! What the picture shows, decided from the typed record alone: lanes, marks, each message's
//! path, faults where they struck, the quiet period, and the violations with their evidence.
//!
//! Nothing here draws; [`super::svg`] and [`super::html`] turn a [`Chart`] into text.

use super::names::{message_of, row_of, seconds, word_at, Names};
use clawsim_oracle::event::{Actor, Event, FaultEffect, SendResult, SweepFacts};
use clawsim_oracle::properties::{first_answers, Evidence, Verdict};
use clawsim_oracle::trace::TraceEvent;
use clawsim_sim::world::RunOutcome;
use std::collections::{BTreeMap, BTreeSet};

/// The order of lanes inside a group: roughly the order a message meets them.
const ACTOR_ORDER: [Actor; 13] = [
    Actor::World,
    Actor::Test,
    Actor::User,
    Actor::Router,
    Actor::Runtime,
    Actor::Runner,
    Actor::Provider,
    Actor::DeliveryFast,
    Actor::DeliverySlow,
    Actor::Delivery,
    Actor::Channel,
    Actor::Sweep,
    Actor::Faults,
];

/// A lane: one actor in one group (the host as a whole, or one session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LaneKey {
    /// 0 for the host-wide lanes, then sessions in the order they first appear.
    pub group: usize,
    pub actor: usize,
}

/// A group of lanes with its heading.
#[derive(Debug, Clone)]
pub struct Group {
    pub heading: String,
    /// Lane indices into [`Chart::lanes`].
    pub lanes: Vec<usize>,
}

/// One lane.
#[derive(Debug, Clone)]
pub struct Lane {
    pub key: LaneKey,
    pub name: &'static str,
}

/// The shape of a mark, as the legend names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A user sent a workload message (hollow circle).
    Sent,
    /// The platform offered it again: the host was down or refused it (cross).
    Offer,
    /// The host accepted it and gave it a seq (filled circle).
    Routed,
    /// A provider turn took it up, or a follow-up was pushed into one (square).
    Turn,
    /// The provider answered (diamond).
    Reply,
    /// A pass handed its answer to the channel (triangle).
    Send,
    /// The platform received the answer (check).
    Delivered,
    /// A send failed, or finished after its host died (hollow triangle).
    SendLost,
    /// Anything else worth seeing (small dot).
    Plain,
    /// An error or a failure of a step (small red dot).
    Error,
}

/// One step drawn.
#[derive(Debug, Clone)]
pub struct Mark {
    pub step: Option<u64>,
    pub at_ms: i64,
    pub lane: usize,
    pub shape: Shape,
    /// The workload message it belongs to (its colour), if any.
    pub message: Option<usize>,
    pub label: Option<String>,
    /// The full text, for the tooltip and the list.
    pub text: String,
    /// Part of the evidence of a violation (its number).
    pub evidence: Option<usize>,
    /// A channel send's start (with its row and when it finishes) or its end.
    pub leg: Leg,
}

/// Which end of a channel send a mark is: a send is drawn from where it started to where it
/// finished, even when other steps of its message come in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leg {
    None,
    Start { row: String, finish_ms: i64 },
    End { row: String },
}

/// One workload message's life, as the points its path joins.
#[derive(Debug, Clone)]
pub struct MessagePath {
    pub index: usize,
    pub conversation: String,
    /// Indices into [`Chart::marks`], in time order.
    pub marks: Vec<usize>,
    /// The path's segments, between marks: each step to the next, and each send from its
    /// start to its end.
    pub segments: Vec<(usize, usize)>,
    /// When the platform first received an answer, if it did.
    pub answered_ms: Option<i64>,
    pub seq: Option<i64>,
    /// Part of the evidence of a violation (its number).
    pub evidence: Option<usize>,
}

/// How a fault shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultLook {
    /// It took effect here: a solid line.
    Struck,
    /// It was armed here and strikes later (or never): a faint line.
    Armed,
}

/// A fault on the time axis.
#[derive(Debug, Clone)]
pub struct FaultMark {
    pub at_ms: i64,
    pub look: FaultLook,
    pub label: String,
    pub text: String,
    /// The mark of the step it struck in, if drawn.
    pub struck_mark: Option<usize>,
    /// The lane of the step it struck in, drawn or not.
    pub struck_lane: Option<usize>,
}

/// A violation, told with the chart's names.
#[derive(Debug, Clone)]
pub struct ShownViolation {
    pub number: usize,
    pub text: String,
    pub at_ms: Option<i64>,
}

/// The agent-runner of a session was alive from one instant to another.
#[derive(Debug, Clone, Copy)]
pub struct Alive {
    pub lane: usize,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Everything the picture shows.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub lanes: Vec<Lane>,
    pub groups: Vec<Group>,
    pub marks: Vec<Mark>,
    pub paths: Vec<MessagePath>,
    pub faults: Vec<FaultMark>,
    pub alive: Vec<Alive>,
    pub quiet_from_ms: Option<i64>,
    pub violations: Vec<ShownViolation>,
    /// Routine steps not drawn: unchanged polls, empty passes, empty sweeps.
    pub routine_steps: usize,
}

/// Builds the chart of a run.
pub fn chart(outcome: &RunOutcome, verdict: &Verdict) -> Chart {
    let record = outcome.record();
    let evidence = Evidence::new(&record);
    let names = Names::new(
        &evidence,
        verdict.violations.iter().map(|v| v.detail.as_str()),
    );
    Builder::new(outcome, &names).build(verdict, &first_answers(&record))
}

struct Builder<'a> {
    outcome: &'a RunOutcome,
    names: &'a Names,
    events: &'a [TraceEvent],
    start_ms: i64,
    /// Session id → group number.
    groups: BTreeMap<&'a str, usize>,
    lanes: BTreeMap<LaneKey, usize>,
    marks: Vec<Mark>,
    /// Trace step → its mark.
    by_step: BTreeMap<u64, usize>,
    /// Workload message → its marks.
    message_marks: BTreeMap<usize, Vec<usize>>,
    routine_steps: usize,
}

impl<'a> Builder<'a> {
    fn new(outcome: &'a RunOutcome, names: &'a Names) -> Self {
        let events = outcome.trace.events();
        let mut groups = BTreeMap::new();
        for event in events {
            if let Some(session) = &event.session {
                let next = groups.len() + 1;
                groups.entry(session.as_str()).or_insert(next);
            }
        }
        Builder {
            outcome,
            names,
            events,
            start_ms: events.first().map_or(0, |e| e.at_ms),
            groups,
            lanes: BTreeMap::new(),
            marks: Vec::new(),
            by_step: BTreeMap::new(),
            message_marks: BTreeMap::new(),
            routine_steps: 0,
        }
    }

    fn session_of_message(&self, index: usize) -> Option<&'a str> {
        self.outcome.ledger.sent.get(index)?.session_id.as_deref()
    }

    fn lane(&mut self, session: Option<&str>, actor: Actor) -> usize {
        let group = session
            .and_then(|s| self.groups.get(s))
            .copied()
            .unwrap_or(0);
        let actor = ACTOR_ORDER.iter().position(|a| *a == actor).unwrap_or(0);
        let next = self.lanes.len();
        *self.lanes.entry(LaneKey { group, actor }).or_insert(next)
    }

    fn push(&mut self, mark: Mark, messages: &[usize]) -> usize {
        let id = self.marks.len();
        if let Some(step) = mark.step {
            self.by_step.insert(step, id);
        }
        for index in messages {
            self.message_marks.entry(*index).or_default().push(id);
        }
        self.marks.push(mark);
        id
    }

    fn build(mut self, verdict: &Verdict, answered: &BTreeMap<usize, i64>) -> Chart {
        let ledger = &self.outcome.ledger;
        // The users' sends: a hollow circle in the router lane of the message's session.
        for sent in &ledger.sent {
            let session = sent.session_id.as_deref();
            let lane = self.lane(session, Actor::Router);
            let conversation = session.map_or("never routed".into(), |s| self.names.session(s));
            let text = format!(
                "{} s · {conversation} user: m{} sent: {}",
                self.secs(sent.sent_at_ms),
                sent.index,
                one_line(&sent.text)
            );
            let mark = Mark {
                step: None,
                at_ms: sent.sent_at_ms,
                lane,
                shape: Shape::Sent,
                message: Some(sent.index),
                label: None,
                text,
                evidence: None,
                leg: Leg::None,
            };
            self.push(mark, &[sent.index]);
        }
        let mut turns: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
        let mut last_poll: BTreeMap<&str, i64> = BTreeMap::new();
        let mut alive_from: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        let mut alive = Vec::new();
        let mut faults = Vec::new();
        let mut armed: Vec<(String, i64)> = Vec::new();
        let mut quiet_from_ms = None;
        let mut struck_later: Vec<(usize, Option<u64>)> = Vec::new();
        for event in self.events {
            let session = event.session.as_deref();
            let key = session.unwrap_or("");
            // The runner's alive span: from its start (or first poll) to its last poll before
            // it went down.
            match &event.event {
                Event::RunnerStarted | Event::Polled { .. } => {
                    let span = alive_from.entry(key).or_insert((event.at_ms, event.at_ms));
                    span.1 = event.at_ms;
                }
                Event::ContainerKilled
                | Event::ContainerStopped
                | Event::ContainerExited { .. }
                | Event::RunnerExit { .. } => {
                    if let Some((from, to)) = alive_from.remove(key) {
                        let lane = self.lane(session, Actor::Runner);
                        alive.push(Alive {
                            lane,
                            from_ms: from,
                            to_ms: to.max(event.at_ms.min(to + 1)),
                        });
                    }
                    turns.remove(key);
                }
                Event::Fault {
                    fault: clawsim_oracle::fault::Fault::MachineCrash { .. },
                    effect: FaultEffect::Struck,
                }
                | Event::PowerCutFired { .. } => {
                    for (session, (from, to)) in std::mem::take(&mut alive_from) {
                        let lane = self.lane(Some(session), Actor::Runner);
                        alive.push(Alive {
                            lane,
                            from_ms: from,
                            to_ms: to,
                        });
                    }
                    turns.clear();
                }
                _ => {}
            }
            // Faults: lines across the lanes, not marks in a lane.
            match &event.event {
                Event::Fault { fault, effect } => {
                    let json = serde_json::to_string(fault).unwrap_or_default();
                    let (look, label) = match effect {
                        FaultEffect::Struck => (FaultLook::Struck, fault.kind().to_string()),
                        FaultEffect::Armed => {
                            armed.push((fault.kind().to_string(), event.at_ms));
                            (FaultLook::Armed, format!("{} armed", fault.kind()))
                        }
                        FaultEffect::Skipped => {
                            (FaultLook::Armed, format!("{} skipped", fault.kind()))
                        }
                    };
                    let what = match effect {
                        FaultEffect::Struck => "struck",
                        FaultEffect::Armed => "armed; it strikes at its moment",
                        FaultEffect::Skipped => "skipped: nothing to act on",
                    };
                    faults.push(FaultMark {
                        at_ms: event.at_ms,
                        look,
                        label,
                        text: format!(
                            "{} s: {} {what} {json}",
                            self.secs(event.at_ms),
                            fault.kind()
                        ),
                        struck_mark: None,
                        struck_lane: None,
                    });
                    continue;
                }
                Event::FaultFired { kind, struck_in } => {
                    struck_later.push((faults.len(), *struck_in));
                    let since = take_armed(&mut armed, kind);
                    let fired = self.fired(event, kind, *struck_in, since);
                    faults.push(fired);
                    continue;
                }
                Event::PowerCutFired { struck_in } => {
                    struck_later.push((faults.len(), *struck_in));
                    let since = take_armed(&mut armed, "power-cut");
                    let fired = self.fired(event, "power-cut", *struck_in, since);
                    faults.push(fired);
                    continue;
                }
                Event::ScriptsAttached { index, scripts } => {
                    faults.push(FaultMark {
                        at_ms: event.at_ms,
                        look: FaultLook::Struck,
                        label: format!("@mock on m{index}"),
                        text: format!(
                            "{} s: provider faults ride on m{index}: @mock {}",
                            self.secs(event.at_ms),
                            scripts.join("; ")
                        ),
                        struck_mark: None,
                        struck_lane: None,
                    });
                    continue;
                }
                Event::QuietPeriod => quiet_from_ms = Some(event.at_ms),
                _ => {}
            }
            if self.routine(event, &mut last_poll) {
                self.routine_steps += 1;
                continue;
            }
            let messages = self.messages_of(event, &mut turns);
            // Steps of a message taken before it had a session (waits, refusals) are drawn in
            // the lane of the session it reached.
            let session = session.or_else(|| {
                messages
                    .first()
                    .and_then(|index| self.session_of_message(*index))
            });
            let lane = self.lane(session, event.actor);
            let (shape, label) = self.shape_and_label(event, &messages);
            let mark = Mark {
                step: Some(event.step),
                at_ms: event.at_ms,
                lane,
                shape,
                message: messages.first().copied(),
                label,
                text: self.describe(event),
                evidence: None,
                leg: leg_of(&event.event, event.at_ms),
            };
            self.push(mark, &messages);
        }
        for (session, (from, to)) in alive_from {
            let lane = self.lane(Some(session), Actor::Runner);
            alive.push(Alive {
                lane,
                from_ms: from,
                to_ms: to,
            });
        }
        for (fault, step) in struck_later {
            faults[fault].struck_mark = step.and_then(|s| self.by_step.get(&s).copied());
        }
        let mut paths: Vec<MessagePath> = ledger
            .sent
            .iter()
            .map(|sent| {
                let mut marks = self.message_marks.remove(&sent.index).unwrap_or_default();
                marks.sort_by_key(|m| (self.marks[*m].at_ms, self.marks[*m].step));
                marks.dedup();
                let segments = self.segments(&marks);
                MessagePath {
                    index: sent.index,
                    conversation: sent
                        .session_id
                        .as_deref()
                        .map_or("never routed".into(), |s| self.names.session(s)),
                    marks,
                    segments,
                    answered_ms: answered.get(&sent.index).copied(),
                    seq: sent.seq,
                    evidence: None,
                }
            })
            .collect();
        let violations = self.violations(verdict, &mut paths);
        let (lanes, groups) = self.layout(&mut alive, &mut faults);
        let end_ms = self.events.last().map_or(self.start_ms, |e| e.at_ms);
        let held = match violations.len() {
            0 => "every property held".to_string(),
            1 => "1 violation".to_string(),
            n => format!("{n} violations"),
        };
        Chart {
            title: format!(
                "seed {} · profile {} · trace {:016x} · {} steps · {} s simulated · {held}",
                self.outcome.seed,
                self.outcome.profile,
                self.outcome.trace_hash,
                self.outcome.steps,
                seconds(end_ms - self.start_ms)
            ),
            start_ms: self.start_ms,
            end_ms,
            lanes,
            groups,
            marks: self.marks,
            paths,
            faults,
            alive,
            quiet_from_ms,
            violations,
            routine_steps: self.routine_steps,
        }
    }

    /// Segments joining a message's marks: each to the one before it, except that a send's end
    /// joins its own start.
    fn segments(&self, marks: &[usize]) -> Vec<(usize, usize)> {
        let mut segments = Vec::new();
        let mut previous: Option<usize> = None;
        for m in marks {
            let mark = &self.marks[*m];
            if let Leg::End { row } = &mark.leg {
                let start = marks.iter().copied().find(|s| {
                    self.marks[*s].leg
                        == Leg::Start {
                            row: row.clone(),
                            finish_ms: mark.at_ms,
                        }
                });
                if let Some(from) = start.or(previous) {
                    segments.push((from, *m));
                }
                continue;
            }
            if let Some(from) = previous {
                segments.push((from, *m));
            }
            previous = Some(*m);
        }
        segments
    }

    fn secs(&self, at_ms: i64) -> String {
        seconds(at_ms - self.start_ms)
    }

    /// An armed fault that struck now, in step `struck_in`.
    fn fired(
        &mut self,
        event: &TraceEvent,
        kind: &str,
        struck_in: Option<u64>,
        armed_ms: Option<i64>,
    ) -> FaultMark {
        let struck = struck_in.and_then(|s| self.events.iter().find(|e| e.step == s));
        let at_ms = struck.map_or(event.at_ms, |e| e.at_ms);
        let struck_lane = struck.map(|e| self.lane(e.session.as_deref(), e.actor));
        let step = struck_in.map_or(String::new(), |s| format!(" in step {s}"));
        let armed = armed_ms.map_or(String::new(), |t| format!(" (armed at {} s)", self.secs(t)));
        FaultMark {
            at_ms,
            look: FaultLook::Struck,
            label: kind.to_string(),
            text: format!("{} s: {kind} struck{step}{armed}", self.secs(at_ms)),
            struck_mark: None,
            struck_lane,
        }
    }

    /// True for steps drawn by nothing: a poll that changed nothing (same interval, not a
    /// duplicate wake), an empty or busy pass, a sweep with nothing to do.
    fn routine<'e>(&self, event: &'e TraceEvent, last_poll: &mut BTreeMap<&'e str, i64>) -> bool {
        match &event.event {
            Event::Polled {
                next_in_ms,
                duplicate,
            } => {
                let session = event.session.as_deref().unwrap_or("");
                let before = last_poll.insert(session, *next_in_ms);
                !duplicate && before == Some(*next_in_ms)
            }
            Event::PassDone | Event::PassBusy => true,
            Event::Swept { facts } => *facts == SweepFacts::default(),
            Event::Setup { .. } => true,
            _ => false,
        }
    }

    /// The workload messages an event belongs to. `turns` is what each session's running
    /// provider turn has taken up.
    fn messages_of<'e>(
        &self,
        event: &'e TraceEvent,
        turns: &mut BTreeMap<&'e str, BTreeSet<usize>>,
    ) -> Vec<usize> {
        let session = event.session.as_deref().unwrap_or("");
        let in_text = |text: &str| -> Vec<usize> {
            self.names
                .tokens
                .iter()
                .enumerate()
                .filter(|(index, token)| {
                    self.session_of_message(*index) == Some(session)
                        && word_at(text, token).is_some()
                })
                .map(|(index, _)| index)
                .collect()
        };
        match &event.event {
            Event::MessageWaits { index }
            | Event::MessageRefused { index, .. }
            | Event::MessageRouted { index, .. } => vec![*index],
            Event::TurnStarted { prompt, .. } => {
                let taken = in_text(prompt);
                turns.insert(session, taken.iter().copied().collect());
                taken
            }
            Event::TurnPushed { text } => {
                let taken = in_text(text);
                turns.entry(session).or_default().extend(taken.iter());
                taken
            }
            Event::ProviderResult { text } => {
                let current = turns.get(session).cloned().unwrap_or_default();
                let quoted: Vec<usize> = text
                    .as_deref()
                    .map(in_text)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| current.contains(i))
                    .collect();
                if quoted.is_empty() {
                    current.into_iter().collect()
                } else {
                    quoted
                }
            }
            Event::ProviderError { .. } => turns
                .get(session)
                .map(|t| t.iter().copied().collect())
                .unwrap_or_default(),
            Event::ProviderExit { .. } | Event::TurnAborted => turns
                .remove(session)
                .map(|t| t.into_iter().collect())
                .unwrap_or_default(),
            Event::TurnEnded => {
                turns.remove(session);
                Vec::new()
            }
            other => row_of(other)
                .and_then(|row| self.names.row_answers.get(row))
                .map(|index| vec![*index])
                .unwrap_or_default(),
        }
    }

    fn shape_and_label(&self, event: &TraceEvent, messages: &[usize]) -> (Shape, Option<String>) {
        let on_path = !messages.is_empty();
        let shape = match &event.event {
            Event::MessageWaits { .. } | Event::MessageRefused { .. } => Shape::Offer,
            Event::MessageRouted { index, seq, .. } => {
                return (Shape::Routed, Some(format!("m{index} seq {seq}")));
            }
            Event::TurnStarted { .. } | Event::TurnPushed { .. } => Shape::Turn,
            Event::ProviderResult { .. } if on_path => Shape::Reply,
            Event::SendStarted { .. } if on_path => Shape::Send,
            Event::SendFinished {
                result: SendResult::Received,
                host_alive: true,
                ..
            } if on_path => Shape::Delivered,
            Event::SendFinished { .. } if on_path => Shape::SendLost,
            Event::HostStarted { incarnation } => {
                return (Shape::Plain, Some(format!("host {incarnation} up")));
            }
            Event::ContainerRunning => return (Shape::Plain, Some("container up".into())),
            Event::ContainerKilled => return (Shape::Error, Some("killed".into())),
            Event::ContainerExited { code } => {
                return (Shape::Error, Some(format!("exit {code}")));
            }
            Event::ContainerStopped => return (Shape::Plain, Some("stopped".into())),
            Event::HostStartFailed { .. }
            | Event::SessionsUnlisted { .. }
            | Event::PassBeginFailed { .. }
            | Event::PassFailed { .. }
            | Event::RecordFailed { .. }
            | Event::SweepFailed { .. }
            | Event::ContainerStartFailed
            | Event::RunnerBadSettings { .. }
            | Event::RunnerStartFailed { .. }
            | Event::PollFailed { .. }
            | Event::ProviderError { .. }
            | Event::ProviderExit { .. }
            | Event::TurnAborted
            | Event::SendFinished { .. } => Shape::Error,
            _ => Shape::Plain,
        };
        (shape, None)
    }

    /// The event as a person reads it, with the chart's names.
    fn describe(&self, event: &TraceEvent) -> String {
        let what = match &event.event {
            Event::MessageRouted { index, seq, .. } => format!("m{index} routed, seq {seq}"),
            Event::SendStarted {
                row,
                seq,
                latency_ms,
            } => {
                let seq = seq.map_or(String::new(), |s| format!(" (seq {s})"));
                format!(
                    "send of {}{seq} started, takes {latency_ms} ms",
                    self.names.of(row)
                )
            }
            other => self.names.text(&other.to_string()),
        };
        let lane = match &event.session {
            Some(session) => format!("{} {}", self.names.session(session), event.actor.name()),
            None => event.actor.name().to_string(),
        };
        format!(
            "step {} · {} s · {lane}: {what}",
            event.step,
            self.secs(event.at_ms)
        )
    }

    /// The violations in the chart's names, and their evidence marked: the messages and rows
    /// each names, and the steps of its session at the moment it became visible.
    fn violations(&mut self, verdict: &Verdict, paths: &mut [MessagePath]) -> Vec<ShownViolation> {
        let mut shown = Vec::new();
        for (i, violation) in verdict.violations.iter().enumerate() {
            let number = i + 1;
            let detail = self.names.text(&violation.detail);
            let session = violation
                .session
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| format!(" ({})", self.names.session(s)))
                .unwrap_or_default();
            let at = violation
                .at_ms
                .map(|t| format!(" at {} s", self.secs(t)))
                .unwrap_or_default();
            shown.push(ShownViolation {
                number,
                text: format!("{}{session}{at}: {detail}", violation.property),
                at_ms: violation.at_ms,
            });
            // Messages it names (mN, and mN's reply rows).
            for path in paths.iter_mut() {
                if word_at(&detail, &format!("m{}", path.index)).is_some() {
                    path.evidence.get_or_insert(number);
                }
            }
            let named: BTreeSet<&str> = detail
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
                .collect();
            for (m, event) in self
                .events
                .iter()
                .filter_map(|e| Some((*self.by_step.get(&e.step)?, e)))
                .collect::<Vec<_>>()
            {
                let row_named = row_of(&event.event)
                    .is_some_and(|row| word_at(&detail, self.names.of(row)).is_some());
                let message_named =
                    message_of(event).is_some_and(|id| named.contains(self.names.of(id)));
                let at_moment = violation.at_ms == Some(event.at_ms)
                    && (violation.session.is_none() || violation.session == event.session);
                if row_named || message_named || at_moment {
                    self.marks[m].evidence.get_or_insert(number);
                }
            }
        }
        shown
    }

    /// Lanes in group and actor order, groups headed by their conversation; marks and alive
    /// spans, which name lanes in the order they were made, are renumbered to that order.
    fn layout(&mut self, alive: &mut [Alive], faults: &mut [FaultMark]) -> (Vec<Lane>, Vec<Group>) {
        let sessions: BTreeMap<usize, &str> = self.groups.iter().map(|(s, g)| (*g, *s)).collect();
        let mut renumbered: BTreeMap<usize, usize> = BTreeMap::new();
        let mut lanes: Vec<Lane> = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        for (key, created) in &self.lanes {
            renumbered.insert(*created, lanes.len());
            if lanes.last().is_none_or(|l| l.key.group != key.group) {
                let heading = match sessions.get(&key.group) {
                    Some(session) => format!(
                        "{} · session {}",
                        self.names.session(session),
                        short(session)
                    ),
                    None => "host".to_string(),
                };
                groups.push(Group {
                    heading,
                    lanes: Vec::new(),
                });
            }
            if let Some(group) = groups.last_mut() {
                group.lanes.push(lanes.len());
            }
            lanes.push(Lane {
                key: *key,
                name: ACTOR_ORDER[key.actor].name(),
            });
        }
        for mark in &mut self.marks {
            mark.lane = renumbered[&mark.lane];
        }
        for span in alive.iter_mut() {
            span.lane = renumbered[&span.lane];
        }
        for fault in faults.iter_mut() {
            fault.struck_lane = fault.struck_lane.map(|lane| renumbered[&lane]);
        }
        (lanes, groups)
    }
}

fn leg_of(event: &Event, at_ms: i64) -> Leg {
    match event {
        Event::SendStarted {
            row, latency_ms, ..
        } => Leg::Start {
            row: row.clone(),
            finish_ms: at_ms + latency_ms,
        },
        Event::SendFinished { row, .. } => Leg::End { row: row.clone() },
        _ => Leg::None,
    }
}

/// The oldest armed fault of `kind` not yet fired, removed: when it was armed.
fn take_armed(armed: &mut Vec<(String, i64)>, kind: &str) -> Option<i64> {
    let at = armed.iter().position(|(k, _)| k == kind)?;
    Some(armed.remove(at).1)
}

/// The last part of a session id, as the golden traces print it.
pub fn short(session: &str) -> &str {
    session.rsplit('-').next().unwrap_or(session)
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect()
}
