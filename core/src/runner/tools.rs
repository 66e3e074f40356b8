//! The tools the provider can call (PROTOCOL §5): each writes one `messages_out` row with an odd
//! seq, routed to the current batch unless the call says otherwise, and answers with a JSON
//! result or an error text the model can read.
//!
//! A bad argument is the model's mistake, so it becomes an error *result*, never a runner
//! failure; only a storage error fails the call, and the runner then retries it whole (nothing
//! was committed). `send_file` confines the file name to `outbox/<id>/`, because the host copies
//! that folder to the outside world. `ask_user_question` does not answer at once: it writes the
//! question card and leaves the runner waiting for the host's answer row.

use crate::config::RunnerConfig;
use crate::env::{Env, Millis};
use crate::error::{Error, Result};
use crate::model::{kind, status, OutboundRow, Route, AGENT_CHANNEL};
use crate::runner::store::RunnerStore;
use crate::time::{format_instant, parse_instant};
use serde_json::{json, Map, Value};
use std::path::{Component, Path};

/// Names of every tool the runner serves.
pub const TOOL_NAMES: &[&str] = &[
    "send_message",
    "send_file",
    "edit_message",
    "add_reaction",
    "send_card",
    "ask_user_question",
    "schedule_task",
    "list_tasks",
    "cancel_task",
    "pause_task",
    "resume_task",
    "send_to_agent",
];

/// Where tool output goes unless told otherwise: the first message of the current batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTarget {
    pub message_id: String,
    pub route: Route,
}

/// What running a tool call gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutcome {
    /// Answer the call now.
    Finished(std::result::Result<Value, String>),
    /// A question card was written; the call is answered when the answer row with
    /// `question_id` arrives, or with an error at `deadline_ms`.
    AwaitAnswer {
        question_id: String,
        deadline_ms: Millis,
    },
}

/// Everything a tool may use.
pub(crate) struct ToolContext<'a> {
    pub env: &'a dyn Env,
    pub config: &'a RunnerConfig,
    pub store: &'a mut RunnerStore,
    pub reply: &'a ReplyTarget,
    pub now_ms: Millis,
    /// The messages whose turn is running, as `processing` claims: a tool row written for them
    /// is their output, so it records them in the batch in the same transaction (output-sent
    /// protection then keeps a restart from running their turn, and this tool, again).
    pub answering: Vec<(String, &'static str)>,
}

impl ToolContext<'_> {
    /// Writes tool rows, recording the messages being answered as part of the batch.
    fn write_rows(&mut self, rows: &mut [OutboundRow]) -> Result<(), Error> {
        let batch_id = self.reply.message_id.clone();
        self.store.write(
            self.env,
            rows,
            &self.answering,
            Some(&batch_id),
            self.now_ms,
        )
    }
}

/// Why a call did not go through: the model's mistake, or the store's.
enum ToolFailure {
    Refused(String),
    Storage(Error),
}

impl From<Error> for ToolFailure {
    fn from(error: Error) -> Self {
        ToolFailure::Storage(error)
    }
}

type ToolResult = std::result::Result<Value, ToolFailure>;

/// Runs one tool call. `Err` only for a storage error; nothing was committed then.
pub(crate) fn run_tool(ctx: &mut ToolContext<'_>, name: &str, args: &Value) -> Result<ToolOutcome> {
    let result = match name {
        "ask_user_question" => return ask_user_question(ctx, args),
        "send_message" => send_message(ctx, args),
        "send_file" => send_file(ctx, args),
        "edit_message" => edit_message(ctx, args),
        "add_reaction" => add_reaction(ctx, args),
        "send_card" => send_card(ctx, args),
        "schedule_task" => schedule_task(ctx, args),
        "list_tasks" => list_tasks(ctx, args),
        "cancel_task" | "pause_task" | "resume_task" => task_action(ctx, name, args),
        "send_to_agent" => send_to_agent(ctx, args),
        _ => Err(refused(format!(
            "unknown tool {name:?}; tools are {}",
            TOOL_NAMES.join(", ")
        ))),
    };
    match result {
        Ok(value) => Ok(ToolOutcome::Finished(Ok(value))),
        Err(ToolFailure::Refused(message)) => Ok(ToolOutcome::Finished(Err(message))),
        Err(ToolFailure::Storage(error)) => Err(error),
    }
}

fn send_message(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let text = required_str(args, "text")?;
    let channel = optional_str(args, "channel")?;
    let platform_id = optional_str(args, "platformId")?;
    let thread_id = optional_str(args, "threadId")?;
    let batch = &ctx.reply.route;
    // Naming another chat drops the batch's thread: a thread id only means something in its own
    // chat.
    let elsewhere = channel.is_some() || platform_id.is_some();
    let route = Route {
        platform_id: platform_id
            .map(str::to_string)
            .or(batch.platform_id.clone()),
        channel_type: channel.map(str::to_string).or(batch.channel_type.clone()),
        thread_id: match (thread_id, elsewhere) {
            (Some(thread), _) => Some(thread.to_string()),
            (None, true) => None,
            (None, false) => batch.thread_id.clone(),
        },
    };
    let mut row = new_row(ctx, kind::CHAT, json!({ "text": text }));
    row.route = route;
    insert(ctx, row)
}

fn send_file(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let path = required_str(args, "path")?;
    let source = ctx.config.paths.root.join(path);
    let file_name = match optional_str(args, "filename")? {
        Some(name) => name.to_string(),
        None => Path::new(path)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| refused(format!("send_file: {path:?} names no file")))?,
    };
    if !is_plain_file_name(&file_name) {
        return Err(refused(format!(
            "send_file: file name {file_name:?} must stay inside the outbox folder \
             (no '/', '..' or absolute path)"
        )));
    }
    let data = ctx
        .env
        .read_file(&source)
        .map_err(|e| refused(format!("send_file: cannot read {}: {e}", source.display())))?;
    let mut content = Map::new();
    if let Some(text) = optional_str(args, "text")? {
        content.insert("text".into(), json!(text));
    }
    content.insert("files".into(), json!([file_name]));
    let row = new_row(ctx, kind::CHAT, Value::Object(content));
    // The file is in place before the row exists, so the host never sees a row without it.
    let folder = ctx.config.paths.outbox_for(&row.id);
    let copied = ctx
        .env
        .create_dir_all(&folder)
        .and_then(|()| ctx.env.write_file(&folder.join(&file_name), &data));
    if let Err(e) = copied {
        let _ = ctx.env.remove_dir_all(&folder);
        return Err(refused(format!(
            "send_file: cannot write {}: {e}",
            folder.display()
        )));
    }
    insert(ctx, row).inspect_err(|_| {
        let _ = ctx.env.remove_dir_all(&folder);
    })
}

/// A single ordinary path component: no separator, no `.`/`..`, not absolute.
fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.contains(['/', '\\', '\0'])
}

fn edit_message(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let message_id = message_id_for_seq(ctx, args)?;
    let text = required_str(args, "text")?;
    let content = json!({"operation": "edit", "messageId": message_id, "text": text});
    let row = new_row(ctx, kind::CHAT, content);
    insert(ctx, row)
}

fn add_reaction(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let message_id = message_id_for_seq(ctx, args)?;
    let emoji = required_str(args, "emoji")?;
    let content = json!({"operation": "reaction", "messageId": message_id, "emoji": emoji});
    let row = new_row(ctx, kind::CHAT, content);
    insert(ctx, row)
}

/// `messageId` is the seq the agent saw; the row carries the id of the message with that seq.
fn message_id_for_seq(
    ctx: &mut ToolContext<'_>,
    args: &Value,
) -> std::result::Result<String, ToolFailure> {
    let cited = args.get("messageId");
    let seq = cited
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
        .ok_or_else(|| refused("messageId must be the seq number of a message".into()))?;
    ctx.store
        .id_for_seq(ctx.env, seq)?
        .ok_or_else(|| refused(format!("no message has seq {seq}")))
}

fn send_card(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let card = args
        .get("card")
        .filter(|card| !card.is_null())
        .ok_or_else(|| refused("send_card: card is required".into()))?;
    let mut content = json!({"type": "card", "card": card});
    if let Some(fallback) = optional_str(args, "fallbackText")? {
        content["fallbackText"] = json!(fallback);
    }
    let row = new_row(ctx, kind::CHAT_SDK, content);
    insert(ctx, row)
}

fn ask_user_question(ctx: &mut ToolContext<'_>, args: &Value) -> Result<ToolOutcome> {
    let checked = (|| {
        let question = required_str(args, "question")?;
        let options = args
            .get("options")
            .filter(|options| options.as_array().is_some_and(|o| !o.is_empty()))
            .ok_or_else(|| refused("ask_user_question: options must be a non-empty list".into()))?;
        let timeout_ms = match args.get("timeout") {
            None | Some(Value::Null) => ctx.config.question_timeout_ms,
            Some(seconds) => seconds
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| (s * 1_000.0) as Millis)
                .ok_or_else(|| refused("ask_user_question: timeout must be seconds > 0".into()))?,
        };
        Ok((question.to_string(), options.clone(), timeout_ms))
    })();
    let (question, options, timeout_ms) = match checked {
        Ok(checked) => checked,
        Err(ToolFailure::Refused(message)) => return Ok(ToolOutcome::Finished(Err(message))),
        Err(ToolFailure::Storage(error)) => return Err(error),
    };
    let question_id = ctx.env.new_id("q");
    let content = json!({
        "type": "ask_question",
        "questionId": question_id,
        "question": question,
        "options": options,
    });
    let mut row = new_row(ctx, kind::CHAT_SDK, content);
    ctx.write_rows(std::slice::from_mut(&mut row))?;
    Ok(ToolOutcome::AwaitAnswer {
        question_id,
        deadline_ms: ctx.now_ms.saturating_add(timeout_ms),
    })
}

fn schedule_task(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let prompt = required_str(args, "prompt")?;
    let process_after = required_str(args, "processAfter")?;
    let process_after_ms = parse_instant(process_after).ok_or_else(|| {
        refused(format!(
            "schedule_task: processAfter {process_after:?} is not an ISO-8601 instant"
        ))
    })?;
    let task_id = ctx.env.new_id("task");
    let mut content = json!({
        "action": "schedule_task",
        "taskId": task_id,
        "prompt": prompt,
        "processAfter": format_instant(process_after_ms),
    });
    for key in ["recurrence", "script"] {
        if let Some(value) = optional_str(args, key)? {
            content[key] = json!(value);
        }
    }
    let row = new_row(ctx, kind::SYSTEM, content);
    let mut written = insert(ctx, row)?;
    written["taskId"] = json!(task_id);
    Ok(written)
}

fn task_action(ctx: &mut ToolContext<'_>, action: &str, args: &Value) -> ToolResult {
    let task_id = required_str(args, "taskId")?;
    let row = new_row(
        ctx,
        kind::SYSTEM,
        json!({"action": action, "taskId": task_id}),
    );
    insert(ctx, row)
}

fn list_tasks(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let statuses = match optional_str(args, "status")? {
        Some(wanted) => vec![wanted],
        None => vec![status::PENDING, status::PAUSED],
    };
    let tasks = ctx
        .store
        .tasks(ctx.env, &statuses)
        .map_err(|e| refused(format!("list_tasks: inbound.db cannot be read now: {e}")))?;
    let listed = tasks
        .iter()
        .map(|task| {
            let content = task.content_json();
            json!({
                "taskId": task.id,
                "seriesId": task.series_id,
                "status": task.status,
                "processAfter": task.process_after,
                "recurrence": task.recurrence,
                "prompt": content.get("prompt"),
                "script": content.get("script"),
            })
        })
        .collect();
    Ok(Value::Array(listed))
}

fn send_to_agent(ctx: &mut ToolContext<'_>, args: &Value) -> ToolResult {
    let agent_group_id = required_str(args, "agentGroupId")?;
    let text = required_str(args, "text")?;
    let session_id = optional_str(args, "sessionId")?;
    let mut row = new_row(ctx, kind::CHAT, json!({ "text": text }));
    row.route = Route {
        platform_id: Some(agent_group_id.to_string()),
        channel_type: Some(AGENT_CHANNEL.to_string()),
        thread_id: session_id.map(str::to_string),
    };
    insert(ctx, row)
}

/// A row routed to the current batch, in reply to its first message.
fn new_row(ctx: &ToolContext<'_>, row_kind: &str, content: Value) -> OutboundRow {
    OutboundRow {
        id: ctx.env.new_id("out"),
        seq: None,
        in_reply_to: Some(ctx.reply.message_id.clone()),
        timestamp: format_instant(ctx.now_ms),
        deliver_after: None,
        recurrence: None,
        kind: row_kind.to_string(),
        route: ctx.reply.route.clone(),
        content: content.to_string(),
    }
}

/// Writes one row; the result names it for the model.
fn insert(ctx: &mut ToolContext<'_>, mut row: OutboundRow) -> ToolResult {
    ctx.write_rows(std::slice::from_mut(&mut row))?;
    Ok(json!({"id": row.id, "seq": row.seq}))
}

fn refused(message: String) -> ToolFailure {
    ToolFailure::Refused(message)
}

fn required_str<'v>(args: &'v Value, key: &str) -> std::result::Result<&'v str, ToolFailure> {
    optional_str(args, key)?.ok_or_else(|| refused(format!("{key} is required")))
}

fn optional_str<'v>(
    args: &'v Value,
    key: &str,
) -> std::result::Result<Option<&'v str>, ToolFailure> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(refused(format!("{key} must be a string, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::is_plain_file_name;

    #[test]
    fn only_plain_names_stay_in_the_outbox() {
        assert!(is_plain_file_name("report.pdf"));
        assert!(is_plain_file_name("a..b.txt"));
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "x\0"] {
            assert!(!is_plain_file_name(bad), "{bad:?} accepted");
        }
    }
}
