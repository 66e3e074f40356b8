//! The provider interface (PROTOCOL §5): what the agent-runner asks a model for.
//!
//! A query is a sans-IO state machine: the runner pushes follow-ups and tool results into it and
//! polls it with the current time; it answers with the next event, or with the instant it wants
//! to be polled again. The live driver and the simulator both just call [`ProviderQuery::poll`]
//! when that instant comes, so a long provider turn never blocks other actors.

use crate::env::Millis;
use serde_json::Value;

/// Events a query yields.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    Init {
        session_id: String,
    },
    /// An answer. `ends_turn` is true on the result that closes the turn of one input (the
    /// prompt, or one push), inputs being answered in the order given; an SDK emits one result
    /// per turn, so for it every result ends one. The runner uses it to know which follow-ups
    /// have been answered, so a crash neither answers them twice nor loses them.
    Result {
        text: Option<String>,
        ends_turn: bool,
    },
    Error {
        message: String,
        retryable: bool,
        classification: Option<String>,
    },
    Progress {
        message: String,
    },
    Activity,
    /// The model calls a tool; the runner answers with [`ProviderQuery::tool_result`].
    ToolCall {
        call_id: String,
        name: String,
        args: Value,
    },
    /// The provider takes the whole process down (a crashing SDK); the driver exits with `code`.
    Exit {
        code: i32,
    },
}

/// What a poll of a query gives.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryPoll {
    Event(ProviderEvent),
    /// Nothing now; poll again at `wake_at_ms`, or when something is pushed if `None`.
    Pending {
        wake_at_ms: Option<Millis>,
    },
    /// The query is over (ended, aborted, or finished after a fatal error).
    Done,
}

/// One running query.
pub trait ProviderQuery {
    /// A follow-up message for the running turn.
    fn push(&mut self, text: &str, now_ms: Millis);
    /// No more input: finish what is under way, then be done.
    fn end(&mut self);
    /// Stop at once.
    fn abort(&mut self);
    /// The answer to a `ToolCall` event.
    fn tool_result(&mut self, call_id: &str, result: Result<Value, String>, now_ms: Millis);
    /// The next event due at `now_ms`, or when to ask again.
    fn poll(&mut self, now_ms: Millis) -> QueryPoll;
}

/// A model behind the agent-runner.
pub trait Provider {
    /// Starts a query with `prompt`, resuming `resume_session_id` when given.
    fn query(
        &mut self,
        prompt: &str,
        resume_session_id: Option<&str>,
        now_ms: Millis,
    ) -> Box<dyn ProviderQuery>;
}
