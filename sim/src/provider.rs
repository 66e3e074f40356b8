//! The provider boundary, watched: every query the agent-runner starts, every follow-up it
//! pushes, every event the provider returns and how the runner ends the query, recorded as
//! typed events without changing what passes through.
//!
//! This is the world's vantage point inside the container: the turn a message was part of and
//! what the agent answered are facts of the provider boundary, not of the core's bookkeeping.
//! The world drains [`ProviderLog`] after each runner step and records what it holds.
//!
//! It is also where the world learns, in the middle of a runner step, that an answer has been
//! written: the runner polls its query again only once the effect of the last event is stored,
//! so the first call after a result with text is the moment "answer written, ack not yet"
//! (an [`AnswerHook`] runs then; a crash aimed between the two is armed there).

use clawsim_core::env::Millis;
use clawsim_core::provider::{Provider, ProviderEvent, ProviderQuery, QueryPoll};
use clawsim_oracle::event::{prefix_chars, Event, PROMPT_CHARS_KEPT};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;

/// What the provider boundary saw since the world last drained it.
pub type ProviderLog = Rc<RefCell<Vec<Event>>>;

/// Called when the runner has stored a provider answer (a result with text) and not yet
/// acked the messages it answers.
pub type AnswerHook = Rc<dyn Fn()>;

/// A provider that records what crosses its boundary into a [`ProviderLog`].
pub struct RecordingProvider<P> {
    inner: P,
    log: ProviderLog,
    answer_hook: Option<AnswerHook>,
}

impl<P: Provider> RecordingProvider<P> {
    /// Wraps `inner`, recording into `log`.
    pub fn new(inner: P, log: ProviderLog) -> Self {
        Self {
            inner,
            log,
            answer_hook: None,
        }
    }

    /// Runs `hook` each time an answer has been stored (see the module docs).
    pub fn with_answer_hook(mut self, hook: AnswerHook) -> Self {
        self.answer_hook = Some(hook);
        self
    }
}

impl<P: Provider> Provider for RecordingProvider<P> {
    fn query(
        &mut self,
        prompt: &str,
        resume_session_id: Option<&str>,
        now_ms: Millis,
    ) -> Box<dyn ProviderQuery> {
        self.log.borrow_mut().push(Event::TurnStarted {
            prompt: prefix_chars(prompt, PROMPT_CHARS_KEPT),
            prompt_chars: prompt.chars().count(),
            resumed: resume_session_id.is_some(),
        });
        let inner = self.inner.query(prompt, resume_session_id, now_ms);
        Box::new(RecordingQuery {
            inner,
            log: self.log.clone(),
            answer_hook: self.answer_hook.clone(),
            answer_returned: false,
        })
    }
}

/// One query, watched.
struct RecordingQuery {
    inner: Box<dyn ProviderQuery>,
    log: ProviderLog,
    answer_hook: Option<AnswerHook>,
    /// The last poll returned a result with text (not yet known stored).
    answer_returned: bool,
}

impl RecordingQuery {
    fn note(&self, event: Event) {
        self.log.borrow_mut().push(event);
    }
}

impl ProviderQuery for RecordingQuery {
    fn push(&mut self, text: &str, now_ms: Millis) {
        self.note(Event::TurnPushed {
            text: prefix_chars(text, PROMPT_CHARS_KEPT),
        });
        self.inner.push(text, now_ms);
    }

    fn end(&mut self) {
        self.note(Event::TurnEnded);
        self.inner.end();
    }

    fn abort(&mut self) {
        self.note(Event::TurnAborted);
        self.inner.abort();
    }

    fn tool_result(&mut self, call_id: &str, result: Result<Value, String>, now_ms: Millis) {
        self.inner.tool_result(call_id, result, now_ms);
    }

    fn poll(&mut self, now_ms: Millis) -> QueryPoll {
        // Polled again: the runner stored the answer the last poll returned.
        if std::mem::take(&mut self.answer_returned) {
            if let Some(hook) = &self.answer_hook {
                hook();
            }
        }
        let polled = self.inner.poll(now_ms);
        if let QueryPoll::Event(event) = &polled {
            if let Some(fact) = fact_of(event) {
                self.note(fact);
            }
            self.answer_returned = matches!(event, ProviderEvent::Result { text: Some(text), .. }
                if !text.trim().is_empty());
        }
        polled
    }
}

/// The record of a provider event worth keeping (progress and activity only touch the
/// heartbeat, which the record does not need).
fn fact_of(event: &ProviderEvent) -> Option<Event> {
    Some(match event {
        ProviderEvent::Result { text, .. } => Event::ProviderResult { text: text.clone() },
        ProviderEvent::Error {
            message, retryable, ..
        } => Event::ProviderError {
            message: message.clone(),
            retryable: *retryable,
        },
        ProviderEvent::ToolCall { name, args, .. } => Event::ToolCalled {
            name: name.clone(),
            args: args.clone(),
        },
        ProviderEvent::Exit { code } => Event::ProviderExit { code: *code },
        ProviderEvent::Init { .. } | ProviderEvent::Progress { .. } | ProviderEvent::Activity => {
            return None
        }
    })
}
