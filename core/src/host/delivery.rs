//! Delivery passes (PROTOCOL §7 "Delivery"): due `messages_out` rows not yet settled, in seq
//! order, each applied (system actions), written to another agent's session, or handed to a
//! channel adapter, and then settled by a `delivered` row in `inbound.db`.
//!
//! **Cost flat in history.** The host keeps per session a watermark: every row with
//! `seq <= watermark` is settled, or waits in an in-memory *deferred* set (not due yet, or in a
//! send backoff) with the instant it becomes due. A pass reads only `seq > watermark` plus the
//! deferred rows that came due, and looks `delivered` up by primary key. A restarted host starts
//! at watermark 0: one full read per host start.
//!
//! **One pass per session.** A pass holds a lease; [`begin`] refuses a second pass while the
//! lease lives, so the fast and the slow delivery loops can never both hand a row to an adapter.
//! The watermark moves past a row only when it is settled or deferred, so a row handed out and
//! never reported (driver or host died) is read again: the one allowed duplicate.
//!
//! **Settling.** `delivered.status` is `delivered` or `undeliverable` (with a reason). A
//! transient adapter error is counted in `delivery_attempts` and retried after
//! `send_backoff_base_ms · 2^attempts`; at `send_attempts_max` attempts the row is undeliverable.
//! Nothing is skipped without a log line naming the session and the row.
//!
//! **No head-of-line blocking** (PROTOCOL §9.14). A row that fails on its own (unreadable,
//! an action whose write fails every time) never ends the pass: it is refused or counted as a
//! failed attempt, and the pass goes on, so it delays no later row and ends undeliverable with
//! its reason. Only trouble with the session's files (busy, locked, unwritable) ends a pass.

use super::actions::{self, Verdict};
use super::router::AgentDelivery;
use super::{DeliveryStep, Host, PendingQuestion};
use crate::channel::{OutboundDelivery, SendError};
use crate::db::{Db, Schema};
use crate::env::{Env, Millis, SessionPaths};
use crate::error::IoResultExt;
use crate::model::{kind, status, OutboundRow, AGENT_CHANNEL};
use crate::time::{format_instant, is_due, parse_instant};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};

/// Rows read from `outbound.db` per query; a pass reads again while batches come back full.
const READ_BATCH_ROWS: i64 = 64;

/// The next rows above the watermark. The limit is written into the SQL, not bound: SQLite plans
/// with a bound LIMIT's value, so a statement whose LIMIT is bound is prepared again at every
/// run, and an idle pass would pay a full prepare for its one query.
const ROWS_ABOVE_SQL: &str =
    "SELECT id, seq FROM messages_out WHERE seq > ?1 ORDER BY seq LIMIT 64";

/// What the host remembers of a session's delivery between passes.
#[derive(Debug, Default)]
pub(super) struct DeliveryMemory {
    /// Every row with `seq <= watermark` is settled or in `deferred`.
    watermark: i64,
    /// Rows at or below the watermark that are not settled, with the host time they come due.
    deferred: BTreeMap<RowKey, Millis>,
    /// Rows without a seq (written by the reference) were collected into `deferred`.
    unnumbered_collected: bool,
    /// Alive while a pass of this session exists.
    lease: Weak<()>,
    /// Rows the channel accepted whose `delivered` record has not been written yet (the write
    /// failed: disk full, I/O error). The next pass records them instead of sending them again;
    /// only a host crash, which forgets this, may resend (PROTOCOL §7's one allowed duplicate).
    sent_unrecorded: std::collections::BTreeSet<String>,
}

/// A row's place in seq order; rows without a seq (reference files) come first.
type RowKey = (Option<i64>, String);

/// One delivery pass over one session, owned by the driver between steps.
#[derive(Debug)]
pub struct DeliveryPass {
    pub session_id: String,
    lease: Option<Rc<()>>,
    agent_group_id: String,
    paths: SessionPaths,
    inbound: Db,
    outbound: Db,
    queue: VecDeque<Candidate>,
    in_flight: Option<Candidate>,
    /// Whether reading `seq > watermark` may find more rows.
    more_to_read: bool,
    /// Deferred rows that came due were queued (once per pass, so a row deferred again in
    /// this pass is not looked at twice).
    deferred_queued: bool,
    /// An error ended the pass.
    failed: bool,
}

/// A row to look at, and whether it was read above the watermark (so settling it moves the
/// watermark) or came from the deferred set.
#[derive(Debug, Clone)]
struct Candidate {
    key: RowKey,
    above_watermark: bool,
}

/// What became of one row in this pass.
enum Handled {
    /// Settled now or earlier: it never needs looking at again.
    Settled,
    /// Not due before this host time.
    Deferred(Millis),
    /// Must go to a channel adapter.
    Send(OutboundDelivery),
    /// Could not be handed on now; counts as a failed attempt.
    Transient(String),
    /// Can never be handed on (a row that cannot be read): undeliverable for this reason.
    Refused(String),
}

pub(super) fn begin(host: &mut Host, session_id: &str) -> Result<Option<DeliveryPass>> {
    if host.memory(session_id).delivery.lease.upgrade().is_some() {
        tracing::debug!(session = session_id, "delivery pass already running");
        return Ok(None);
    }
    let session = host.central.require_session(session_id)?;
    let paths = host
        .config
        .session_paths(&session.agent_group_id, session_id);
    let inbound = host.check_out(session_id, &paths, Schema::Inbound)?;
    let outbound = host.check_out(session_id, &paths, Schema::Outbound)?;
    let lease = Rc::new(());
    host.memory(session_id).delivery.lease = Rc::downgrade(&lease);
    Ok(Some(DeliveryPass {
        session_id: session_id.to_string(),
        lease: Some(lease),
        agent_group_id: session.agent_group_id,
        paths,
        inbound,
        outbound,
        queue: VecDeque::new(),
        in_flight: None,
        more_to_read: true,
        deferred_queued: false,
        failed: false,
    }))
}

pub(super) fn step(host: &mut Host, pass: &mut DeliveryPass) -> Result<DeliveryStep> {
    if pass.lease.is_none() {
        return Ok(DeliveryStep::Done);
    }
    if let Some(candidate) = &pass.in_flight {
        return Err(Error::Invalid(format!(
            "session {}: delivery step while row {} awaits its send outcome",
            pass.session_id, candidate.key.1
        )));
    }
    let result = step_until_send(host, pass);
    if result.is_err() {
        pass.failed();
    }
    result
}

fn step_until_send(host: &mut Host, pass: &mut DeliveryPass) -> Result<DeliveryStep> {
    loop {
        let Some(candidate) = next_candidate(host, pass)? else {
            pass.lease = None;
            return Ok(DeliveryStep::Done);
        };
        match handle_row(host, pass, &candidate)? {
            Handled::Settled => settle(host, pass, &candidate),
            Handled::Refused(reason) => {
                record(
                    host,
                    pass,
                    &candidate.key.1,
                    status::UNDELIVERABLE,
                    Some(&reason),
                )?;
                settle(host, pass, &candidate);
            }
            Handled::Deferred(due_ms) => defer(host, pass, &candidate, due_ms),
            Handled::Transient(reason) => failed_attempt(host, pass, &candidate, &reason)?,
            Handled::Send(delivery) => {
                pass.in_flight = Some(candidate);
                return Ok(DeliveryStep::Send(delivery));
            }
        }
    }
}

pub(super) fn sent(
    host: &mut Host,
    pass: &mut DeliveryPass,
    outcome: std::result::Result<(), SendError>,
) -> Result<()> {
    let Some(candidate) = pass.in_flight.take() else {
        return Err(Error::Invalid(format!(
            "session {}: send outcome reported with no row in flight",
            pass.session_id
        )));
    };
    let result = record_outcome(host, pass, &candidate, outcome);
    if result.is_err() {
        pass.failed();
    }
    result
}

pub(super) fn end(host: &mut Host, pass: DeliveryPass) {
    if let Some(candidate) = &pass.in_flight {
        tracing::warn!(session = %pass.session_id, row = %candidate.key.1,
            "pass ended with a row handed out but not reported; the next pass reads it again");
        return;
    }
    if !pass.failed {
        host.check_in(&pass.session_id, Some(pass.inbound), Some(pass.outbound));
    }
}

impl DeliveryPass {
    /// An error ends the pass (it then only answers `Done`) and its connections are not kept.
    fn failed(&mut self) {
        self.lease = None;
        self.failed = true;
    }
}

fn record_outcome(
    host: &mut Host,
    pass: &mut DeliveryPass,
    candidate: &Candidate,
    outcome: std::result::Result<(), SendError>,
) -> Result<()> {
    let id = &candidate.key.1;
    match outcome {
        Ok(()) => {
            let memory = &mut host.memory(&pass.session_id).delivery;
            memory.sent_unrecorded.insert(id.clone());
            record_sent(host, pass, id)?;
            settle(host, pass, candidate);
        }
        Err(SendError::Permanent(reason)) => {
            record(host, pass, id, status::UNDELIVERABLE, Some(&reason))?;
            settle(host, pass, candidate);
        }
        Err(SendError::Transient(reason)) => failed_attempt(host, pass, candidate, &reason)?,
    }
    Ok(())
}

/// Records a row the channel accepted, then removes its outbox folder (best effort).
fn record_sent(host: &mut Host, pass: &mut DeliveryPass, id: &str) -> Result<()> {
    record(host, pass, id, status::DELIVERED, None)?;
    host.memory(&pass.session_id)
        .delivery
        .sent_unrecorded
        .remove(id);
    host.note_activity(&pass.session_id);
    remove_outbox(&*host.env, &pass.paths, &pass.session_id, id);
    Ok(())
}

/// The next row to look at: deferred rows that came due, then rows above the watermark.
fn next_candidate(host: &mut Host, pass: &mut DeliveryPass) -> Result<Option<Candidate>> {
    if pass.queue.is_empty() && pass.more_to_read {
        load(host, pass)?;
    }
    Ok(pass.queue.pop_front())
}

fn load(host: &mut Host, pass: &mut DeliveryPass) -> Result<()> {
    let now_ms = host.now_ms();
    let memory = &mut host.memory(&pass.session_id).delivery;
    if !memory.unnumbered_collected {
        for id in unnumbered_rows(&mut pass.outbound)? {
            memory.deferred.insert((None, id), Millis::MIN);
        }
        memory.unnumbered_collected = true;
    }
    if !pass.deferred_queued {
        pass.deferred_queued = true;
        let due = memory
            .deferred
            .iter()
            .filter(|(_, due_ms)| **due_ms <= now_ms);
        pass.queue.extend(due.map(|(key, _)| Candidate {
            key: key.clone(),
            above_watermark: false,
        }));
    }
    let watermark = memory.watermark;
    let rows = rows_above(&mut pass.outbound, watermark)?;
    pass.more_to_read = rows.len() as i64 == READ_BATCH_ROWS;
    pass.queue.extend(rows.into_iter().map(|key| Candidate {
        key,
        above_watermark: true,
    }));
    Ok(())
}

fn rows_above(outbound: &mut Db, watermark: i64) -> Result<Vec<RowKey>> {
    outbound.read(|tx| {
        let mut stmt = tx.prepare_cached(ROWS_ABOVE_SQL)?;
        let rows = stmt.query_map([watermark], |r| {
            Ok((r.get::<_, Option<i64>>(1)?, r.get::<_, String>(0)?))
        })?;
        rows.collect()
    })
}

fn unnumbered_rows(outbound: &mut Db) -> Result<Vec<String>> {
    outbound.read(|tx| {
        let mut stmt =
            tx.prepare_cached("SELECT id FROM messages_out WHERE seq IS NULL ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    })
}

/// [`handle`], with an error of that one row kept to the row (PROTOCOL §9.14: no head-of-line
/// blocking). A row that cannot be read is refused at once; any other failure of its own
/// (an action whose write fails, a lookup that errors) is a failed attempt, retried with
/// backoff and undeliverable at the attempt limit, while the pass goes on to the next rows.
/// Only a busy or locked file ends the pass: that is the session's trouble, not the row's,
/// and the next pass meets it first, before counting anything against a row.
fn handle_row(host: &mut Host, pass: &mut DeliveryPass, candidate: &Candidate) -> Result<Handled> {
    match handle(host, pass, candidate) {
        Ok(handled) => Ok(handled),
        Err(error) if error.is_transient() => Err(error),
        Err(error) if is_unreadable_row(&error) => {
            Ok(Handled::Refused(format!("malformed row: {error}")))
        }
        Err(error) => Ok(Handled::Transient(error.to_string())),
    }
}

/// True when a row's own columns could not be read as the protocol's types.
fn is_unreadable_row(error: &Error) -> bool {
    matches!(
        error,
        Error::Sqlite {
            source: rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..),
            ..
        }
    )
}

/// Looks at one row: settled already, not due, or what it asks for.
fn handle(host: &mut Host, pass: &mut DeliveryPass, candidate: &Candidate) -> Result<Handled> {
    let id = &candidate.key.1;
    let Some(row) = fetch(&mut pass.outbound, id)? else {
        tracing::warn!(session = %pass.session_id, row = %id, "row vanished from outbound.db");
        return Ok(Handled::Settled);
    };
    if is_settled(&mut pass.inbound, id)? {
        return Ok(Handled::Settled);
    }
    let now_ms = host.now_ms();
    if !is_due(row.deliver_after.as_deref(), now_ms) {
        let due_ms = row.deliver_after.as_deref().and_then(parse_instant);
        tracing::debug!(session = %pass.session_id, row = %id, "not due yet");
        return Ok(Handled::Deferred(due_ms.unwrap_or(now_ms)));
    }
    if let Some(retry_ms) = retry_at(&mut pass.inbound, id)?.filter(|at| *at > now_ms) {
        tracing::debug!(session = %pass.session_id, row = %id, "in send backoff");
        return Ok(Handled::Deferred(retry_ms));
    }
    dispatch(host, pass, row)
}

/// Decides what a due, unsettled row asks for.
fn dispatch(host: &mut Host, pass: &mut DeliveryPass, row: OutboundRow) -> Result<Handled> {
    if row.kind == kind::SYSTEM {
        apply_system(host, pass, &row)?;
        return Ok(Handled::Settled);
    }
    if row.route.channel_type.as_deref() == Some(AGENT_CHANNEL) {
        return deliver_to_agent(host, pass, &row);
    }
    let (Some(_), Some(_)) = (&row.route.channel_type, &row.route.platform_id) else {
        let reason = format!(
            "no route (channel_type {:?}, platform_id {:?})",
            row.route.channel_type, row.route.platform_id
        );
        record(host, pass, &row.id, status::UNDELIVERABLE, Some(&reason))?;
        return Ok(Handled::Settled);
    };
    if host
        .memory(&pass.session_id)
        .delivery
        .sent_unrecorded
        .contains(&row.id)
    {
        tracing::info!(session = %pass.session_id, row = %row.id,
            "recording a send whose record failed earlier; not sending again");
        record_sent(host, pass, &row.id)?;
        return Ok(Handled::Settled);
    }
    let content = row.content_json();
    if content.get("type").and_then(Value::as_str) == Some("ask_question") {
        record_question(host, pass, &row, &content)?;
    }
    match read_outbox(&*host.env, &pass.paths, &row.id, &content) {
        Ok(files) => Ok(Handled::Send(OutboundDelivery {
            message_out_id: row.id,
            seq: row.seq,
            session_id: pass.session_id.clone(),
            route: row.route,
            kind: row.kind,
            content,
            files,
        })),
        Err(reason) => Ok(Handled::Transient(reason)),
    }
}

/// Applies a system action; its effect, its reply and its `delivered` row share one
/// transaction (Decision: exactly once).
fn apply_system(host: &mut Host, pass: &mut DeliveryPass, row: &OutboundRow) -> Result<()> {
    let env = host.env.clone();
    let clock = Host::clock(&*env, &host.config);
    let now = format_instant(clock.now_ms);
    let verdict = pass.inbound.write(|tx| {
        let verdict = actions::apply(tx, row, &clock)?;
        let (status_text, reason) = match &verdict {
            Verdict::Answered => (status::DELIVERED, None),
            Verdict::Unknown(reason) => (status::UNDELIVERABLE, Some(reason.as_str())),
        };
        insert_delivered(tx, &row.id, status_text, reason, &now)?;
        Ok(verdict)
    })?;
    match verdict {
        Verdict::Answered => {
            tracing::info!(session = %pass.session_id, row = %row.id, "system action applied");
            host.note_activity(&pass.session_id);
        }
        Verdict::Unknown(reason) => {
            tracing::warn!(session = %pass.session_id, row = %row.id, %reason, "system row skipped");
        }
    }
    Ok(())
}

/// Writes the row into the target agent's session, then settles it here. The target write
/// is idempotent (a message id derived from this row), so a crash between the two writes
/// never duplicates it. Trouble on the target's side is transient for this row.
fn deliver_to_agent(
    host: &mut Host,
    pass: &mut DeliveryPass,
    row: &OutboundRow,
) -> Result<Handled> {
    let sender = (pass.session_id.clone(), pass.agent_group_id.clone());
    match host.deliver_to_agent(&sender.0, &sender.1, row) {
        Ok(AgentDelivery::Written { session_id }) => {
            tracing::info!(session = %pass.session_id, row = %row.id, target = %session_id,
                "delivered to agent");
            record(host, pass, &row.id, status::DELIVERED, None)?;
            host.note_activity(&pass.session_id);
            Ok(Handled::Settled)
        }
        Ok(AgentDelivery::Refused(reason)) => {
            record(host, pass, &row.id, status::UNDELIVERABLE, Some(&reason))?;
            Ok(Handled::Settled)
        }
        Err(error) => Ok(Handled::Transient(format!("target session: {error}"))),
    }
}

/// Records a question before it is sent (PROTOCOL §7); recording it twice is harmless.
fn record_question(
    host: &mut Host,
    pass: &DeliveryPass,
    row: &OutboundRow,
    content: &Value,
) -> Result<()> {
    let Some(question_id) = content.get("questionId").and_then(question_id_text) else {
        tracing::warn!(session = %pass.session_id, row = %row.id,
            "ask_question without a questionId: sent, but no answer can be routed back");
        return Ok(());
    };
    let question = PendingQuestion {
        question_id,
        session_id: pass.session_id.clone(),
        message_out_id: row.id.clone(),
        route: row.route.clone(),
        created_at: host.now_text(),
    };
    host.central.record_question(&question)
}

fn question_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The files of `outbox/<id>/`, sorted by name. A file the content names but the folder lacks
/// (not written yet, or not visible yet through the mount) is a transient failure.
fn read_outbox(
    env: &dyn Env,
    paths: &SessionPaths,
    id: &str,
    content: &Value,
) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    let dir = paths.outbox_for(id);
    let names = if env.exists(&dir) {
        env.list_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
    } else {
        Vec::new()
    };
    let declared = content.get("files").and_then(Value::as_array);
    for name in declared.into_iter().flatten().filter_map(Value::as_str) {
        if !names.iter().any(|present| present == name) {
            return Err(format!("outbox file {name:?} missing in {}", dir.display()));
        }
    }
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes = env
                .read_file(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((name, bytes))
        })
        .collect()
}

/// Removes `outbox/<id>/` after delivery. Best effort: a failure is logged, never resent.
fn remove_outbox(env: &dyn Env, paths: &SessionPaths, session_id: &str, id: &str) {
    let dir = paths.outbox_for(id);
    if let Err(error) = env.remove_dir_all(&dir).at(&dir) {
        tracing::warn!(session = session_id, row = id, %error, "outbox not removed");
    }
}

/// Counts a failed send; retried after a backoff, or undeliverable at the attempt limit.
fn failed_attempt(
    host: &mut Host,
    pass: &mut DeliveryPass,
    candidate: &Candidate,
    reason: &str,
) -> Result<()> {
    let id = &candidate.key.1;
    let now_ms = host.now_ms();
    let attempts_max = i64::from(host.config.send_attempts_max);
    let base_ms = host.config.send_backoff_base_ms;
    let retry_ms = pass.inbound.write(|tx| {
        let attempts = 1 + tx
            .prepare_cached("SELECT attempts FROM delivery_attempts WHERE message_out_id = ?1")?
            .query_row([id], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0);
        if attempts >= attempts_max {
            let reason = format!("gave up after {attempts} attempts: {reason}");
            insert_delivered(
                tx,
                id,
                status::UNDELIVERABLE,
                Some(&reason),
                &format_instant(now_ms),
            )?;
            return Ok(None);
        }
        let retry_ms = now_ms.saturating_add(base_ms.saturating_mul(1 << attempts.min(30)));
        tx.prepare_cached(
            "INSERT INTO delivery_attempts (message_out_id, attempts, next_attempt_at, last_error)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(message_out_id) DO UPDATE SET attempts = excluded.attempts,
                next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error",
        )?
        .execute(params![id, attempts, format_instant(retry_ms), reason])?;
        Ok(Some(retry_ms))
    })?;
    match retry_ms {
        Some(retry_ms) => {
            tracing::info!(session = %pass.session_id, row = %id, reason,
                retry_at = %format_instant(retry_ms), "send failed; will retry");
            defer(host, pass, candidate, retry_ms);
        }
        None => {
            tracing::warn!(session = %pass.session_id, row = %id, reason,
                "send failed for the last time; undeliverable");
            settle(host, pass, candidate);
        }
    }
    Ok(())
}

/// Writes the row's `delivered` row (and drops its attempt count) in one transaction.
fn record(
    host: &Host,
    pass: &mut DeliveryPass,
    id: &str,
    status_text: &str,
    reason: Option<&str>,
) -> Result<()> {
    if let Some(reason) = reason {
        tracing::warn!(session = %pass.session_id, row = id, reason, "undeliverable");
    }
    let now = host.now_text();
    pass.inbound
        .write(|tx| insert_delivered(tx, id, status_text, reason, &now))
}

fn insert_delivered(
    tx: &Connection,
    id: &str,
    status_text: &str,
    reason: Option<&str>,
    now: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO delivered (message_out_id, delivered_at, status, reason)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, now, status_text, reason])?;
    tx.prepare_cached("DELETE FROM delivery_attempts WHERE message_out_id = ?1")?
        .execute([id])?;
    Ok(())
}

fn fetch(outbound: &mut Db, id: &str) -> Result<Option<OutboundRow>> {
    let sql = format!(
        "SELECT {} FROM messages_out WHERE id = ?1",
        OutboundRow::COLUMNS
    );
    outbound.read(|tx| {
        tx.prepare_cached(&sql)?
            .query_row([id], OutboundRow::from_row)
            .optional()
    })
}

fn is_settled(inbound: &mut Db, id: &str) -> Result<bool> {
    inbound.read(|tx| {
        tx.prepare_cached("SELECT 1 FROM delivered WHERE message_out_id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    })
}

/// When a row in send backoff may be tried again (unreadable text: now).
fn retry_at(inbound: &mut Db, id: &str) -> Result<Option<Millis>> {
    let text: Option<String> = inbound.read(|tx| {
        tx.prepare_cached(
            "SELECT next_attempt_at FROM delivery_attempts WHERE message_out_id = ?1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()
    })?;
    Ok(text.map(|text| parse_instant(&text).unwrap_or(Millis::MIN)))
}

/// The row needs no more looking at.
fn settle(host: &mut Host, pass: &DeliveryPass, candidate: &Candidate) {
    let memory = &mut host.memory(&pass.session_id).delivery;
    memory.deferred.remove(&candidate.key);
    advance(memory, candidate);
}

/// The row is looked at again once `due_ms` has passed.
fn defer(host: &mut Host, pass: &DeliveryPass, candidate: &Candidate, due_ms: Millis) {
    let memory = &mut host.memory(&pass.session_id).delivery;
    memory.deferred.insert(candidate.key.clone(), due_ms);
    advance(memory, candidate);
}

fn advance(memory: &mut DeliveryMemory, candidate: &Candidate) {
    if let (true, Some(seq)) = (candidate.above_watermark, candidate.key.0) {
        memory.watermark = memory.watermark.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_above_query_reads_one_batch() {
        let limit = format!("LIMIT {READ_BATCH_ROWS}");
        assert!(ROWS_ABOVE_SQL.ends_with(&limit), "{ROWS_ABOVE_SQL}");
    }
}
