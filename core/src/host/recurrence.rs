//! Recurring tasks (PROTOCOL §7 sweep step 4): cron evaluation and the step from one occurrence
//! of a series to the next.
//!
//! **Decision:** the next occurrence is inserted and `recurrence` cleared on the finished one in
//! the caller's single transaction, so a crash can neither fire a series twice nor lose it. The
//! next time counts from the finished occurrence's *scheduled* time (its `process_after`), not
//! from when it ran; when that is already past (the host was down), the next time after now is
//! taken instead, so missed occurrences fire once, not once each. Crons have five fields, or six
//! with a leading seconds field (tests and short-period series), and are evaluated in the
//! configured time zone.

use crate::env::{Env, Millis};
use crate::model::{status, InboundRow};
use crate::time::{format_instant, parse_instant};
use chrono::TimeZone;
use chrono_tz::Tz;
use croner::Cron;
use rusqlite::Connection;

/// Parses a five-field (or six, with seconds) cron expression, with an error naming it.
pub(crate) fn parse_cron(expression: &str) -> Result<Cron, String> {
    Cron::new(expression)
        .with_seconds_optional()
        .parse()
        .map_err(|e| format!("invalid cron {expression:?}: {e}"))
}

/// The first cron time strictly after `after_ms`, in whole seconds.
pub(crate) fn next_after(cron: &Cron, after_ms: Millis, tz: Tz) -> Result<Millis, String> {
    let whole_second_ms = after_ms.div_euclid(1000) * 1000;
    let start = tz
        .timestamp_millis_opt(whole_second_ms)
        .single()
        .ok_or_else(|| format!("instant {after_ms} out of range"))?;
    let next = cron
        .find_next_occurrence(&start, false)
        .map_err(|e| format!("cron {:?} has no next time: {e}", cron.pattern.to_string()))?;
    Ok(next.timestamp_millis().div_euclid(1000) * 1000)
}

/// When the occurrence after one scheduled at `scheduled_ms` fires: the next cron time after it,
/// or, if that has passed already, the next one after `now_ms`.
pub(crate) fn next_occurrence_ms(
    expression: &str,
    scheduled_ms: Millis,
    now_ms: Millis,
    tz: Tz,
) -> Result<Millis, String> {
    let cron = parse_cron(expression)?;
    let next = next_after(&cron, scheduled_ms, tz)?;
    if next >= now_ms {
        return Ok(next);
    }
    next_after(&cron, now_ms, tz)
}

/// What the step to a next occurrence needs from the world.
pub(crate) struct Clock<'a> {
    pub env: &'a dyn Env,
    pub now_ms: Millis,
    pub tz: Tz,
}

/// Sets a row's terminal status and, if it recurs, schedules the next occurrence, all inside
/// the caller's transaction. `next_status` is the status the next occurrence starts in (a
/// paused series stays paused). Returns whether a next occurrence was inserted.
pub(crate) fn finish_occurrence(
    tx: &Connection,
    row: &InboundRow,
    terminal_status: &str,
    next_status: &str,
    clock: &Clock,
) -> rusqlite::Result<bool> {
    tx.prepare_cached("UPDATE messages_in SET status = ?2 WHERE id = ?1")?
        .execute([row.id.as_str(), terminal_status])?;
    schedule_next(tx, row, next_status, clock)
}

/// Inserts the next occurrence of a finished recurring row and clears its `recurrence`.
/// A row whose cron cannot be evaluated ends its series, with a log line naming it.
pub(crate) fn schedule_next(
    tx: &Connection,
    row: &InboundRow,
    next_status: &str,
    clock: &Clock,
) -> rusqlite::Result<bool> {
    let Some(expression) = row.recurrence.as_deref() else {
        return Ok(false);
    };
    tx.prepare_cached("UPDATE messages_in SET recurrence = NULL WHERE id = ?1")?
        .execute([&row.id])?;
    let scheduled_ms = row
        .process_after
        .as_deref()
        .and_then(parse_instant)
        .or_else(|| parse_instant(&row.timestamp))
        .unwrap_or(clock.now_ms);
    let next_ms = match next_occurrence_ms(expression, scheduled_ms, clock.now_ms, clock.tz) {
        Ok(next_ms) => next_ms,
        Err(error) => {
            tracing::warn!(message = %row.id, %error, "recurring series ends: no next occurrence");
            return Ok(false);
        }
    };
    let next = InboundRow {
        id: clock.env.new_id("task"),
        seq: None,
        timestamp: format_instant(clock.now_ms),
        status: next_status.to_string(),
        process_after: Some(format_instant(next_ms)),
        tries: 0,
        series_id: Some(row.series_id.clone().unwrap_or_else(|| row.id.clone())),
        ..row.clone()
    };
    crate::seq::insert_inbound(tx, &next)?;
    tracing::debug!(message = %row.id, next = %next.id, at = %format_instant(next_ms),
        "scheduled next occurrence");
    Ok(true)
}

/// Finished recurring rows whose next occurrence is not scheduled yet (left by a crash of an
/// older build, or by anything that finished a row without stepping its series). Found through
/// the partial index on recurring rows, so the cost never grows with history.
pub(crate) fn unrolled_rows(tx: &Connection) -> rusqlite::Result<Vec<InboundRow>> {
    let sql = format!(
        "SELECT {} FROM messages_in
         WHERE recurrence IS NOT NULL AND status IN ('{}', '{}') ORDER BY seq",
        InboundRow::COLUMNS,
        status::COMPLETED,
        status::FAILED
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map([], InboundRow::from_row)?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Millis {
        parse_instant(text).unwrap()
    }

    #[test]
    fn next_counts_from_scheduled_time_not_now() {
        let next = next_occurrence_ms(
            "0 9 * * *",
            at("2026-03-01T09:00:00Z"),
            at("2026-03-01T09:07:13Z"),
            Tz::UTC,
        );
        assert_eq!(next, Ok(at("2026-03-02T09:00:00Z")));
    }

    #[test]
    fn missed_occurrences_collapse_to_the_next_after_now() {
        let next = next_occurrence_ms(
            "0 9 * * *",
            at("2026-03-01T09:00:00Z"),
            at("2026-03-05T12:00:00Z"),
            Tz::UTC,
        );
        assert_eq!(next, Ok(at("2026-03-06T09:00:00Z")));
    }

    #[test]
    fn cron_is_evaluated_in_the_configured_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let next = next_occurrence_ms(
            "0 9 * * *",
            at("2026-07-01T07:00:00Z"),
            at("2026-07-01T07:00:00Z"),
            berlin,
        );
        assert_eq!(next, Ok(at("2026-07-02T07:00:00Z")));
    }

    #[test]
    fn invalid_crons_are_refused_and_seconds_are_optional() {
        assert!(parse_cron("not a cron").is_err());
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("0 0 9 * * * 2027").is_err());
        assert!(parse_cron("*/5 * * * *").is_ok());
        let every_two_seconds = parse_cron("*/2 * * * * *").unwrap();
        let next = next_after(&every_two_seconds, at("2026-07-01T07:00:00.500Z"), Tz::UTC);
        assert_eq!(next, Ok(at("2026-07-01T07:00:02Z")));
    }
}
