//! The sweep of one session (PROTOCOL §7 "Sweep", §8).
//!
//! Steps, in the order they run here:
//! 1. Copy terminal `processing_ack` states into `messages_in` (**Decision:** `failed` too),
//!    stepping a recurring task's series in the same transaction.
//! 2. Stale detection. **Decision:** judged on the host's clock — the host remembers the last
//!    heartbeat mtime it saw and when (host time) it first saw it; the container is presumed
//!    dead when that value has not changed for `stale_after_ms` (or there never was one) while
//!    messages are claimed. The mtime is compared for change only, never against a clock, so a
//!    live agent is never reset however skewed its clock is. Each claimed message still pending
//!    is failed at `max_tries`, else retried with `tries + 1` and a backoff of
//!    `backoff_base_ms · 2^tries`; **Decision (output-sent protection):** a message whose reply
//!    was already delivered is completed instead. The dead container is killed, and its
//!    staleness clock restarts so the next container gets a full `stale_after_ms`.
//!    A container the runtime reports stopped while it holds claims died (killed, crashed, or
//!    exited by its provider) and is judged dead at once: without that, a message whose turn
//!    kills the agent would be retried forever, since each new container clears the claim and
//!    beats its heartbeat before dying again. Each claim costs one try only once, also across
//!    host restarts: the claims counted are recorded in inbound.db (`counted_claims`) in the
//!    transaction that counts them, and forgotten once the claim has left outbound.db.
//! 3. Recurrence: finished recurring rows whose next occurrence is missing get one.
//! 4. Wake: due work and no container up.
//! 5. Idle stop and container status. **Decision:** a container idle for one sweep interval
//!    is also stopped when another session waits for a container slot.
//!
//! Staleness runs before the wake (the spec lists the wake first) so a sweep never starts a
//! container and then kills it as stale; recurrence runs before the wake so an occurrence due
//! now is picked up in the same sweep. Every query goes through an index on status or a
//! primary key, so a sweep's cost follows the open work, never the history.

use super::central::{container_status, SessionRow};
use super::recurrence::{finish_occurrence, schedule_next, unrolled_rows};
use super::{HeartbeatSeen, Host, SweepReport};
use crate::config::Heartbeat;
use crate::db::{Db, Schema};
use crate::env::{Millis, SessionPaths};
use crate::error::IoResultExt;
use crate::model::{kind, status, InboundRow};
use crate::runtime::ContainerState;
use crate::time::{format_instant, is_due};
use crate::Result;
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeSet;

/// One sweep in progress.
struct Sweep<'a> {
    host: &'a mut Host,
    session: SessionRow,
    paths: SessionPaths,
    inbound: Db,
    /// `None` while the file cannot be opened (e.g. a hot journal left by a container killed
    /// mid-write, which only the next container's read-write open can roll back).
    outbound: Option<Db>,
    report: SweepReport,
}

/// What work a session has, for wake and idle decisions.
struct Work {
    /// A due pending row other than `system`: work that keeps a container busy.
    due_pending: bool,
    /// A due pending `system` row. It answers a tool call of a running turn and does not keep
    /// a container from its idle stop; but when no container runs (the turn that asked died,
    /// or the answer came after its timeout) only a new container can consume it — it acks an
    /// answer nobody awaits — so it is reason enough to wake one.
    due_system: bool,
    claimed: bool,
}

pub(super) fn sweep_session(host: &mut Host, session_id: &str) -> Result<SweepReport> {
    let session = host.central.require_session(session_id)?;
    let paths = host.paths(&session);
    let inbound = host.check_out(session_id, &paths, Schema::Inbound)?;
    let outbound = host
        .check_out(session_id, &paths, Schema::Outbound)
        .inspect_err(|error| {
            tracing::warn!(session = %session_id, %error, "outbound.db unreadable");
        })
        .ok();
    let mut sweep = Sweep {
        host,
        session,
        paths,
        inbound,
        outbound,
        report: SweepReport::default(),
    };
    // The steps that read outbound.db must not keep the wake from running: when the file is
    // unreadable (a hot journal a read-only reader cannot roll back), waking the session's next
    // container is exactly what makes it readable again.
    if let Err(error) = sweep.sync_acks().and_then(|()| sweep.detect_stale()) {
        let file = error.path().map(|path| path.display().to_string());
        tracing::warn!(session = %session_id, %error, file = file.as_deref().unwrap_or("?"),
            "acks and staleness not judged this sweep");
        if error.path() != Some(sweep.paths.inbound_db().as_path()) {
            sweep.outbound = None;
        }
    }
    sweep.report.outbound_unreadable = sweep.outbound.is_none();
    sweep.schedule_missing_recurrences()?;
    let work = sweep.work()?;
    sweep.wake_if_due(&work);
    sweep.manage_container(&work);
    sweep.record_last_active();
    let Sweep {
        host,
        inbound,
        outbound,
        report,
        ..
    } = sweep;
    host.check_in(session_id, Some(inbound), outbound);
    Ok(report)
}

impl Sweep<'_> {
    /// Step 1: terminal acks of open (pending or paused) rows into `messages_in.status`.
    fn sync_acks(&mut self) -> Result<()> {
        // Completed tasks too: a cancel completes a task the container may already have
        // claimed (the host cannot see a claim inside its `inbound.db` transaction), and that
        // occurrence's own outcome, once acked, is the one that stands.
        let open: Vec<(String, String)> = self.inbound.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, status FROM messages_in
                 WHERE status IN ('pending', 'paused') OR (kind = 'task' AND status = 'completed')
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let Some(outbound) = self.outbound.as_mut() else {
            return Ok(());
        };
        let finished: Vec<(String, String, String)> = outbound.read(|tx| {
            let mut finished = Vec::new();
            for (id, open_status) in open {
                if let Some(ack) = ack_status(tx, &id)? {
                    if (ack == status::COMPLETED || ack == status::FAILED) && ack != open_status {
                        finished.push((id, open_status, ack));
                    }
                }
            }
            Ok(finished)
        })?;
        if finished.is_empty() {
            return Ok(());
        }
        let env = self.host.env.clone();
        let clock = Host::clock(&*env, &self.host.config);
        let recurrences = self.inbound.write(|tx| {
            let mut recurrences = 0;
            for (id, open_status, ack) in &finished {
                let Some(row) = inbound_row(tx, id)? else {
                    continue;
                };
                // A paused series stays paused: its next occurrence starts paused.
                recurrences += usize::from(finish_occurrence(tx, &row, ack, open_status, &clock)?);
            }
            Ok(recurrences)
        })?;
        tracing::debug!(session = %self.session.id, synced = finished.len(), "acks synced");
        self.report.acks_synced += finished.len();
        self.report.recurrences += recurrences;
        Ok(())
    }

    /// Step 2: a container silent for `stale_after_ms` (host clock), or stopped, with claimed
    /// messages not yet counted.
    fn detect_stale(&mut self) -> Result<()> {
        let Some(outbound) = self.outbound.as_mut() else {
            return Ok(());
        };
        let claims: Vec<(String, String)> = outbound.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT message_id, status_changed FROM processing_ack
                 WHERE status = 'processing' ORDER BY message_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let counted = self.forget_cleared_claims(&claims)?;
        let uncounted: Vec<(String, String)> = claims
            .into_iter()
            .filter(|claim| !counted.contains(claim))
            .collect();
        if uncounted.is_empty() {
            return self.replace_hung_idle_container();
        }
        let session_id = self.session.id.clone();
        let stopped = self.host.runtime.state(&session_id) == ContainerState::Stopped;
        if !stopped && !self.heartbeat_is_stale() {
            return Ok(());
        }
        tracing::warn!(session = %session_id, claimed = uncounted.len(), stopped,
            "container presumed dead with claimed messages");
        self.report.presumed_dead = true;
        let claimed: Vec<String> = uncounted.iter().map(|(id, _)| id.clone()).collect();
        let retries = self.claimed_pending(&claimed)?;
        self.reset_claims(&retries, &uncounted)?;
        if self.host.container_is_up(&self.session.id) {
            self.host.stop_container(&self.session.id, true);
        }
        let now_ms = self.host.now_ms();
        if let Some(seen) = &mut self.host.memory(&session_id).heartbeat {
            seen.since_ms = now_ms;
        }
        Ok(())
    }

    /// The claims already counted as a try (`counted_claims` of inbound.db, so a restarted host
    /// does not count them again), after forgetting those no longer in `claims`: cleared or
    /// re-claimed by a new container. The table holds only open dead claims, so reading it
    /// whole costs what the open work costs.
    fn forget_cleared_claims(
        &mut self,
        claims: &[(String, String)],
    ) -> Result<BTreeSet<(String, String)>> {
        let mut counted: BTreeSet<(String, String)> = self.inbound.read(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT message_id, claimed_at FROM counted_claims")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let cleared: Vec<(String, String)> = counted
            .iter()
            .filter(|claim| !claims.contains(claim))
            .cloned()
            .collect();
        if cleared.is_empty() {
            return Ok(counted);
        }
        self.inbound.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM counted_claims WHERE message_id = ?1 AND claimed_at = ?2",
            )?;
            for (id, claimed_at) in &cleared {
                stmt.execute([id, claimed_at])?;
            }
            Ok(())
        })?;
        counted.retain(|claim| !cleared.contains(claim));
        Ok(counted)
    }

    /// A container up but silent for `stale_after_ms` while due work waits unclaimed is hung
    /// before it took anything: no try is counted (nothing was claimed), it is killed, and the
    /// wake step of this sweep starts the next one.
    fn replace_hung_idle_container(&mut self) -> Result<()> {
        let session_id = self.session.id.clone();
        if !self.host.container_is_up(&session_id) || !self.heartbeat_is_stale() {
            return Ok(());
        }
        if !self.work()?.due_pending {
            return Ok(());
        }
        tracing::warn!(session = %session_id, "container silent with due work unclaimed; replacing it");
        self.report.presumed_dead = true;
        self.host.stop_container(&session_id, true);
        let now_ms = self.host.now_ms();
        if let Some(seen) = &mut self.host.memory(&session_id).heartbeat {
            seen.since_ms = now_ms;
        }
        Ok(())
    }

    /// True when the heartbeat's mtime has not changed for `stale_after_ms` of host time.
    fn heartbeat_is_stale(&mut self) -> bool {
        let mtime_ms = match self.heartbeat() {
            Ok(mtime_ms) => mtime_ms,
            Err(error) => {
                tracing::warn!(session = %self.session.id, %error,
                    "heartbeat unreadable; staleness not judged");
                return false;
            }
        };
        let now_ms = self.host.now_ms();
        let stale_after_ms = self.host.config.stale_after_ms;
        let memory = self.host.memory(&self.session.id);
        match memory.heartbeat {
            Some(seen) if seen.mtime_ms == mtime_ms => now_ms - seen.since_ms >= stale_after_ms,
            _ => {
                memory.heartbeat = Some(HeartbeatSeen {
                    mtime_ms,
                    since_ms: now_ms,
                });
                false
            }
        }
    }

    /// The heartbeat's value: `.heartbeat`'s mtime, or the runner's heartbeat row under a
    /// design that beats in the DB; `None` when there has been none.
    fn heartbeat(&mut self) -> Result<Option<Millis>> {
        if self.host.config.design.heartbeat == Heartbeat::FileTouch {
            let heartbeat = self.paths.heartbeat();
            return self.host.env.mtime_ms(&heartbeat).at(&heartbeat);
        }
        let Some(outbound) = self.outbound.as_mut() else {
            return Err(crate::Error::Invalid("outbound.db unreadable".into()));
        };
        outbound.read(|tx| {
            let table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'heartbeat'";
            if tx.query_row(table, [], |_| Ok(())).optional()?.is_none() {
                return Ok(None);
            }
            tx.query_row("SELECT beat_ms FROM heartbeat WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Claimed rows still pending, each with whether its reply was already delivered.
    fn claimed_pending(&mut self, claimed: &[String]) -> Result<Vec<(InboundRow, bool)>> {
        let rows: Vec<InboundRow> = self.inbound.read(|tx| {
            let mut rows = Vec::new();
            for id in claimed {
                if let Some(row) = inbound_row(tx, id)? {
                    if row.status == status::PENDING {
                        rows.push(row);
                    }
                }
            }
            Ok(rows)
        })?;
        let mut checked = Vec::with_capacity(rows.len());
        for row in rows {
            let output_sent = self.reply_delivered(&row.id)?;
            checked.push((row, output_sent));
        }
        Ok(checked)
    }

    /// True when a reply to the message's batch was delivered. Replies cite the batch's first
    /// message; the agent-runner's `claim_batches` table (absent in files of older runners) maps
    /// every claimed message to that first one, so the whole answered batch is protected.
    fn reply_delivered(&mut self, message_id: &str) -> Result<bool> {
        let Some(outbound) = self.outbound.as_mut() else {
            return Ok(false);
        };
        let replies: Vec<String> = outbound.read(|tx| {
            let has_batches = tx
                .prepare_cached(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'claim_batches'",
                )?
                .query_row([], |_| Ok(()))
                .optional()?
                .is_some();
            let sql = if has_batches {
                "SELECT id FROM messages_out WHERE in_reply_to = ?1 OR in_reply_to =
                    (SELECT batch_id FROM claim_batches WHERE message_id = ?1)"
            } else {
                "SELECT id FROM messages_out WHERE in_reply_to = ?1"
            };
            let mut stmt = tx.prepare_cached(sql)?;
            let rows = stmt.query_map([message_id], |r| r.get(0))?;
            rows.collect()
        })?;
        self.inbound.read(|tx| {
            for reply in &replies {
                let delivered: Option<String> = tx
                    .prepare_cached("SELECT status FROM delivered WHERE message_out_id = ?1")?
                    .query_row([reply], |r| r.get(0))
                    .optional()?;
                if delivered.as_deref() == Some(status::DELIVERED) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// Fails, completes (output sent) or backs off each claimed pending row, and records the
    /// `claims` as counted, in one transaction: a crash counts them all or none.
    fn reset_claims(
        &mut self,
        rows: &[(InboundRow, bool)],
        claims: &[(String, String)],
    ) -> Result<()> {
        let env = self.host.env.clone();
        let clock = Host::clock(&*env, &self.host.config);
        let now_ms = clock.now_ms;
        let max_tries = self.host.config.max_tries;
        let backoff_base_ms = self.host.config.backoff_base_ms;
        let session_id = self.session.id.clone();
        let report = &mut self.report;
        self.inbound.write(|tx| {
            let mut count = tx.prepare_cached(
                "INSERT OR IGNORE INTO counted_claims (message_id, claimed_at) VALUES (?1, ?2)",
            )?;
            for (id, claimed_at) in claims {
                count.execute([id, claimed_at])?;
            }
            for (row, output_sent) in rows {
                if *output_sent {
                    tracing::info!(session = %session_id, message = %row.id,
                        "reply already delivered; completed, not retried");
                    report.output_sent += 1;
                    report.recurrences += usize::from(finish_occurrence(
                        tx,
                        row,
                        status::COMPLETED,
                        status::PENDING,
                        &clock,
                    )?);
                } else if row.tries >= max_tries {
                    tracing::warn!(session = %session_id, message = %row.id, tries = row.tries,
                        "out of tries; failed");
                    report.failed += 1;
                    report.recurrences += usize::from(finish_occurrence(
                        tx,
                        row,
                        status::FAILED,
                        status::PENDING,
                        &clock,
                    )?);
                } else {
                    let tries = row.tries + 1;
                    let retry_ms = backoff_after(now_ms, backoff_base_ms, tries);
                    tracing::info!(session = %session_id, message = %row.id, tries,
                        retry_at = %format_instant(retry_ms), "claim reset; retry after backoff");
                    report.retried += 1;
                    tx.prepare_cached(
                        "UPDATE messages_in SET tries = ?2, process_after = ?3 WHERE id = ?1",
                    )?
                    .execute(rusqlite::params![
                        row.id,
                        tries,
                        format_instant(retry_ms)
                    ])?;
                }
            }
            Ok(())
        })
    }

    /// Step 3: finished recurring rows whose series was not stepped yet.
    fn schedule_missing_recurrences(&mut self) -> Result<()> {
        let waiting = self
            .inbound
            .read(|tx| unrolled_rows(tx).map(|rows| rows.len()))?;
        if waiting == 0 {
            return Ok(());
        }
        let env = self.host.env.clone();
        let clock = Host::clock(&*env, &self.host.config);
        let scheduled = self.inbound.write(|tx| {
            let mut scheduled = 0;
            for row in unrolled_rows(tx)? {
                scheduled += usize::from(schedule_next(tx, &row, status::PENDING, &clock)?);
            }
            Ok(scheduled)
        })?;
        self.report.recurrences += scheduled;
        Ok(())
    }

    fn work(&mut self) -> Result<Work> {
        let now_ms = self.host.now_ms();
        let (due_pending, due_system) = self.inbound.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT kind, process_after FROM messages_in WHERE status = 'pending'",
            )?;
            let mut rows = stmt.query([])?;
            let (mut due_pending, mut due_system) = (false, false);
            while let Some(row) = rows.next()? {
                let row_kind: String = row.get(0)?;
                let process_after: Option<String> = row.get(1)?;
                if !is_due(process_after.as_deref(), now_ms) {
                    continue;
                }
                if row_kind == kind::SYSTEM {
                    due_system = true;
                } else {
                    due_pending = true;
                    break;
                }
            }
            Ok((due_pending, due_system))
        })?;
        // Unreadable claims count as claimed: the session is busy, not idle.
        let claimed = match self.outbound.as_mut() {
            None => true,
            Some(outbound) => outbound
                .read(|tx| {
                    tx.prepare_cached(
                        "SELECT 1 FROM processing_ack WHERE status = 'processing' LIMIT 1",
                    )?
                    .query_row([], |_| Ok(()))
                    .optional()
                    .map(|found| found.is_some())
                })
                .unwrap_or(true),
        };
        Ok(Work {
            due_pending,
            due_system,
            claimed,
        })
    }

    /// Step 4: due work and no container up: wake one (it may wait for a slot).
    fn wake_if_due(&mut self, work: &Work) {
        let due = work.due_pending || work.due_system;
        if !due || self.host.container_is_up(&self.session.id) {
            return;
        }
        self.report.woke = true;
        if let Err(error) = self.host.wake(&self.session.id) {
            tracing::warn!(session = %self.session.id, %error, "wake failed");
        }
    }

    /// Step 5: stop a container idle for `idle_stop_ms`; record running / idle / stopped.
    fn manage_container(&mut self, work: &Work) {
        let session_id = self.session.id.clone();
        let state = self.host.runtime.state(&session_id);
        if state == ContainerState::Stopped {
            self.host.running.remove(&session_id);
            self.record(container_status::STOPPED);
            return;
        }
        let now_ms = self.host.now_ms();
        if work.due_pending || work.claimed {
            self.host.note_activity(&session_id);
            self.record(container_status::RUNNING);
            return;
        }
        let idle_stop_ms = self.host.config.idle_stop_ms;
        let last_ms = *self
            .host
            .memory(&session_id)
            .last_activity_ms
            .get_or_insert(now_ms);
        let idle_ms = now_ms - last_ms;
        // A session waiting for a slot takes the slot of a container idle for a sweep
        // interval: otherwise idle containers hold every slot for `idle_stop_ms` (thirty
        // minutes) while a new session's messages wait (found by the swarm run: seed 4170,
        // bind, nine sessions of agent-to-agent traffic; scenario `waiting-for-a-slot`).
        let slot_wanted =
            !self.host.waiting.is_empty() && idle_ms >= self.host.config.sweep_interval_ms;
        if state == ContainerState::Running && (idle_ms >= idle_stop_ms || slot_wanted) {
            tracing::info!(session = %session_id, slot_wanted, "idle; stopping container");
            self.host.stop_container(&session_id, false);
            self.report.stopped_idle = true;
            if slot_wanted {
                self.host.start_waiting();
            }
            return;
        }
        self.record(container_status::IDLE);
    }

    /// Writes the session's last activity to the central DB when it moved since last written.
    fn record_last_active(&mut self) {
        let session_id = self.session.id.clone();
        let memory = self.host.memory(&session_id);
        let Some(active_ms) = memory.last_activity_ms else {
            return;
        };
        if memory.last_active_written_ms >= Some(active_ms) {
            return;
        }
        let text = format_instant(active_ms);
        match self.host.central.touch_session(&session_id, &text) {
            Ok(()) => self.host.memory(&session_id).last_active_written_ms = Some(active_ms),
            Err(error) => tracing::warn!(session = %session_id, %error, "last_active not updated"),
        }
    }

    fn record(&mut self, status_text: &str) {
        if self.session.container_status != status_text {
            self.host
                .record_container_status(&self.session.id, status_text);
            self.session.container_status = status_text.to_string();
        }
    }
}

/// `now + base · 2^tries`, saturating.
fn backoff_after(now_ms: Millis, base_ms: i64, tries: i64) -> Millis {
    now_ms.saturating_add(base_ms.saturating_mul(1i64 << tries.clamp(0, 30)))
}

fn ack_status(tx: &Connection, message_id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT status FROM processing_ack WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()
}

fn inbound_row(tx: &Connection, id: &str) -> rusqlite::Result<Option<InboundRow>> {
    let sql = format!(
        "SELECT {} FROM messages_in WHERE id = ?1",
        InboundRow::COLUMNS
    );
    tx.prepare_cached(&sql)?
        .query_row([id], InboundRow::from_row)
        .optional()
}
