//! The agent-runner (PROTOCOL §5): one per container, polling its session's `inbound.db`
//! (read-only), driving a provider, writing replies and acks to `outbound.db`.
//!
//! **Model.** [`AgentRunner::step`] is one poll iteration of bounded work: take the pending
//! messages, either as a new batch (commands handled, the rest formatted into a prompt and a
//! provider query started) or as follow-ups pushed into the running query; then pump the
//! provider events that are due now, turning results into reply rows and tool calls into rows.
//! A provider turn never blocks a step: the query is polled with the current time and says
//! when it wants to be polled again.
//!
//! **One conversation per turn** (PROTOCOL §5 Decision). A batch and the turn it starts serve
//! one conversation (`channel_type`, `platform_id`, `thread_id`), so every reply of the turn goes
//! back where its messages came from (another agent's message names its sending session in
//! `thread_id`, and is answered there). A pending message of another conversation is neither
//! batched nor pushed: it and the rows behind it wait for the next batch, in seq order, and the
//! running turn is ended so that batch comes as soon as the turn has answered what it holds.
//!
//! **What it must survive.** The process may die between any two steps: a message is claimed
//! (`processing`) before it reaches the provider and acked `completed`/`failed` only when the
//! query that consumed it is over, so a dead container's claims are simply taken again by the
//! next one, except the messages of a batch that already has output, which are acked instead
//! of answered twice (the `claim_batches` table of `outbound.db` says which batch a claim
//! belongs to; a follow-up joins its batch there in the same transaction as the result that
//! ends its turn, so an answered follow-up is acked and an unanswered one is taken again). A
//! provider that neither answers nor finishes is ended after the idle timeout and aborted one
//! timeout later, and a message left without a result then ends `failed` with an error reply
//! ("no silent success", see `finish_query`). A write that fails leaves nothing half done: a
//! provider event whose effect could not be stored is kept and applied again at the next step.
//! The inbound file may be missing or unreadable for a while; that is "nothing pending", never
//! a crash. Bad rows (content that is not JSON, unknown kinds, huge content) are formatted or
//! acked, never skipped forever.

pub mod commands;
pub mod formatter;
pub mod mock;
pub(crate) mod store;
pub mod tools;

pub use store::ClaimCleanup;
pub use tools::{ReplyTarget, ToolOutcome};

use crate::config::{Heartbeat, RunnerConfig};
use crate::env::{Env, Millis};
use crate::error::IoResultExt;
use crate::model::{kind, parse_content, status, InboundRow, OutboundRow};
use crate::provider::{Provider, ProviderEvent, ProviderQuery, QueryPoll};
use crate::time::format_instant;
use crate::Result;
use commands::Command;
use formatter::{format_prompt, PromptPart};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::rc::Rc;
use store::RunnerStore;
use tools::ToolContext;

/// At most this many inbound rows are taken per step; the rest wait for the next one.
pub const BATCH_ROWS_MAX: usize = 64;

/// The reply to a message whose turn ended without a result (PROTOCOL §5 "no silent success").
pub const NO_ANSWER_TEXT: &str =
    "Error: no answer from the provider (the turn ended without a result)";

/// At most this many provider events are handled per step.
pub const EVENTS_PER_STEP_MAX: usize = 64;

/// What one poll iteration asks of its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerStep {
    /// When to call [`AgentRunner::step`] again (this side's clock).
    pub next_wake_ms: Millis,
    /// `Some(code)`: the process must exit now with `code` (a provider that crashed it).
    pub exit_code: Option<i32>,
}

/// The agent-runner of one session.
pub struct AgentRunner {
    env: Rc<dyn Env>,
    config: RunnerConfig,
    provider: Box<dyn Provider>,
    store: RunnerStore,
    /// The provider session to resume (from the last `Init`); `/clear` drops it.
    session_id: Option<String>,
    active: Option<ActiveQuery>,
    /// A provider event whose effect could not be written yet; applied first at the next step.
    stalled_event: Option<ProviderEvent>,
    claim_cleanup: ClaimCleanup,
    /// Messages a dead container had claimed and not answered. One of them may be what killed
    /// it (a turn that crashes the process), so each is retried in a batch of its own: a
    /// poison message then fails alone, after its tries, instead of taking its neighbours.
    suspects: std::collections::BTreeSet<String>,
    /// Set once the provider exited the process: every later step repeats it and does nothing.
    exit_code: Option<i32>,
}

/// A running provider query and the messages it consumed.
struct ActiveQuery {
    query: Box<dyn ProviderQuery>,
    reply: ReplyTarget,
    /// Messages acked `processing` for this query (batch and follow-ups), acked at its end.
    claimed: Vec<String>,
    /// The messages of each input (the prompt, then each push) whose turn has not ended yet,
    /// oldest first: a result that ends a turn answers the front one.
    unanswered_inputs: VecDeque<Vec<String>>,
    /// A non-retryable error happened: the claimed messages end `failed`.
    failed: bool,
    /// A provider error wrote its `Error: …` reply: the turn's failure has been told.
    error_replied: bool,
    /// The front input has had a result that did not end its turn yet (it was answered).
    front_has_result: bool,
    /// Last provider event or pushed input, for the idle timeout.
    last_input_ms: Millis,
    /// When `end()` was called: from then on no more follow-ups are taken.
    ended_at_ms: Option<Millis>,
    /// The provider said it is done; only the final acks remain to be written.
    done: bool,
    /// When the provider asked to be polled next.
    provider_wake_ms: Option<Millis>,
    question: Option<WaitingQuestion>,
}

/// An `ask_user_question` call waiting for its answer row.
struct WaitingQuestion {
    call_id: String,
    question_id: String,
    deadline_ms: Millis,
}

/// What to do with one pending row.
enum Disposition {
    /// Part of the prompt: formatted, or raw for a command.
    Prompt { raw: bool },
    /// Admin `/clear`: drop the provider session, reply, ack completed.
    ClearSession,
    /// Reply with this text, ack completed.
    Reply(String),
    /// Ack completed, nothing sent.
    Drop(&'static str),
    /// The answer to a question: `(question id, selected option)`.
    Answer(String, Value),
    /// Leave it pending for a later batch; `blocking` rows also hold back the rows after them.
    Later { blocking: bool },
}

/// The effects of one intake, written in one transaction before anything reaches the provider.
#[derive(Default)]
struct Intake {
    prompt_rows: Vec<(InboundRow, bool)>,
    replies: Vec<OutboundRow>,
    acks: Vec<(String, &'static str)>,
    clear_session: bool,
    answer: Option<Value>,
    /// A held-back command wants the running query to end.
    end_query: bool,
}

impl AgentRunner {
    /// Opens both DBs (outbound read-write, inbound read-only), clears claims left by a dead
    /// container (PROTOCOL §5 "On start") and returns a runner ready to step.
    pub fn start(
        env: Rc<dyn Env>,
        config: RunnerConfig,
        provider: Box<dyn Provider>,
    ) -> Result<AgentRunner> {
        let outbox = config.paths.outbox();
        env.create_dir_all(&outbox).at(&outbox)?;
        let mut store = RunnerStore::open(&*env, &config.paths, &config.design)?;
        let (claim_cleanup, suspects) = store.clear_stale_claims(env.now_ms())?;
        if claim_cleanup != ClaimCleanup::default() {
            tracing::info!(?claim_cleanup, "cleared claims of a previous container");
        }
        let mut runner = AgentRunner {
            env,
            config,
            provider,
            store,
            session_id: None,
            active: None,
            stalled_event: None,
            claim_cleanup,
            suspects: suspects.into_iter().collect(),
            exit_code: None,
        };
        runner.touch_heartbeat();
        Ok(runner)
    }

    /// One poll iteration: bounded work, then when to run next.
    ///
    /// `Err` means `outbound.db` could not be written (busy, full, failing disk). Nothing is
    /// half done then: the provider event whose effect failed is kept and applied first at the
    /// next call, so the driver simply calls `step` again later (the live driver does, at the
    /// idle interval). An unreadable `inbound.db` is not an error: nothing is pending this
    /// time. Once the provider has exited the process, every call returns the same
    /// `exit_code` and does nothing.
    pub fn step(&mut self) -> Result<RunnerStep> {
        let now_ms = self.env.now_ms();
        if let Some(code) = self.exit_code {
            return Ok(self.exit(code, now_ms));
        }
        self.touch_heartbeat();
        if let Some(event) = self.stalled_event.take() {
            if let Some(code) = self.handle_event(event, now_ms)? {
                return Ok(self.exit(code, now_ms));
            }
        }
        if self.active.as_ref().is_some_and(|active| active.done) {
            self.finish_query(now_ms)?;
        }
        self.take_pending(now_ms)?;
        self.expire_question(now_ms);
        self.end_idle_query(now_ms);
        let mut finished = false;
        for _ in 0..EVENTS_PER_STEP_MAX {
            let Some(active) = self.active.as_mut() else {
                break;
            };
            let poll = match active.done {
                true => QueryPoll::Done,
                false => active.query.poll(now_ms),
            };
            match poll {
                QueryPoll::Event(event) => {
                    active.last_input_ms = now_ms;
                    self.touch_heartbeat();
                    if let Some(code) = self.handle_event(event, now_ms)? {
                        return Ok(self.exit(code, now_ms));
                    }
                }
                QueryPoll::Pending { wake_at_ms } => {
                    active.provider_wake_ms = wake_at_ms;
                    return Ok(self.wake(now_ms, now_ms + self.config.poll_interval_active_ms));
                }
                QueryPoll::Done => {
                    active.done = true;
                    self.finish_query(now_ms)?;
                    finished = true;
                    break;
                }
            }
        }
        // A full event budget or a finished query: more work may be waiting right now.
        let more_now = finished || self.active.is_some();
        let idle_wake = now_ms + self.config.poll_interval_idle_ms;
        Ok(self.wake(now_ms, if more_now { now_ms } else { idle_wake }))
    }

    /// The provider session a new query resumes (`None` before the first `Init` and after
    /// `/clear`).
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// True while a provider query is running.
    pub fn query_running(&self) -> bool {
        self.active.is_some()
    }

    /// What [`AgentRunner::start`] did with the claims of a previous container.
    pub fn claim_cleanup(&self) -> ClaimCleanup {
        self.claim_cleanup
    }

    fn wake(&self, now_ms: Millis, planned_ms: Millis) -> RunnerStep {
        let mut wake_ms = planned_ms;
        if let Some(active) = &self.active {
            let deadlines = [
                active.provider_wake_ms,
                active.question.as_ref().map(|q| q.deadline_ms),
            ];
            for deadline in deadlines.into_iter().flatten() {
                wake_ms = wake_ms.min(deadline.max(now_ms));
            }
        }
        RunnerStep {
            next_wake_ms: wake_ms,
            exit_code: None,
        }
    }

    fn exit(&mut self, code: i32, now_ms: Millis) -> RunnerStep {
        self.exit_code = Some(code);
        RunnerStep {
            next_wake_ms: now_ms,
            exit_code: Some(code),
        }
    }

    /// Shows the host this runner is alive: `.heartbeat`'s mtime, or (under a design with the
    /// heartbeat in the DB) a row of the file this side writes.
    fn touch_heartbeat(&mut self) {
        if self.config.design.heartbeat == Heartbeat::DbUpdate {
            if let Err(error) = self.store.beat(self.env.now_ms()) {
                tracing::warn!(%error, "cannot write the heartbeat row");
            }
            return;
        }
        let heartbeat = self.config.paths.heartbeat();
        if let Err(error) = self.env.touch(&heartbeat) {
            tracing::warn!(%error, path = %heartbeat.display(), "cannot touch heartbeat");
        }
    }

    /// Takes pending rows: a new batch when idle, follow-ups and answers while a query runs.
    fn take_pending(&mut self, now_ms: Millis) -> Result<()> {
        let rows = self.store.pending(&*self.env, now_ms, BATCH_ROWS_MAX);
        if rows.is_empty() {
            return Ok(());
        }
        let intake = self.plan_intake(rows, now_ms);
        self.apply_intake(intake, now_ms)
    }

    fn plan_intake(&self, rows: Vec<InboundRow>, now_ms: Millis) -> Intake {
        let running = self.active.as_ref();
        let accepting = running.is_none_or(|active| active.ended_at_ms.is_none());
        let mut intake = Intake::default();
        let mut held_back = false;
        for row in rows {
            match self.disposition(&row, running.is_some()) {
                Disposition::Prompt { raw } => {
                    if !accepting || held_back {
                        continue;
                    }
                    if !self.same_conversation(&row, &intake) {
                        // PROTOCOL §5 "one conversation per turn": it waits for its own turn,
                        // and so do the rows behind it (seq order). A running turn is ended so
                        // that turn comes without waiting out the idle timeout.
                        held_back = true;
                        intake.end_query |= running.is_some();
                        continue;
                    }
                    let suspect = self.suspects.contains(&row.id);
                    if suspect && (running.is_some() || !intake.prompt_rows.is_empty()) {
                        held_back = true;
                        continue;
                    }
                    intake.acks.push((row.id.clone(), status::PROCESSING));
                    intake.prompt_rows.push((row, raw));
                    held_back = suspect;
                }
                Disposition::ClearSession => {
                    // Messages before a /clear belong to the old session: they go first.
                    if !intake.prompt_rows.is_empty() || held_back {
                        held_back = true;
                        continue;
                    }
                    intake.clear_session = true;
                    let text = commands::SESSION_CLEARED_TEXT.to_string();
                    intake.replies.push(self.reply_row(&row, text, now_ms));
                    intake.acks.push((row.id, status::COMPLETED));
                }
                Disposition::Reply(text) => {
                    intake.replies.push(self.reply_row(&row, text, now_ms));
                    intake.acks.push((row.id, status::COMPLETED));
                }
                Disposition::Drop(why) => {
                    tracing::info!(id = %row.id, kind = %row.kind, why, "acked without a turn");
                    intake.acks.push((row.id, status::COMPLETED));
                }
                Disposition::Answer(question_id, selected) => {
                    let awaited = running
                        .and_then(|active| active.question.as_ref())
                        .is_some_and(|q| q.question_id == question_id);
                    if awaited {
                        intake.answer = Some(selected);
                    } else {
                        tracing::info!(id = %row.id, %question_id, "answer to no waiting question");
                    }
                    intake.acks.push((row.id, status::COMPLETED));
                }
                Disposition::Later { blocking } => {
                    if blocking {
                        held_back = true;
                        intake.end_query = true;
                    }
                }
            }
        }
        intake
    }

    /// True when `row` belongs to the conversation (`channel_type`, `platform_id`,
    /// `thread_id`) of the running turn, or of the batch being formed; any row can start one.
    fn same_conversation(&self, row: &InboundRow, intake: &Intake) -> bool {
        let running = self.active.as_ref().map(|active| &active.reply.route);
        let forming = intake.prompt_rows.first().map(|(first, _)| &first.route);
        running.or(forming).is_none_or(|route| *route == row.route)
    }

    fn disposition(&self, row: &InboundRow, running: bool) -> Disposition {
        let content = parse_content(&row.content);
        match row.kind.as_str() {
            kind::SYSTEM => {
                return match content.get("questionId") {
                    Some(id) => Disposition::Answer(
                        id.as_str().map_or_else(|| id.to_string(), str::to_string),
                        content
                            .get("selectedOption")
                            .cloned()
                            .unwrap_or(Value::Null),
                    ),
                    None if running => Disposition::Later { blocking: false },
                    None => Disposition::Prompt { raw: false },
                };
            }
            kind::CHAT | kind::CHAT_SDK | kind::TASK | kind::WEBHOOK => {}
            _ => return Disposition::Drop("unknown kind"),
        }
        let admin = self.config.admin_user_id.as_deref();
        match Command::classify(&row.kind, &content, admin) {
            Command::None => Disposition::Prompt { raw: false },
            Command::Passthrough { .. } => Disposition::Prompt { raw: true },
            Command::Filtered { .. } => Disposition::Drop("filtered command"),
            Command::Admin {
                command,
                allowed: false,
            } => Disposition::Reply(commands::permission_denied_text(&command)),
            Command::Admin { .. } if running => Disposition::Later { blocking: true },
            Command::Admin { command, .. } if command == commands::CLEAR_COMMAND => {
                Disposition::ClearSession
            }
            Command::Admin { .. } => Disposition::Prompt { raw: true },
        }
    }

    fn apply_intake(&mut self, mut intake: Intake, now_ms: Millis) -> Result<()> {
        // The claims of a new query form its batch, named by its first message.
        let batch_id = match (&self.active, intake.prompt_rows.first()) {
            (None, Some((first, _))) => Some(first.id.clone()),
            _ => None,
        };
        self.store.write(
            &*self.env,
            &mut intake.replies,
            &intake.acks,
            batch_id.as_deref(),
            now_ms,
        )?;
        if intake.clear_session {
            self.session_id = None;
        }
        if let Some(active) = self.active.as_mut() {
            if let (Some(selected), Some(question)) = (intake.answer, active.question.take()) {
                active
                    .query
                    .tool_result(&question.call_id, Ok(selected), now_ms);
                active.last_input_ms = now_ms;
            }
            if intake.end_query && active.ended_at_ms.is_none() {
                active.query.end();
                active.ended_at_ms = Some(now_ms);
            }
        }
        if intake.prompt_rows.is_empty() {
            return Ok(());
        }
        let prompt = self.format(&intake.prompt_rows);
        let claimed: Vec<String> = intake
            .prompt_rows
            .iter()
            .map(|(r, _)| r.id.clone())
            .collect();
        match self.active.as_mut() {
            Some(active) => {
                active.query.push(&prompt, now_ms);
                active.last_input_ms = now_ms;
                active.unanswered_inputs.push_back(claimed.clone());
                active.claimed.extend(claimed);
            }
            None => {
                let first = &intake.prompt_rows[0].0;
                let reply = ReplyTarget {
                    message_id: first.id.clone(),
                    route: first.route.clone(),
                };
                let query = self
                    .provider
                    .query(&prompt, self.session_id.as_deref(), now_ms);
                self.active = Some(ActiveQuery {
                    query,
                    reply,
                    unanswered_inputs: VecDeque::from([claimed.clone()]),
                    claimed,
                    failed: false,
                    error_replied: false,
                    front_has_result: false,
                    last_input_ms: now_ms,
                    ended_at_ms: None,
                    done: false,
                    provider_wake_ms: None,
                    question: None,
                });
            }
        }
        Ok(())
    }

    fn format(&self, rows: &[(InboundRow, bool)]) -> String {
        let texts: Vec<String> = rows
            .iter()
            .map(|(row, raw)| match raw {
                true => model_text(row),
                false => String::new(),
            })
            .collect();
        let parts: Vec<PromptPart<'_>> = rows
            .iter()
            .zip(&texts)
            .map(|((row, raw), text)| match raw {
                true => PromptPart::Raw(text),
                false => PromptPart::Message(row),
            })
            .collect();
        format_prompt(&parts, self.config.time_zone)
    }

    /// A chat row answering `row` on its own route (command replies).
    fn reply_row(&self, row: &InboundRow, text: String, now_ms: Millis) -> OutboundRow {
        let target = ReplyTarget {
            message_id: row.id.clone(),
            route: row.route.clone(),
        };
        self.chat_row(&target, text, now_ms)
    }

    fn chat_row(&self, target: &ReplyTarget, text: String, now_ms: Millis) -> OutboundRow {
        OutboundRow {
            id: self.env.new_id("out"),
            seq: None,
            in_reply_to: Some(target.message_id.clone()),
            timestamp: format_instant(now_ms),
            deliver_after: None,
            recurrence: None,
            kind: kind::CHAT.to_string(),
            route: target.route.clone(),
            content: json!({ "text": text }).to_string(),
        }
    }

    fn expire_question(&mut self, now_ms: Millis) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        if let Some(question) = active.question.take_if(|q| q.deadline_ms <= now_ms) {
            let message = format!(
                "ask_user_question: no answer to question {} before the timeout",
                question.question_id
            );
            active
                .query
                .tool_result(&question.call_id, Err(message), now_ms);
            active.last_input_ms = now_ms;
        }
    }

    /// Ends a query that has had no event and no input for the idle timeout (not while a
    /// question waits: its own timeout bounds that wait). A provider still quiet and not done
    /// one more timeout after that is aborted and taken as done, so a hung provider cannot
    /// hold the batch forever.
    fn end_idle_query(&mut self, now_ms: Millis) {
        let timeout_ms = self.config.query_idle_timeout_ms;
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let quiet_since_ms = active
            .last_input_ms
            .max(active.ended_at_ms.unwrap_or(Millis::MIN));
        if active.done || active.question.is_some() || now_ms - quiet_since_ms < timeout_ms {
            return;
        }
        match active.ended_at_ms {
            None => {
                active.query.end();
                active.ended_at_ms = Some(now_ms);
            }
            Some(_) => {
                tracing::warn!("provider still busy long after the query was ended; aborting it");
                active.query.abort();
                active.done = true;
            }
        }
    }

    /// Applies one event; on a storage error the event is kept for the next step.
    fn handle_event(&mut self, event: ProviderEvent, now_ms: Millis) -> Result<Option<i32>> {
        match self.apply_event(&event, now_ms) {
            Ok(exit) => Ok(exit),
            Err(error) => {
                self.stalled_event = Some(event);
                Err(error)
            }
        }
    }

    fn apply_event(&mut self, event: &ProviderEvent, now_ms: Millis) -> Result<Option<i32>> {
        match event {
            ProviderEvent::Init { session_id } => self.session_id = Some(session_id.clone()),
            ProviderEvent::Result { text, ends_turn } => {
                let text = text.as_deref().filter(|t| !t.trim().is_empty());
                self.write_result(text, *ends_turn, now_ms)?;
            }
            ProviderEvent::Activity => {}
            ProviderEvent::Progress { message } => tracing::info!(%message, "provider progress"),
            ProviderEvent::Error {
                message,
                retryable,
                classification,
            } => {
                tracing::warn!(%message, retryable, ?classification, "provider error");
                self.write_reply(format!("Error: {message}"), now_ms)?;
                if let Some(active) = self.active.as_mut() {
                    active.error_replied = true;
                    active.failed |= !retryable;
                }
            }
            ProviderEvent::ToolCall {
                call_id,
                name,
                args,
            } => self.call_tool(call_id, name, args, now_ms)?,
            ProviderEvent::Exit { code } => return Ok(Some(*code)),
        }
        Ok(None)
    }

    /// A result: its text as a reply, and, when it ends a turn, the messages of that turn's
    /// input recorded as answered in the batch, in the same transaction, so a restart neither
    /// answers them again nor drops them.
    fn write_result(&mut self, text: Option<&str>, ends_turn: bool, now_ms: Millis) -> Result<()> {
        let Some(active) = self.active.as_ref() else {
            return Ok(());
        };
        let answered: Vec<(String, &'static str)> = match ends_turn {
            true => active
                .unanswered_inputs
                .front()
                .into_iter()
                .flatten()
                .map(|id| (id.clone(), status::PROCESSING))
                .collect(),
            false => Vec::new(),
        };
        let mut rows: Vec<OutboundRow> = text
            .map(|text| self.chat_row(&active.reply, text.to_string(), now_ms))
            .into_iter()
            .collect();
        let batch_id = active.reply.message_id.clone();
        self.store
            .write(&*self.env, &mut rows, &answered, Some(&batch_id), now_ms)?;
        if let Some(active) = self.active.as_mut() {
            active.front_has_result = !ends_turn;
            if ends_turn {
                active.unanswered_inputs.pop_front();
            }
        }
        Ok(())
    }

    /// A chat row to the current turn's conversation, citing its batch's first message.
    fn write_reply(&mut self, text: String, now_ms: Millis) -> Result<()> {
        let Some(active) = self.active.as_ref() else {
            return Ok(());
        };
        let mut row = self.chat_row(&active.reply, text, now_ms);
        self.store.write(
            &*self.env,
            std::slice::from_mut(&mut row),
            &[],
            None,
            now_ms,
        )
    }

    fn call_tool(&mut self, call_id: &str, name: &str, args: &Value, now_ms: Millis) -> Result<()> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let answering = active
            .unanswered_inputs
            .front()
            .into_iter()
            .flatten()
            .map(|id| (id.clone(), status::PROCESSING))
            .collect();
        let mut ctx = ToolContext {
            env: &*self.env,
            config: &self.config,
            store: &mut self.store,
            reply: &active.reply,
            now_ms,
            answering,
        };
        match tools::run_tool(&mut ctx, name, args)? {
            ToolOutcome::Finished(result) => {
                if let Err(message) = &result {
                    tracing::info!(name, %message, "tool call refused");
                }
                active.query.tool_result(call_id, result, now_ms);
            }
            ToolOutcome::AwaitAnswer {
                question_id,
                deadline_ms,
            } => {
                active.question = Some(WaitingQuestion {
                    call_id: call_id.to_string(),
                    question_id,
                    deadline_ms,
                });
            }
        }
        Ok(())
    }

    /// Acks every message the finished query consumed, then forgets the query.
    ///
    /// **No silent success** (PROTOCOL §5 Decision). An input whose turn had a result (text, or
    /// an empty result the provider chose) is acked `completed`. One whose turn never had a
    /// result — the provider went quiet and was ended or aborted for idleness, or failed — is
    /// acked `failed`, with an `Error: …` reply in its conversation unless a provider error
    /// already wrote one. Failing, not retrying, is the choice: tries are the host's to count
    /// (§8), and it counts them only for dead containers, so a claim released here would be
    /// taken again at once, without bound, by a provider that stays quiet; a failed ack with an
    /// error reply is final and tells the user. A fatal error fails every message of the query.
    fn finish_query(&mut self, now_ms: Millis) -> Result<()> {
        let Some(active) = self.active.as_ref() else {
            return Ok(());
        };
        let unanswered: Vec<&Vec<String>> = active.unanswered().collect();
        let failed = |id: &String| active.failed || unanswered.iter().any(|ids| ids.contains(id));
        let acks: Vec<(String, &'static str)> = active
            .claimed
            .iter()
            .map(|id| match failed(id) {
                true => (id.clone(), status::FAILED),
                false => (id.clone(), status::COMPLETED),
            })
            .collect();
        let mut replies: Vec<OutboundRow> = match active.error_replied {
            true => Vec::new(),
            false => unanswered
                .iter()
                .filter_map(|ids| ids.first())
                .map(|id| self.no_answer_row(id, &active.reply, now_ms))
                .collect(),
        };
        self.store
            .write(&*self.env, &mut replies, &acks, None, now_ms)?;
        self.active = None;
        Ok(())
    }

    /// The `Error: …` reply to a message whose turn ended without a result.
    fn no_answer_row(&self, message_id: &str, turn: &ReplyTarget, now_ms: Millis) -> OutboundRow {
        tracing::warn!(message = message_id, "turn ended without a result; failed");
        let target = ReplyTarget {
            message_id: message_id.to_string(),
            route: turn.route.clone(),
        };
        self.chat_row(&target, NO_ANSWER_TEXT.to_string(), now_ms)
    }
}

impl ActiveQuery {
    /// The inputs whose turn ended without any result, oldest first.
    fn unanswered(&self) -> impl Iterator<Item = &Vec<String>> {
        let skip = usize::from(self.front_has_result);
        self.unanswered_inputs
            .iter()
            .skip(skip)
            .filter(|ids| !ids.is_empty())
    }
}

/// The text of a command message, as typed.
fn model_text(row: &InboundRow) -> String {
    crate::model::text_of(&parse_content(&row.content))
        .trim()
        .to_string()
}
