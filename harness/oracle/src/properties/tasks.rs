//! §9.6 and §9.7: when things run, and what a series of a recurring task does.
//!
//! Time: an occurrence of a scheduled task is answered no earlier than its `process_after`. The
//! n-th answer quoting a series' prompt is compared with its n-th occurrence; the answer's own
//! `timestamp` is on the container's clock, the clock the runner judged "due" by, so the check
//! is skipped when that clock was stepped or skewed. In a run without any fault, every message
//! is also processed promptly: answered (or acked, for one that gets no answer of its own)
//! within one sweep, one poll, a container start, a turn's idle end, a delivery pass and a send.
//!
//! Series: no two occurrences of a series are scheduled for the same instant; a series' prompt
//! is answered at most once per occurrence; after a cancel (or a pause never resumed) took
//! effect, no occurrence due later was claimed and none is left to fire.

use super::evidence::{token_of, Evidence};
use super::{Found, Property, Verdict};
use crate::fault::FaultSide;
use crate::time::{instant_name, parse_instant};
use clawsim_core::inspect::SessionSnapshot;
use clawsim_core::model::{kind, status, InboundRow};
use serde_json::Value;
use std::collections::BTreeMap;

/// §9.6.
pub fn time(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    if !evidence.clock_faulted(Some(FaultSide::Container)) {
        for (session, snapshot) in &evidence.snapshots {
            for (_, rows) in series_of(snapshot) {
                occurrences_not_early(evidence, session, &rows, verdict);
            }
        }
    } else {
        verdict.not_judged(
            Property::Time,
            "tasks answered early, when the container's clock (the one answers are stamped \
             with) was stepped or skewed",
        );
    }
    if !evidence.any_fault() {
        healthy_sessions_are_prompt(evidence, verdict);
    }
}

/// Task rows of a session by series (a row without one is its own), each in `process_after`
/// order.
fn series_of(snapshot: &SessionSnapshot) -> BTreeMap<String, Vec<&InboundRow>> {
    let mut series: BTreeMap<String, Vec<&InboundRow>> = BTreeMap::new();
    for row in snapshot.inbound.iter().filter(|r| r.kind == kind::TASK) {
        let key = row.series_id.clone().unwrap_or_else(|| row.id.clone());
        series.entry(key).or_default().push(row);
    }
    for rows in series.values_mut() {
        rows.sort_by_key(|r| process_after_ms(r));
    }
    series
}

fn process_after_ms(row: &InboundRow) -> Option<i64> {
    row.process_after.as_deref().and_then(parse_instant)
}

/// The token of a task's prompt.
fn prompt_token(row: &InboundRow) -> String {
    let prompt = row
        .content_json()
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    token_of(&prompt).to_string()
}

fn occurrences_not_early(
    evidence: &Evidence<'_>,
    session: &str,
    rows: &[&InboundRow],
    verdict: &mut Verdict,
) {
    // A retried occurrence's process_after is its backoff, later than its first answer.
    if rows.iter().any(|r| r.tries > 0) {
        verdict.skip(
            Property::Time,
            "a series with a retried occurrence (its process_after moved to the backoff)",
        );
        return;
    }
    let token = prompt_token(rows[0]);
    let mut answered: Vec<i64> = evidence
        .answers_quoting(&token)
        .filter_map(|a| a.written_at_ms)
        .collect();
    answered.sort_unstable();
    for (row, answered_ms) in rows.iter().zip(answered) {
        let Some(after_ms) = process_after_ms(row) else {
            continue;
        };
        verdict.check(Property::Time, answered_ms >= after_ms, || {
            Found::new(format!(
                "task {} ({token}) is due at {} but was answered at {answered_ms} ms, {} ms early",
                row.id,
                row.process_after.as_deref().unwrap_or(""),
                after_ms - answered_ms
            ))
            .in_session(session)
        });
    }
}

fn healthy_sessions_are_prompt(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let bound_ms = evidence.prompt_bound_ms();
    for sent in &evidence.ledger.sent {
        let (Some(routed_ms), Some(session), Some(id)) = (
            sent.routed_at_ms,
            sent.session_id.as_deref(),
            sent.message_id.as_deref(),
        ) else {
            continue;
        };
        if evidence.slowed_chat(sent.chat) {
            continue;
        }
        let token = evidence.token(sent.index);
        let answered = evidence
            .answers_quoting(&token)
            .filter_map(|a| a.received_at_ms)
            .min();
        let acked = evidence
            .snapshots
            .get(session)
            .and_then(|s| s.acks.iter().find(|a| a.message_id == id))
            .and_then(|a| parse_instant(&a.status_changed));
        let Some(processed_ms) = [answered, acked].into_iter().flatten().min() else {
            continue;
        };
        verdict.check(Property::Time, processed_ms - routed_ms <= bound_ms, || {
            Found::new(format!(
                "{token} was accepted at {routed_ms} and first answered or acked {} ms later \
                 on a healthy session (bound {bound_ms} ms)",
                processed_ms - routed_ms
            ))
            .in_session(session)
            .at(processed_ms)
        });
    }
}

/// §9.7.
pub fn series(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    for (session, snapshot) in &evidence.snapshots {
        let stops = stops_of(snapshot);
        for (series_id, rows) in series_of(snapshot) {
            one_row_per_occurrence(session, &series_id, &rows, verdict);
            let token = prompt_token(rows[0]);
            let answers = evidence.answers_quoting(&token).count();
            verdict.check(Property::Series, answers <= rows.len(), || {
                Found::new(format!(
                    "series {series_id} ({token}) has {} occurrences but {answers} answers",
                    rows.len()
                ))
                .in_session(session)
            });
            if let Some(stopped_ms) = stops.get(&series_id) {
                // The stop and the due times are on the host's clock, the claims on the
                // container's: only an occurrence due later than the stop by more than the
                // clocks can disagree was surely not due for the container when it stopped.
                let surely_after_ms = stopped_ms + evidence.clocks_pushed_ms();
                stays_stopped(
                    snapshot,
                    session,
                    &series_id,
                    &rows,
                    surely_after_ms,
                    verdict,
                );
            }
        }
    }
}

fn one_row_per_occurrence(
    session: &str,
    series_id: &str,
    rows: &[&InboundRow],
    verdict: &mut Verdict,
) {
    for pair in rows.windows(2) {
        let same = process_after_ms(pair[0]).is_some()
            && process_after_ms(pair[0]) == process_after_ms(pair[1]);
        verdict.check(Property::Series, !same, || {
            Found::new(format!(
                "series {series_id} has two rows ({}, {}) for the occurrence at {}",
                pair[0].id,
                pair[1].id,
                pair[0].process_after.as_deref().unwrap_or("")
            ))
            .in_session(session)
        });
    }
}

/// When each stopped series stopped for good (host clock): the first applied cancel, or a
/// pause with no resume applied after it.
fn stops_of(snapshot: &SessionSnapshot) -> BTreeMap<String, i64> {
    let applied: BTreeMap<&str, i64> = snapshot
        .delivered
        .iter()
        .filter(|d| d.status == status::DELIVERED)
        .filter_map(|d| Some((d.message_out_id.as_str(), parse_instant(&d.delivered_at)?)))
        .collect();
    let series_of_task = |task_id: &str| {
        let row = snapshot.inbound.iter().find(|r| r.id == task_id)?;
        Some(row.series_id.clone().unwrap_or_else(|| row.id.clone()))
    };
    let mut actions: Vec<(i64, String, String)> = Vec::new();
    for row in snapshot.outbound.iter().filter(|r| r.kind == kind::SYSTEM) {
        let content = row.content_json();
        let action = content.get("action").and_then(Value::as_str).unwrap_or("");
        let task = content.get("taskId").and_then(Value::as_str).unwrap_or("");
        if let (Some(at_ms), Some(series)) = (applied.get(row.id.as_str()), series_of_task(task)) {
            actions.push((*at_ms, series, action.to_string()));
        }
    }
    actions.sort();
    let mut stops: BTreeMap<String, i64> = BTreeMap::new();
    for (at_ms, series, action) in actions {
        match action.as_str() {
            "cancel_task" | "pause_task" => {
                stops.entry(series).or_insert(at_ms);
            }
            "resume_task" => {
                stops.remove(&series);
            }
            _ => {}
        }
    }
    stops
}

/// No occurrence of a stopped series due after `stopped_ms` (host clock, widened by how far
/// the clocks may disagree) is ever claimed, and none stays pending.
fn stays_stopped(
    snapshot: &SessionSnapshot,
    session: &str,
    series_id: &str,
    rows: &[&InboundRow],
    stopped_ms: i64,
    verdict: &mut Verdict,
) {
    for row in rows {
        let due_after_stop = process_after_ms(row).is_some_and(|p| p > stopped_ms);
        let claimed = snapshot.acks.iter().any(|a| a.message_id == row.id);
        verdict.check(Property::Series, !(due_after_stop && claimed), || {
            Found::new(format!(
                "series {series_id} was stopped before {} (host clock, with the clocks' \
                 disagreement) but its occurrence {} (due {}) was claimed",
                instant_name(stopped_ms),
                row.id,
                row.process_after.as_deref().unwrap_or("")
            ))
            .in_session(session)
        });
        verdict.check(Property::Series, row.status != status::PENDING, || {
            Found::new(format!(
                "series {series_id} was stopped before {} but occurrence {} is still pending",
                instant_name(stopped_ms),
                row.id
            ))
            .in_session(session)
        });
    }
}
