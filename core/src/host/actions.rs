//! System actions (PROTOCOL §7, `kind='system'` rows of `messages_out`): what the agent asks the
//! host to do to its own `inbound.db` — schedule, cancel, pause and resume tasks.
//!
//! **Decision:** an action's effect, its reply to the agent and the `delivered` row that settles
//! it are written in the caller's one `inbound.db` transaction, so an action takes effect
//! exactly once even when the host dies and reads the row again. **Decision:** cancel, pause and
//! resume act on the whole series of a recurring task (every row sharing its `series_id`), not
//! only on the occurrence whose id the agent holds. A cancel completes a `pending` occurrence
//! even when the container has already claimed it (a claim lives in `outbound.db`, out of this
//! transaction's sight); that occurrence's own outcome, once acked, replaces the cancel's
//! `completed` in the next sweep (found by the default run: seed 119, power-loss; scenario
//! `cancel-while-occurrence-runs`). Every known action is answered with a
//! `system` row `{action, status: "ok"|"error", result}`, so an agent whose request was refused
//! learns why instead of waiting.

use super::recurrence::{next_after, parse_cron, Clock};
use crate::model::{kind, status, InboundRow, OutboundRow};
use crate::time::{format_instant, parse_instant};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

/// What applying a system row came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Applied (successfully or with an error reply to the agent).
    Answered,
    /// Not an action this host knows; the row is undeliverable for this reason.
    Unknown(String),
}

/// How a series changes.
#[derive(Debug, Clone, Copy)]
enum SeriesChange {
    Cancel,
    Pause,
    Resume,
}

/// Applies one system row inside `tx` (the session's `inbound.db`), including its reply row.
pub(crate) fn apply(
    tx: &Connection,
    row: &OutboundRow,
    clock: &Clock,
) -> rusqlite::Result<Verdict> {
    let content = row.content_json();
    let Some(action) = content.get("action").and_then(Value::as_str) else {
        return Ok(Verdict::Unknown("system row without an action".into()));
    };
    let result = match action {
        "schedule_task" => schedule_task(tx, row, &content, clock)?,
        "cancel_task" => change_series(tx, &content, SeriesChange::Cancel)?,
        "pause_task" => change_series(tx, &content, SeriesChange::Pause)?,
        "resume_task" => change_series(tx, &content, SeriesChange::Resume)?,
        other => return Ok(Verdict::Unknown(format!("unknown system action {other}"))),
    };
    reply(tx, row, action, result, clock)?;
    Ok(Verdict::Answered)
}

/// `schedule_task {prompt, processAfter, recurrence?, script?}`: a task row whose series is
/// itself. An invalid cron or `processAfter` schedules nothing and is answered with the error.
fn schedule_task(
    tx: &Connection,
    row: &OutboundRow,
    content: &Value,
    clock: &Clock,
) -> rusqlite::Result<Result<Value, String>> {
    let task = match task_from_request(content, clock) {
        Ok(task) => task,
        Err(error) => return Ok(Err(error)),
    };
    let id = task_id_for(tx, content, clock)?;
    let process_after = format_instant(task.process_after_ms);
    let task_row = InboundRow {
        id: id.clone(),
        seq: None,
        kind: kind::TASK.into(),
        timestamp: format_instant(clock.now_ms),
        status: status::PENDING.into(),
        process_after: Some(process_after.clone()),
        recurrence: task.recurrence.clone(),
        tries: 0,
        route: row.route.clone(),
        content: task.content.to_string(),
        series_id: Some(id.clone()),
    };
    crate::seq::insert_inbound(tx, &task_row)?;
    Ok(Ok(json!({
        "taskId": id,
        "processAfter": process_after,
        "recurrence": task.recurrence,
    })))
}

/// The id the agent-runner chose and already told the model (`taskId`), so a later
/// `cancel_task` with it finds the series; a fresh one when it gave none or that id is taken.
fn task_id_for(tx: &Connection, content: &Value, clock: &Clock) -> rusqlite::Result<String> {
    let requested = content
        .get("taskId")
        .and_then(Value::as_str)
        .filter(|id| !id.trim().is_empty());
    if let Some(id) = requested {
        let taken: bool = tx
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM messages_in WHERE id = ?1)")?
            .query_row([id], |r| r.get(0))?;
        if !taken {
            return Ok(id.to_string());
        }
        tracing::warn!(
            task_id = id,
            "requested task id is taken; using a fresh one"
        );
    }
    Ok(clock.env.new_id("task"))
}

/// A validated `schedule_task` request.
struct TaskRequest {
    process_after_ms: i64,
    recurrence: Option<String>,
    content: Value,
}

fn task_from_request(content: &Value, clock: &Clock) -> Result<TaskRequest, String> {
    let prompt = content
        .get("prompt")
        .and_then(Value::as_str)
        .ok_or("schedule_task without a prompt")?;
    let recurrence = match content.get("recurrence") {
        None | Some(Value::Null) => None,
        Some(Value::String(expression)) => Some(expression.clone()),
        Some(other) => return Err(format!("invalid recurrence {other}")),
    };
    let cron = recurrence.as_deref().map(parse_cron).transpose()?;
    let first_cron_time_ms = match &cron {
        // A cron that never fires (30 February) is refused now, not discovered at its end.
        Some(cron) => Some(next_after(cron, clock.now_ms, clock.tz)?),
        None => None,
    };
    let process_after_ms = match content.get("processAfter") {
        Some(Value::String(text)) => {
            parse_instant(text).ok_or_else(|| format!("invalid processAfter {text:?}"))?
        }
        None | Some(Value::Null) => {
            first_cron_time_ms.ok_or("schedule_task without processAfter or recurrence")?
        }
        Some(other) => return Err(format!("invalid processAfter {other}")),
    };
    let mut task = Map::new();
    task.insert("prompt".into(), prompt.into());
    if let Some(script) = content.get("script").filter(|s| !s.is_null()) {
        task.insert("script".into(), script.clone());
    }
    Ok(TaskRequest {
        process_after_ms,
        recurrence,
        content: Value::Object(task),
    })
}

/// `cancel_task` / `pause_task` / `resume_task {taskId}` on the task's whole series.
fn change_series(
    tx: &Connection,
    content: &Value,
    change: SeriesChange,
) -> rusqlite::Result<Result<Value, String>> {
    let Some(task_id) = content.get("taskId").and_then(Value::as_str) else {
        return Ok(Err("taskId missing".into()));
    };
    let Some(series_id) = series_of(tx, task_id)? else {
        return Ok(Err(format!("unknown task {task_id}")));
    };
    let (from, to) = match change {
        SeriesChange::Cancel => ("'pending', 'paused'", status::COMPLETED),
        SeriesChange::Pause => ("'pending'", status::PAUSED),
        SeriesChange::Resume => ("'paused'", status::PENDING),
    };
    let changed = tx
        .prepare_cached(&format!(
            "UPDATE messages_in SET status = ?2
             WHERE (series_id = ?1 OR id = ?1) AND kind = 'task' AND status IN ({from})"
        ))?
        .execute(params![series_id, to])?;
    if let SeriesChange::Cancel = change {
        // A finished occurrence not yet stepped by the sweep must not start the series again.
        tx.prepare_cached(
            "UPDATE messages_in SET recurrence = NULL WHERE series_id = ?1 OR id = ?1",
        )?
        .execute([&series_id])?;
    }
    Ok(Ok(json!({
        "taskId": task_id,
        "seriesId": series_id,
        "changed": changed,
    })))
}

/// The series a task row belongs to (rows written before series existed are their own).
fn series_of(tx: &Connection, task_id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(
        "SELECT COALESCE(series_id, id) FROM messages_in WHERE id = ?1 AND kind = 'task'",
    )?
    .query_row([task_id], |r| r.get(0))
    .optional()
}

/// The agent's answer: a pending `system` row routed like the request.
fn reply(
    tx: &Connection,
    request: &OutboundRow,
    action: &str,
    result: Result<Value, String>,
    clock: &Clock,
) -> rusqlite::Result<()> {
    let (status_text, result) = match result {
        Ok(value) => ("ok", value),
        Err(error) => {
            tracing::info!(message = %request.id, action, %error, "system action refused");
            ("error", json!({ "error": error }))
        }
    };
    let content = json!({ "action": action, "status": status_text, "result": result });
    let row = InboundRow {
        id: clock.env.new_id("sys"),
        seq: None,
        kind: kind::SYSTEM.into(),
        timestamp: format_instant(clock.now_ms),
        status: status::PENDING.into(),
        process_after: None,
        recurrence: None,
        tries: 0,
        route: request.route.clone(),
        content: content.to_string(),
        series_id: None,
    };
    crate::seq::insert_inbound(tx, &row).map(drop)
}
