//! Sequence numbers (PROTOCOL §3), allocated in the same write transaction as the insert.
//!
//! The host allocates even numbers above `max(messages_in.seq)`, starting at 2; the agent-runner
//! odd numbers above the larger of both tables' maxima, starting at 1. Because allocation and
//! insert share one `BEGIN IMMEDIATE` transaction, two writers in one process (router, sweep and
//! delivery all write `inbound.db`) can never pick the same number.

use crate::model::{InboundRow, OutboundRow};
use rusqlite::{params, Connection};

/// The next even number above `max_seq` (2 when there is none).
pub fn next_even(max_seq: i64) -> i64 {
    (max_seq.max(0) / 2 + 1) * 2
}

/// The next odd number above `max_seq` (1 when there is none).
pub fn next_odd(max_seq: i64) -> i64 {
    let max_seq = max_seq.max(0);
    if max_seq % 2 == 0 {
        max_seq + 1
    } else {
        max_seq + 2
    }
}

pub fn max_inbound_seq(tx: &rusqlite::Connection) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages_in")?
        .query_row([], |r| r.get(0))
}

pub fn max_outbound_seq(tx: &rusqlite::Connection) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages_out")?
        .query_row([], |r| r.get(0))
}

/// Inserts a `messages_in` row with the next even seq, inside the caller's write transaction.
/// `row.seq` is ignored; the allocated seq is returned.
pub fn insert_inbound(tx: &Connection, row: &InboundRow) -> rusqlite::Result<i64> {
    let seq = next_even(max_inbound_seq(tx)?);
    tx.prepare_cached(
        "INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, recurrence,
            tries, platform_id, channel_type, thread_id, content, series_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        row.id,
        seq,
        row.kind,
        row.timestamp,
        row.status,
        row.process_after,
        row.recurrence,
        row.tries,
        row.route.platform_id,
        row.route.channel_type,
        row.route.thread_id,
        row.content,
        row.series_id,
    ])?;
    Ok(seq)
}

/// Inserts a `messages_out` row with the next odd seq above both tables, inside the caller's
/// write transaction on `outbound.db`. `max_inbound` is `max(messages_in.seq)` as just read from
/// the (read-only) inbound connection. The allocated seq is returned.
pub fn insert_outbound(
    tx: &Connection,
    max_inbound: i64,
    row: &OutboundRow,
) -> rusqlite::Result<i64> {
    let seq = next_odd(max_inbound.max(max_outbound_seq(tx)?));
    tx.prepare_cached(
        "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, deliver_after, recurrence,
            kind, platform_id, channel_type, thread_id, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        row.id,
        seq,
        row.in_reply_to,
        row.timestamp,
        row.deliver_after,
        row.recurrence,
        row.kind,
        row.route.platform_id,
        row.route.channel_type,
        row.route.thread_id,
        row.content,
    ])?;
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_and_order() {
        assert_eq!(next_even(0), 2);
        assert_eq!(next_even(1), 2);
        assert_eq!(next_even(2), 4);
        assert_eq!(next_even(7), 8);
        assert_eq!(next_odd(0), 1);
        assert_eq!(next_odd(1), 3);
        assert_eq!(next_odd(4), 5);
    }

    proptest::proptest! {
        #[test]
        fn allocation_is_above_max_with_right_parity(max in 0i64..1_000_000) {
            let even = next_even(max);
            let odd = next_odd(max);
            proptest::prop_assert!(even > max && even % 2 == 0 && even - max <= 2);
            proptest::prop_assert!(odd > max && odd % 2 == 1 && odd - max <= 2);
        }
    }
}
