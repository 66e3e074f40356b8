//! Read-only snapshots of a session's two DBs, for whoever checks the protocol from outside:
//! the simulator's ledger, the e2e checks, `clawsim chat` waiting for quiet. Opens both files
//! read-only, so looking never changes what is looked at.

use crate::db::{Access, Db, Schema};
use crate::env::{Env, Millis, SessionPaths};
use crate::model::{status, InboundRow, OutboundRow};
use crate::time::is_due;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A `delivered` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredRow {
    pub message_out_id: String,
    pub delivered_at: String,
    /// `delivered` or `undeliverable`.
    pub status: String,
    pub reason: Option<String>,
}

/// A `processing_ack` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRow {
    pub message_id: String,
    pub status: String,
    pub status_changed: String,
}

/// Everything both DBs of one session hold, each table in seq (or key) order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    pub inbound: Vec<InboundRow>,
    pub delivered: Vec<DeliveredRow>,
    pub outbound: Vec<OutboundRow>,
    pub acks: Vec<AckRow>,
}

/// Reads both DBs of a session read-only. A missing outbound.db (no agent ran yet and the host
/// did not create it) reads as empty.
pub fn snapshot_session(env: &dyn Env, paths: &SessionPaths) -> Result<SessionSnapshot> {
    let mut snapshot = SessionSnapshot::default();
    let mut inbound = Db::open(env, &paths.inbound_db(), Schema::Inbound, Access::ReadOnly)?;
    let (rows, delivered) = inbound.read(|tx| {
        let rows = query_all(
            tx,
            &format!(
                "SELECT {} FROM messages_in ORDER BY seq",
                InboundRow::COLUMNS
            ),
            InboundRow::from_row,
        )?;
        let delivered = query_all(
            tx,
            "SELECT message_out_id, delivered_at, status, reason FROM delivered
             ORDER BY message_out_id",
            |r| {
                Ok(DeliveredRow {
                    message_out_id: r.get(0)?,
                    delivered_at: r.get(1)?,
                    status: r.get(2)?,
                    reason: r.get(3)?,
                })
            },
        )?;
        Ok((rows, delivered))
    })?;
    snapshot.inbound = rows;
    snapshot.delivered = delivered;
    if !env.exists(&paths.outbound_db()) {
        return Ok(snapshot);
    }
    let mut outbound = Db::open(
        env,
        &paths.outbound_db(),
        Schema::Outbound,
        Access::ReadOnly,
    )?;
    let (rows, acks) = outbound.read(|tx| {
        let rows = query_all(
            tx,
            &format!(
                "SELECT {} FROM messages_out ORDER BY seq",
                OutboundRow::COLUMNS
            ),
            OutboundRow::from_row,
        )?;
        let acks = query_all(
            tx,
            "SELECT message_id, status, status_changed FROM processing_ack ORDER BY message_id",
            |r| {
                Ok(AckRow {
                    message_id: r.get(0)?,
                    status: r.get(1)?,
                    status_changed: r.get(2)?,
                })
            },
        )?;
        Ok((rows, acks))
    })?;
    snapshot.outbound = rows;
    snapshot.acks = acks;
    Ok(snapshot)
}

fn query_all<T>(
    tx: &rusqlite::Connection,
    sql: &str,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map([], map)?;
    rows.collect()
}

impl SessionSnapshot {
    /// The terminal status of each inbound message: its own status if terminal, else its ack's.
    pub fn outcome_of(&self, message_id: &str) -> Option<&str> {
        let terminal = |s: &str| s == status::COMPLETED || s == status::FAILED;
        let row = self.inbound.iter().find(|r| r.id == message_id)?;
        if terminal(&row.status) {
            return Some(&row.status);
        }
        self.acks
            .iter()
            .find(|a| a.message_id == message_id && terminal(&a.status))
            .map(|a| a.status.as_str())
    }

    /// True when nothing due at `now_ms` is left to do: every due, unpaused inbound message has a
    /// terminal outcome and every due outbound row is recorded in `delivered`.
    pub fn is_settled(&self, now_ms: Millis) -> bool {
        let recorded: BTreeMap<&str, &DeliveredRow> = self
            .delivered
            .iter()
            .map(|d| (d.message_out_id.as_str(), d))
            .collect();
        let inbound_done = self.inbound.iter().all(|row| {
            row.status == status::PAUSED
                || !is_due(row.process_after.as_deref(), now_ms)
                || self.outcome_of(&row.id).is_some()
        });
        let outbound_done = self.outbound.iter().all(|row| {
            recorded.contains_key(row.id.as_str()) || !is_due(row.deliver_after.as_deref(), now_ms)
        });
        inbound_done && outbound_done
    }
}
