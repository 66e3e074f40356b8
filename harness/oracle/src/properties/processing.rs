//! §9.1, §9.3a and §9.8: what became of each inbound message.
//!
//! No loss: every message a user sent was accepted by the host (the platform keeps offering it
//! while the host is down or refuses it), and every due, unpaused inbound row of every session
//! ends `completed` or `failed` (its own status, or the terminal ack the next sweep will copy).
//!
//! One answer: a message is answered by one turn. An answer is attributed to a message by the
//! token its quote carries, so a turn replayed after a crash shows up as a second answer row
//! quoting the same token. A `reply N` script in the message, or in a message of the same chat
//! that may share its batch, allows N.
//!
//! Retries: no row is tried more than `max_tries` times; a retried row's `process_after` is at
//! least the backoff after its creation; and a container the sweep presumed dead had really
//! stopped stepping: the trace shows no successful poll of its agent-runner in the stale window.

use super::evidence::{contains_word, seq_name, token_of, Evidence};
use super::{Found, Property, Verdict};
use crate::event::Event;
use crate::fault::FaultSide;
use crate::time::parse_instant;
use clawsim_core::inspect::SessionSnapshot;
use clawsim_core::model::status;
use clawsim_core::runner::mock::Directive;
use std::collections::{BTreeMap, BTreeSet};

/// How far a presumed-dead container's last poll may be inside the stale window: one sweep
/// interval (the host sees an mtime change at its next sweep) plus a mount's stale caches.
const STALE_WINDOW_SLACK_MS: i64 = 2 * 60_000;

/// §9.1.
pub fn no_loss(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    for sent in &evidence.ledger.sent {
        verdict.check(Property::NoLoss, sent.routed_at_ms.is_some(), || {
            Found::new(format!(
                "m{} ({:?}) was offered {} times and never accepted by the host",
                sent.index, sent.text, sent.offers
            ))
        });
    }
    for (session, snapshot) in &evidence.snapshots {
        for row in &snapshot.inbound {
            // A row written in the last moments (its timestamp standing in for a missing
            // process_after) was owed nothing yet.
            let after = row.process_after.as_deref().unwrap_or(&row.timestamp);
            let waiting = row.status == status::PAUSED || !evidence.owed(Some(after));
            let done = snapshot.outcome_of(&row.id).is_some();
            verdict.check(Property::NoLoss, waiting || done, || {
                Found::new(format!(
                    "{} row {} (seq {}) is still {} after the quiet period (tries {})",
                    row.kind,
                    row.id,
                    seq_name(row.seq),
                    row.status,
                    row.tries
                ))
                .in_session(session)
            });
        }
        acks_reach_messages_in(evidence, session, snapshot, verdict);
    }
}

/// A terminal ack written long enough before the end has been copied into `messages_in` by a
/// sweep (PROTOCOL §7 sweep step 1): the outcome the agent-runner gave is the one that stays.
fn acks_reach_messages_in(
    evidence: &Evidence<'_>,
    session: &str,
    snapshot: &SessionSnapshot,
    verdict: &mut Verdict,
) {
    let lost = evidence.maybe_durable(session, "inbound.db", None);
    for ack in &snapshot.acks {
        let terminal = ack.status == status::COMPLETED || ack.status == status::FAILED;
        if !terminal || !evidence.owed(Some(&ack.status_changed)) {
            continue;
        }
        // A row missing altogether is §9.9's to report.
        let Some(row) = snapshot.inbound.iter().find(|r| r.id == ack.message_id) else {
            continue;
        };
        verdict.check(Property::NoLoss, row.status == ack.status || lost, || {
            Found::new(format!(
                "{} was acked {} at {} but messages_in still says {}",
                row.id, ack.status, ack.status_changed, row.status
            ))
            .in_session(session)
        });
    }
}

/// §9.3a.
pub fn one_answer(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    for sent in &evidence.ledger.sent {
        let token = evidence.token(sent.index);
        let allowed = allowed_answers(evidence, sent.index, sent.chat);
        let answers: Vec<&str> = evidence
            .answers_quoting(&token)
            .map(|a| a.message_out_id.as_str())
            .collect();
        verdict.check(Property::OneAnswer, answers.len() as u32 <= allowed, || {
            Found::new(format!(
                "{token} was answered {} times ({}); its script allows {allowed}",
                answers.len(),
                answers.join(", ")
            ))
            .in_session(sent.session_id.as_deref().unwrap_or(""))
        });
    }
}

/// Default answers a message may get: its own script's count, or more when a message of its
/// chat asks for several answers and may have shared its batch.
fn allowed_answers(evidence: &Evidence<'_>, index: usize, chat: usize) -> u32 {
    let own = evidence.answers_allowed(index).max(1);
    evidence
        .ledger
        .sent
        .iter()
        .filter(|s| s.chat == chat)
        .map(|s| evidence.answers_allowed(s.index))
        .fold(own, u32::max)
}

/// §9.8.
pub fn retries(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let host_clock_steady = !evidence.clock_faulted(Some(FaultSide::Host));
    for (session, snapshot) in &evidence.snapshots {
        for row in &snapshot.inbound {
            let max = evidence.host.max_tries;
            let found = |detail: String| Found::new(detail).in_session(session);
            verdict.check(Property::Retries, row.tries <= max, || {
                found(format!(
                    "{} {} was tried {} times, more than {max}",
                    row.kind, row.id, row.tries
                ))
            });
            if row.tries == 0 {
                continue;
            }
            if !host_clock_steady {
                verdict.skip(
                    Property::Retries,
                    "a retried row's backoff, when the host's clock was stepped or skewed",
                );
                continue;
            }
            let backoff_ms = evidence.host.backoff_base_ms << row.tries.min(20);
            let created = parse_instant(&row.timestamp);
            let after = row.process_after.as_deref().and_then(parse_instant);
            if let (Some(created), Some(after)) = (created, after) {
                verdict.check(Property::Retries, after - created >= backoff_ms, || {
                    found(format!(
                        "{} was retried ({} tries) to run {} ms after it was written; the \
                         backoff is {backoff_ms} ms",
                        row.id,
                        row.tries,
                        after - created
                    ))
                });
            }
        }
    }
    // The runner judges a retry due by its own clock, the host set it by the host's.
    if !evidence.clock_faulted(None) {
        retries_wait_their_backoff(evidence, verdict);
    } else {
        verdict.not_judged(
            Property::Retries,
            "a retry's wait measured from the record, when a clock was stepped or skewed",
        );
    }
    live_agents_never_reset(evidence, verdict);
}

/// From the record alone, whatever the rows' columns hold: after a sweep retried the claims of
/// a dead container, no message that container had been given reaches the provider again
/// before the shortest backoff (one try: `backoff_base · 2`) has passed.
fn retries_wait_their_backoff(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    if !evidence.ledger.observed.provider_boundary || !evidence.ledger.observed.sweep_reports {
        verdict.not_judged(
            Property::Retries,
            "a retry's wait measured from the record: needs the sweeps' reports and the \
             provider boundary",
        );
        return;
    }
    let backoff_ms = evidence.host.backoff_base_ms << 1;
    let tokens: Vec<&str> = evidence
        .ledger
        .sent
        .iter()
        .map(|s| token_of(&s.text))
        .collect();
    // Per session: the tokens its current container was given, and retries waiting.
    let mut given: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut waiting: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for recorded in evidence.outcome.events {
        let session = recorded.session.as_deref().unwrap_or("");
        match &recorded.event {
            Event::RunnerStarted => {
                given.remove(session);
            }
            Event::Swept { facts } if facts.retried > 0 => {
                for token in given.remove(session).unwrap_or_default() {
                    waiting.insert((session, token), recorded.at_ms);
                }
            }
            Event::TurnStarted { prompt: input, .. } | Event::TurnPushed { text: input } => {
                for token in tokens.iter().filter(|t| contains_word(input, t)) {
                    if let Some(retried_ms) = waiting.remove(&(session, *token)) {
                        let waited_ms = recorded.at_ms - retried_ms;
                        verdict.check(Property::Retries, waited_ms >= backoff_ms, || {
                            Found::new(format!(
                                "{token} was retried at {retried_ms} and given to the agent \
                                 again {waited_ms} ms later; the shortest backoff is \
                                 {backoff_ms} ms"
                            ))
                            .in_session(session)
                            .at(recorded.at_ms)
                        });
                    }
                    given.entry(session).or_default().insert(token);
                }
            }
            _ => {}
        }
    }
}

/// A sweep that presumed a container dead must not have seen it poll within the stale window.
///
/// A world that records neither the sweeps' reports nor the agent-runners' polls (real Docker)
/// judges the part it can see: in a run where no fault struck and no message's script makes a
/// turn fail (an error, an exit), every agent stayed alive, so no row may have been tried.
fn live_agents_never_reset(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let observed = evidence.ledger.observed;
    if !(observed.sweep_reports && observed.runner_polls) {
        verdict.not_judged(
            Property::Retries,
            "a live agent presumed dead by a sweep, beyond \"no try in a run where nothing \
             failed\": needs the sweeps' reports and every poll of the agent-runners",
        );
        no_try_where_nothing_failed(evidence, verdict);
        return;
    }
    if evidence.clock_faulted(Some(FaultSide::Host)) {
        // A host clock that jumps shortens the stale window in true time.
        return;
    }
    let window_ms = evidence.host.stale_after_ms - STALE_WINDOW_SLACK_MS;
    for (session, at_ms) in &evidence.presumed_dead {
        let last_seen = evidence
            .liveness
            .get(session)
            .and_then(|seen| seen.iter().rev().find(|(t, _)| t <= at_ms))
            .copied();
        let live = last_seen.is_some_and(|(seen, alive)| alive && at_ms - seen < window_ms);
        verdict.check(Property::Retries, !live, || {
            Found::new(format!(
                "the sweep presumed the container dead although its agent-runner polled {} ms \
                 earlier and was not stopped since (stale after {} ms)",
                at_ms - last_seen.map_or(0, |(t, _)| t),
                evidence.host.stale_after_ms
            ))
            .in_session(session)
            .at(*at_ms)
        });
    }
}

/// With no fault and no script that fails a turn, every agent was alive throughout: a counted
/// try means a live agent was reset.
fn no_try_where_nothing_failed(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let scripted_failure = (0..evidence.ledger.sent.len()).any(|index| {
        evidence
            .script(index)
            .is_some_and(|s| s.directives.iter().any(fails_a_turn))
    });
    if evidence.any_fault() || scripted_failure {
        return;
    }
    for (session, snapshot) in &evidence.snapshots {
        for row in &snapshot.inbound {
            verdict.check(Property::Retries, row.tries == 0, || {
                Found::new(format!(
                    "{} {} was tried {} times in a run where no fault struck and no turn was \
                     scripted to fail: a live agent was reset",
                    row.kind, row.id, row.tries
                ))
                .in_session(session)
            });
        }
    }
}

/// True for a directive that ends a turn in failure (and may cost its messages a try).
fn fails_a_turn(directive: &Directive) -> bool {
    matches!(directive, Directive::Error { .. } | Directive::Exit(_))
}
