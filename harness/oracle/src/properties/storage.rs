//! §9.4 at rest and §9.9: what the files hold after the run.
//!
//! Seq: in each session, every `messages_in` seq is even, every `messages_out` seq odd, no seq
//! appears twice across both tables, and a reply's seq is above the seq of the message it
//! answers (the container allocates above every inbound seq it has seen, and it saw that one).
//!
//! Durability: every DB file passed `PRAGMA integrity_check` right after each crash and at the
//! end; every session's DBs could be read; no committed row was lost: a message the host
//! accepted is still in its session's `inbound.db`, a row the platform received is still in its
//! session's `outbound.db` — unless a failed fsync made that file's rows maybe durable.

use super::evidence::Evidence;
use super::{Found, Property, Verdict};
use clawsim_core::inspect::SessionSnapshot;
use std::collections::{BTreeMap, BTreeSet};

/// §9.4 over the final state.
pub fn seq_at_rest(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    for (session, snapshot) in &evidence.snapshots {
        seq_parity_and_uniqueness(session, snapshot, verdict);
        replies_follow_their_message(session, snapshot, verdict);
    }
}

fn seq_parity_and_uniqueness(session: &str, snapshot: &SessionSnapshot, verdict: &mut Verdict) {
    let mut owners: BTreeMap<i64, &str> = BTreeMap::new();
    let rows = snapshot
        .inbound
        .iter()
        .map(|r| ("messages_in", &r.id, r.seq, 0))
        .chain(
            snapshot
                .outbound
                .iter()
                .map(|r| ("messages_out", &r.id, r.seq, 1)),
        );
    for (table, id, seq, parity) in rows {
        let Some(seq) = seq else {
            continue;
        };
        let found = |detail: String| Found::new(detail).in_session(session);
        verdict.check(Property::Seq, seq.rem_euclid(2) == parity, || {
            found(format!(
                "{table} {id} has seq {seq}, of the other side's parity"
            ))
        });
        let owner = *owners.entry(seq).or_insert(id);
        verdict.check(Property::Seq, owner == id, || {
            found(format!("seq {seq} is held by both {owner} and {id}"))
        });
    }
}

fn replies_follow_their_message(session: &str, snapshot: &SessionSnapshot, verdict: &mut Verdict) {
    let inbound_seq: BTreeMap<&str, i64> = snapshot
        .inbound
        .iter()
        .filter_map(|r| Some((r.id.as_str(), r.seq?)))
        .collect();
    for row in &snapshot.outbound {
        let replied = row
            .in_reply_to
            .as_deref()
            .and_then(|id| inbound_seq.get(id));
        let (Some(seq), Some(replied)) = (row.seq, replied) else {
            continue;
        };
        verdict.check(Property::Seq, seq > *replied, || {
            Found::new(format!(
                "messages_out {} (seq {seq}) answers seq {replied}: not allocated above it",
                row.id
            ))
            .in_session(session)
        });
    }
}

/// §9.9. A commit that returned and was undone by a power loss (SimFs's `CommitNotDurable`
/// record) is a lost committed row whatever the rows were.
pub fn durability(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let state = &evidence.ledger.final_state;
    let observed = evidence.ledger.observed;
    if !observed.crash_integrity {
        verdict.not_judged(
            Property::Durability,
            "integrity right after each crash (this world checked its files at the end only)",
        );
    }
    let checks = evidence.ledger.crash_checks.iter().chain(&state.integrity);
    for record in checks {
        verdict.check(Property::Durability, record.is_ok(), || {
            Found::new(format!(
                "{}: integrity_check says {:?}",
                record.file, record.result
            ))
            .at(record.at_ms)
        });
    }
    for session in &state.sessions {
        verdict.check(Property::Durability, session.snapshot.is_some(), || {
            Found::new(format!(
                "{} cannot be read: {}",
                session.dir,
                session.error.as_deref().unwrap_or("?")
            ))
            .in_session(&session.session_id)
        });
    }
    if !observed.maybe_durable_log {
        verdict.not_judged(
            Property::Durability,
            "commits undone by a power loss: only a storage that logs every sync (the \
             simulation's) knows them",
        );
    }
    for record in &state.maybe_durable {
        verdict.check(Property::Durability, !record.is_lost_commit(), || {
            Found::new(format!(
                "a commit to {} returned and was then undone by a power loss ({} wrote {})",
                record.path, record.side, record.file
            ))
        });
    }
    accepted_messages_kept(evidence, verdict);
    received_rows_kept(evidence, verdict);
}

/// A message the router accepted was committed to `inbound.db`; it must still be there.
fn accepted_messages_kept(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    for sent in &evidence.ledger.sent {
        let (Some(session), Some(id)) = (sent.session_id.as_deref(), sent.message_id.as_deref())
        else {
            continue;
        };
        let kept = evidence
            .snapshots
            .get(session)
            .is_some_and(|s| s.inbound.iter().any(|r| r.id == id));
        let excused = evidence.maybe_durable(session, "inbound.db", None);
        verdict.check(Property::Durability, kept || excused, || {
            Found::new(format!(
                "m{} was accepted as {id} but inbound.db no longer holds it",
                sent.index
            ))
            .in_session(session)
        });
    }
}

/// A row the platform received was read from a committed `outbound.db`; it must still be there.
fn received_rows_kept(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let mut seen = BTreeSet::new();
    for send in evidence.received() {
        if !seen.insert(send.message_out_id.as_str()) {
            continue;
        }
        let session = send.session_id.as_str();
        let kept = evidence
            .snapshots
            .get(session)
            .is_some_and(|s| s.outbound.iter().any(|r| r.id == send.message_out_id));
        let excused = evidence.maybe_durable(session, "outbound.db", None);
        verdict.check(Property::Durability, kept || excused, || {
            Found::new(format!(
                "{} reached the channel but outbound.db no longer holds it",
                send.message_out_id
            ))
            .in_session(session)
            .at(send.at_ms)
        });
    }
}
