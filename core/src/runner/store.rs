//! The agent-runner's view of its two files: `outbound.db`, which it alone writes, and
//! `inbound.db`, which the host writes and it only ever opens read-only.
//!
//! The inbound file may not exist yet, or be briefly unreadable (a hot journal the host has not
//! rolled back, a busy lock): the runner must live through that, so the inbound connection is
//! opened lazily and dropped on error, and a failed read is "nothing pending this time".
//! Polls stay cheap however long the history: pending rows come from the `(status, seq)` index,
//! acks are looked up by primary key, and content is loaded only for the rows taken.

use crate::config::{Design, Heartbeat};
use crate::db::{Access, Db, Schema};
use crate::env::{Env, Millis, SessionPaths};
use crate::error::{Error, Result, SqliteResultExt};
use crate::model::{status, InboundRow, OutboundRow, Route};
use crate::seq;
use crate::time::{format_instant, is_due};
use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension};
use std::path::PathBuf;

/// The heartbeat row of a design whose runner beats in the DB (not part of the protocol's
/// schema: created by such a runner only, so v2 files stay as they are).
pub(crate) const HEARTBEAT_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1), beat_ms INTEGER NOT NULL)";

/// Pending candidates, from the `(status, seq)` index: never the whole history.
const PENDING_SQL: &str =
    "SELECT id, process_after FROM messages_in WHERE status = 'pending' ORDER BY seq";

/// Whether a message is claimed or acked, by primary key.
const ACK_EXISTS_SQL: &str = "SELECT 1 FROM processing_ack WHERE message_id = ?1";

/// Whether a message already has output, from the `in_reply_to` index.
const HAS_OUTPUT_SQL: &str = "SELECT 1 FROM messages_out WHERE in_reply_to = ?1 LIMIT 1";

/// Whether the batch a message was claimed in already has output.
const BATCH_HAS_OUTPUT_SQL: &str = "SELECT 1 FROM claim_batches b
    JOIN messages_out o ON o.in_reply_to = b.batch_id WHERE b.message_id = ?1 LIMIT 1";

/// Claims of a previous container, from the `status` index.
const CLAIMS_SQL: &str = "SELECT message_id FROM processing_ack WHERE status = ?1";

/// What clearing a dead container's claims did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimCleanup {
    /// Claims deleted, so their messages are processed again.
    pub released: usize,
    /// Claims acked `completed` because the message already has output.
    pub completed: usize,
}

/// Both connections of one agent-runner.
pub(crate) struct RunnerStore {
    outbound: Db,
    inbound: Option<Db>,
    inbound_path: PathBuf,
    design: Design,
    /// The largest inbound seq seen, for odd-seq allocation when the inbound file cannot be
    /// read at the moment of a write.
    max_inbound_seq: i64,
}

impl RunnerStore {
    /// Opens (creating and migrating) `outbound.db`; `inbound.db` is opened on first use.
    pub fn open(env: &dyn Env, paths: &SessionPaths, design: &Design) -> Result<RunnerStore> {
        let outbound = Db::open_session(
            env,
            &paths.outbound_db(),
            Schema::Outbound,
            Access::ReadWrite,
            design,
        )?;
        let mut store = RunnerStore {
            outbound,
            inbound: None,
            inbound_path: paths.inbound_db(),
            design: *design,
            max_inbound_seq: 0,
        };
        if design.heartbeat == Heartbeat::DbUpdate {
            let path = store.outbound.path().to_path_buf();
            store
                .outbound
                .conn()
                .execute_batch(HEARTBEAT_TABLE_SQL)
                .at(&path)?;
        }
        store.refresh_max_inbound_seq(env);
        Ok(store)
    }

    /// Writes `now_ms` (this side's clock) into the heartbeat row: one commit per beat.
    pub fn beat(&mut self, now_ms: Millis) -> Result<()> {
        self.outbound.write(|tx| {
            tx.prepare_cached("INSERT OR REPLACE INTO heartbeat (id, beat_ms) VALUES (1, ?1)")?
                .execute([now_ms])
                .map(drop)
        })
    }

    /// PROTOCOL §5 "On start": drop `processing` claims so their messages are taken again,
    /// except a claimed message that already has output, which is acked `completed` instead.
    /// Output to the first message of the batch a message was claimed in counts as its output
    /// too: the whole batch was one prompt, answered by one turn. A follow-up pushed into a
    /// running query joins the batch only when a result ends its turn; until then it is taken
    /// again (PROTOCOL §5.7 Decision: never lost, and once answered never answered twice).
    /// Returns what was done and the ids released.
    pub fn clear_stale_claims(&mut self, now_ms: Millis) -> Result<(ClaimCleanup, Vec<String>)> {
        let changed = format_instant(now_ms);
        self.outbound.write(|tx| {
            let claimed: Vec<String> = tx
                .prepare_cached(CLAIMS_SQL)?
                .query_map([status::PROCESSING], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut cleanup = ClaimCleanup::default();
            let mut released = Vec::new();
            for id in claimed {
                let has_output =
                    exists(tx, HAS_OUTPUT_SQL, &id)? || exists(tx, BATCH_HAS_OUTPUT_SQL, &id)?;
                tx.prepare_cached("DELETE FROM claim_batches WHERE message_id = ?1")?
                    .execute([&id])?;
                if has_output {
                    upsert_ack(tx, &id, status::COMPLETED, &changed)?;
                    cleanup.completed += 1;
                } else {
                    tx.prepare_cached("DELETE FROM processing_ack WHERE message_id = ?1")?
                        .execute([&id])?;
                    cleanup.released += 1;
                    released.push(id);
                }
            }
            Ok((cleanup, released))
        })
    }

    /// Up to `limit` pending, due, unclaimed inbound rows in seq order. An unreadable inbound
    /// file gives none (logged); the next poll tries again.
    pub fn pending(&mut self, env: &dyn Env, now_ms: Millis, limit: usize) -> Vec<InboundRow> {
        if self.inbound(env).is_none() {
            return Vec::new();
        }
        let inbound = self.inbound.as_mut().expect("opened above");
        let outbound = self.outbound.conn();
        let read = inbound.read(|tx| {
            let mut candidates = tx.prepare_cached(PENDING_SQL)?;
            let mut rows = candidates.query([])?;
            let mut taken = Vec::new();
            while let Some(row) = rows.next()? {
                let id = text_at(row, 0)?.unwrap_or_default();
                let process_after = text_at(row, 1)?;
                if is_due(process_after.as_deref(), now_ms) && !has_ack(outbound, &id)? {
                    taken.push(id);
                    if taken.len() >= limit {
                        break;
                    }
                }
            }
            let max_seq = seq::max_inbound_seq(tx)?;
            if taken.is_empty() {
                // An idle poll: nothing to load.
                return Ok((Vec::new(), max_seq));
            }
            let mut load = tx.prepare_cached(&format!(
                "SELECT {} FROM messages_in WHERE id = ?1",
                InboundRow::COLUMNS
            ))?;
            let loaded = taken
                .iter()
                .map(|id| load.query_row([id], lenient_inbound_row))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((loaded, max_seq))
        });
        match read {
            Ok((rows, max_seq)) => {
                self.max_inbound_seq = self.max_inbound_seq.max(max_seq);
                rows
            }
            Err(error) => {
                self.inbound_failed(error);
                Vec::new()
            }
        }
    }

    /// Inserts `rows` (odd seqs allocated in the same transaction, written back into each row)
    /// and writes `acks`, all in one `outbound.db` transaction. With `batch_id`, every
    /// `processing` ack also records that its message was claimed in that batch; a terminal
    /// ack forgets the message's batch.
    pub fn write(
        &mut self,
        env: &dyn Env,
        rows: &mut [OutboundRow],
        acks: &[(String, &'static str)],
        batch_id: Option<&str>,
        now_ms: Millis,
    ) -> Result<()> {
        if rows.is_empty() && acks.is_empty() {
            return Ok(());
        }
        if !rows.is_empty() {
            self.refresh_max_inbound_seq(env);
        }
        let max_inbound = self.max_inbound_seq;
        let changed = format_instant(now_ms);
        self.outbound.write(|tx| {
            for row in rows.iter_mut() {
                row.seq = Some(seq::insert_outbound(tx, max_inbound, row)?);
            }
            for (id, ack_status) in acks {
                upsert_ack(tx, id, ack_status, &changed)?;
                match (*ack_status == status::PROCESSING, batch_id) {
                    (true, Some(batch_id)) => tx.prepare_cached("INSERT OR REPLACE INTO claim_batches (message_id, batch_id) VALUES (?1, ?2)")?.execute(params![id, batch_id],
                    )?,
                    (true, None) => 0,
                    (false, _) => {
                        tx.prepare_cached("DELETE FROM claim_batches WHERE message_id = ?1")?.execute([id])?
                    }
                };
            }
            Ok(())
        })
    }

    /// The id of the message (inbound or outbound) with `seq`.
    pub fn id_for_seq(&mut self, env: &dyn Env, message_seq: i64) -> Result<Option<String>> {
        let sql = "SELECT id FROM messages_out WHERE seq = ?1";
        let path = self.outbound.path().to_path_buf();
        let outbound: Option<String> = self
            .outbound
            .conn()
            .query_row(sql, [message_seq], |row| row.get(0))
            .optional()
            .at(&path)?;
        if outbound.is_some() {
            return Ok(outbound);
        }
        let inbound = self.inbound_or_error(env)?;
        let found = inbound.read(|tx| {
            tx.prepare_cached("SELECT id FROM messages_in WHERE seq = ?1")?
                .query_row([message_seq], |row| row.get(0))
                .optional()
        });
        found.inspect_err(|_| self.inbound = None)
    }

    /// Task rows of `inbound.db` with one of `statuses`, in seq order.
    pub fn tasks(&mut self, env: &dyn Env, statuses: &[&str]) -> Result<Vec<InboundRow>> {
        let inbound = self.inbound_or_error(env)?;
        let sql = format!(
            "SELECT {} FROM messages_in WHERE kind = 'task' AND status = ?1 ORDER BY seq",
            InboundRow::COLUMNS
        );
        let read = inbound.read(|tx| {
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut tasks = Vec::new();
            for task_status in statuses {
                let rows = stmt.query_map([task_status], lenient_inbound_row)?;
                tasks.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
            }
            tasks.sort_by_key(|task| task.seq);
            Ok(tasks)
        });
        read.inspect_err(|_| self.inbound = None)
    }

    /// The inbound connection, opening it if needed; `None` (logged) while it cannot be opened.
    fn inbound(&mut self, env: &dyn Env) -> Option<&mut Db> {
        if self.inbound.is_none() {
            match self.open_inbound(env) {
                Ok(db) => self.inbound = Some(db),
                Err(error) => {
                    tracing::debug!(%error, "inbound.db not readable yet");
                    return None;
                }
            }
        }
        self.inbound.as_mut()
    }

    fn inbound_or_error(&mut self, env: &dyn Env) -> Result<&mut Db> {
        if self.inbound.is_none() {
            self.inbound = Some(self.open_inbound(env)?);
        }
        Ok(self.inbound.as_mut().expect("opened above"))
    }

    fn open_inbound(&self, env: &dyn Env) -> Result<Db> {
        if !env.exists(&self.inbound_path) {
            return Err(Error::Invalid(format!(
                "{}: does not exist yet",
                self.inbound_path.display()
            )));
        }
        let path = &self.inbound_path;
        Db::open_session(env, path, Schema::Inbound, Access::ReadOnly, &self.design)
    }

    fn inbound_failed(&mut self, error: Error) {
        tracing::warn!(%error, "reading inbound.db failed; retrying at the next poll");
        // A busy file is worth another try on the same connection; anything else (a file
        // replaced or not yet migrated) is better met with a fresh one.
        if !error.is_transient() {
            self.inbound = None;
        }
    }

    fn refresh_max_inbound_seq(&mut self, env: &dyn Env) {
        let Some(inbound) = self.inbound(env) else {
            return;
        };
        match inbound.read(seq::max_inbound_seq) {
            Ok(max_seq) => self.max_inbound_seq = self.max_inbound_seq.max(max_seq),
            Err(error) => self.inbound_failed(error),
        }
    }
}

fn exists(tx: &rusqlite::Connection, sql: &str, id: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(sql)?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn has_ack(outbound: &rusqlite::Connection, id: &str) -> rusqlite::Result<bool> {
    let mut stmt = outbound.prepare_cached(ACK_EXISTS_SQL)?;
    Ok(stmt.query_row([id], |_| Ok(())).optional()?.is_some())
}

fn upsert_ack(
    tx: &rusqlite::Connection,
    id: &str,
    ack_status: &str,
    changed: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?1, ?2, ?3)
         ON CONFLICT(message_id) DO UPDATE
            SET status = excluded.status, status_changed = excluded.status_changed",
    )?
    .execute(params![id, ack_status, changed])?;
    Ok(())
}

/// A column as text, whatever the host stored in it (bad input must not stall the poll).
fn text_at(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(index)? {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    })
}

/// [`InboundRow::from_row`] that never fails on a column of an unexpected type.
fn lenient_inbound_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InboundRow> {
    let seq = match row.get_ref(1)? {
        ValueRef::Integer(seq) => Some(seq),
        _ => None,
    };
    let tries = match row.get_ref(7)? {
        ValueRef::Integer(tries) => tries,
        _ => 0,
    };
    Ok(InboundRow {
        id: text_at(row, 0)?.unwrap_or_default(),
        seq,
        kind: text_at(row, 2)?.unwrap_or_default(),
        timestamp: text_at(row, 3)?.unwrap_or_default(),
        status: text_at(row, 4)?.unwrap_or_else(|| status::PENDING.into()),
        process_after: text_at(row, 5)?,
        recurrence: text_at(row, 6)?,
        tries,
        route: Route {
            platform_id: text_at(row, 8)?,
            channel_type: text_at(row, 9)?,
            thread_id: text_at(row, 10)?,
        },
        content: text_at(row, 11)?.unwrap_or_default(),
        series_id: text_at(row, 12)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveEnv;

    /// The plan of `sql` on a freshly migrated file of `schema`, one line per step.
    fn plan(schema: Schema, sql: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let db = Db::open(&LiveEnv, &path, schema, Access::ReadWrite).unwrap();
        let mut stmt = db
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let count = stmt.parameter_count();
        let params = vec!["x"; count];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    /// Poll cost must not grow with history: no query of a poll may scan a whole table.
    #[test]
    fn poll_queries_search_indexes_and_never_scan_history() {
        let queries = [
            (Schema::Inbound, PENDING_SQL),
            (
                Schema::Inbound,
                "SELECT COALESCE(MAX(seq), 0) FROM messages_in",
            ),
            (Schema::Inbound, "SELECT * FROM messages_in WHERE id = ?1"),
            (Schema::Outbound, ACK_EXISTS_SQL),
            (Schema::Outbound, HAS_OUTPUT_SQL),
            (Schema::Outbound, BATCH_HAS_OUTPUT_SQL),
            (Schema::Outbound, CLAIMS_SQL),
            (
                Schema::Outbound,
                "SELECT COALESCE(MAX(seq), 0) FROM messages_out",
            ),
        ];
        for (schema, sql) in queries {
            let steps = plan(schema, sql);
            assert!(
                steps.iter().all(|step| !step.starts_with("SCAN")),
                "{sql}: {steps:?}"
            );
            assert!(
                steps.iter().all(|step| !step.contains("TEMP B-TREE")),
                "{sql} sorts: {steps:?}"
            );
        }
    }
}
