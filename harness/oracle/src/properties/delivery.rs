//! §9.2 and §9.3: what reached the channel, judged against what the DBs say should have.
//!
//! No duplicate: each row reaches the platform once. The one exception the protocol allows is a
//! send that was under way when its host died: the platform may have got it, the host never
//! recorded it, the next host sends it again. The trace says which sends finished after their
//! host had died, and which sends' records failed before the host restarted (a power cut in the
//! middle of the record); each excuses one later receipt of the same row. A failed fsync
//! on the session's `inbound.db` (SimFs's maybe-durable record) may also have cost a
//! `delivered` row, which excuses a resend too.
//!
//! System actions are applied once (PROTOCOL §7: an action's effect and its `delivered` row
//! commit in one transaction): a `schedule_task` request read again by a restarted host never
//! schedules twice, so no task prompt has more series than requests carrying it.
//!
//! No lost output: after the quiet period every due `messages_out` row has a `delivered` record;
//! one recorded as delivered to a channel was really received by it; one recorded undeliverable
//! says why.

use super::evidence::{seq_name, Evidence};
use super::{Found, Property, Verdict};
use clawsim_core::model::{kind, status, AGENT_CHANNEL};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// §9.2 over every row the platform received.
pub fn no_duplicate(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let mut receipts: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for send in evidence.received() {
        receipts
            .entry(&send.message_out_id)
            .or_default()
            .push((send.at_ms, &send.session_id));
    }
    for (id, times) in receipts {
        let (_, session) = times[0];
        let orphans = evidence
            .orphaned_sends
            .iter()
            .filter(|(orphan, _)| orphan == id)
            .count();
        let excused = orphans + usize::from(evidence.maybe_durable(session, "inbound.db", None));
        let extra = times.len() - 1;
        verdict.check(Property::NoDuplicate, extra <= excused, || {
            let at: Vec<String> = times.iter().map(|(at_ms, _)| at_ms.to_string()).collect();
            Found::new(format!(
                "{id} reached the channel {} times (at {} ms); {orphans} of its sends were never \
                 recorded because their host died",
                times.len(),
                at.join(", ")
            ))
            .in_session(session)
            .at(times[extra.min(orphans + 1)].0)
        });
    }
}

/// §9.2 over every task series: one per `schedule_task` request.
pub fn system_actions_once(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let prompt_of = |content: &Value| {
        let prompt = content.get("prompt").and_then(Value::as_str);
        prompt.unwrap_or_default().to_string()
    };
    for (session, snapshot) in &evidence.snapshots {
        let mut requests: BTreeMap<String, usize> = BTreeMap::new();
        for row in snapshot.outbound.iter().filter(|r| r.kind == kind::SYSTEM) {
            let content = row.content_json();
            if content.get("action").and_then(Value::as_str) == Some("schedule_task") {
                *requests.entry(prompt_of(&content)).or_default() += 1;
            }
        }
        let mut series: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for row in snapshot.inbound.iter().filter(|r| r.kind == kind::TASK) {
            let series_id = row.series_id.as_deref().unwrap_or(&row.id);
            let prompt = prompt_of(&row.content_json());
            series.entry(prompt).or_default().insert(series_id);
        }
        // A failed sync may have cost outbound.db the request row the series came from.
        let excused = evidence.maybe_durable(session, "outbound.db", None);
        for (prompt, ids) in series {
            let asked = requests.get(&prompt).copied().unwrap_or(0);
            verdict.check(Property::NoDuplicate, ids.len() <= asked || excused, || {
                Found::new(format!(
                    "{} task series for {prompt:?} but {asked} schedule_task request(s): a \
                     request was applied more than once",
                    ids.len()
                ))
                .in_session(session)
            });
        }
    }
}

/// §9.3 over every outbound row of every session.
pub fn no_lost_output(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let received: BTreeSet<&str> = evidence
        .received()
        .map(|s| s.message_out_id.as_str())
        .collect();
    for (session, snapshot) in &evidence.snapshots {
        let records: BTreeMap<&str, _> = snapshot
            .delivered
            .iter()
            .map(|d| (d.message_out_id.as_str(), d))
            .collect();
        for row in &snapshot.outbound {
            let name = || format!("messages_out {} (seq {})", row.id, seq_name(row.seq));
            let found = |detail: String| Found::new(detail).in_session(session);
            let Some(record) = records.get(row.id.as_str()) else {
                // Its own timestamp counts as its "after" when it has none: a row written in
                // the last moments was owed nothing yet.
                let after = row.deliver_after.as_deref().unwrap_or(&row.timestamp);
                let due = evidence.owed(Some(after));
                verdict.check(Property::NoLostOutput, !due, || {
                    found(format!("{} is due and was never delivered", name()))
                });
                continue;
            };
            if record.status == status::UNDELIVERABLE {
                let has_reason = record.reason.as_deref().is_some_and(|r| !r.is_empty());
                verdict.check(Property::NoLostOutput, has_reason, || {
                    found(format!("{} is undeliverable without a reason", name()))
                });
                continue;
            }
            let to_channel = row.kind != kind::SYSTEM
                && row.route.channel_type.as_deref() != Some(AGENT_CHANNEL);
            let got_it = !to_channel || received.contains(row.id.as_str());
            verdict.check(Property::NoLostOutput, got_it, || {
                found(format!(
                    "{} is recorded {} but the channel never received it",
                    name(),
                    record.status
                ))
            });
        }
    }
}
