//! Online checks: the run's evidence replayed in time order, each rule judged at the moment it
//! could first break, so a violation names the step where things went wrong rather than the
//! state they ended in.
//!
//! Replayed events: a message accepted by the host (its seq as the router returned it), a send
//! the platform received (its row's seq and text). Rules: a host seq is even and above every
//! earlier host seq of its session; a container seq is odd; no seq of a session names two
//! different rows; no answer reaches the platform before the message it quotes was accepted.
//! SimFs records single-writer violations at the open that commits them; they are reported
//! here with the run's other online findings.

use super::evidence::{contains_word, quoted_prompt, Evidence};
use super::{Found, Property, Verdict};
use std::collections::BTreeMap;

/// One moment of the run.
#[derive(Debug)]
enum Moment<'a> {
    /// The host accepted workload message `index` as `message_id` with `seq`.
    Routed {
        index: usize,
        session: &'a str,
        message_id: &'a str,
        seq: i64,
    },
    /// The platform received a row.
    Received {
        session: &'a str,
        message_out_id: &'a str,
        seq: Option<i64>,
        quoted: Option<String>,
    },
}

/// What has been seen so far, per session.
#[derive(Default)]
struct Seen<'a> {
    /// seq → row id, per session.
    seqs: BTreeMap<&'a str, BTreeMap<i64, &'a str>>,
    /// Highest host seq routed so far, per session.
    last_host_seq: BTreeMap<&'a str, i64>,
    /// Tokens of the messages accepted so far.
    routed_tokens: Vec<String>,
}

/// Replays the run and judges the online rules.
pub fn check(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let mut seen = Seen::default();
    for (at_ms, moment) in moments(evidence) {
        match moment {
            Moment::Routed {
                index,
                session,
                message_id,
                seq,
            } => {
                // A row lost with a failed fsync may hand its seq out again.
                let reusable = evidence.maybe_durable(session, "inbound.db", None);
                if !reusable {
                    routed(&mut seen, verdict, at_ms, session, message_id, seq);
                }
                seen.routed_tokens.push(evidence.token(index));
            }
            Moment::Received {
                session,
                message_out_id,
                seq,
                quoted,
            } => {
                let reusable = evidence.maybe_durable(session, "outbound.db", None);
                if let Some(seq) = seq.filter(|_| !reusable) {
                    received_seq(&mut seen, verdict, at_ms, session, message_out_id, seq);
                }
                if let Some(quoted) = quoted {
                    nothing_before_arrival(evidence, &seen, verdict, at_ms, session, &quoted);
                }
            }
        }
    }
    if evidence.ledger.shared_session_file {
        verdict.not_judged(Property::SingleWriter, SINGLE_WRITER_BY_DESIGN);
        return;
    }
    if !evidence.ledger.observed.vfs_opens {
        verdict.not_judged(
            Property::SingleWriter,
            "who opened which DB for writing is known only to a VFS that records every open \
             (the simulation's)",
        );
        return;
    }
    let opened = &evidence.ledger.final_state.single_writer_violations;
    verdict.check(Property::SingleWriter, opened.is_empty(), || {
        Found::new(format!("SimFs saw: {}", opened.join("; ")))
    });
}

/// Why §9.5 is not judged for a run whose design shares one session file between the sides.
pub const SINGLE_WRITER_BY_DESIGN: &str =
    "by design: both sides write one session.db (single layout); its consequences are judged \
     by the other properties";

/// Every moment of the run, in time order; moments at one instant in the order of the trace
/// steps that made them.
fn moments<'a>(evidence: &Evidence<'a>) -> Vec<(i64, Moment<'a>)> {
    let mut moments: Vec<(i64, u64, Moment<'a>)> = Vec::new();
    for sent in &evidence.ledger.sent {
        let (Some(at_ms), Some(session), Some(message_id), Some(seq)) = (
            sent.routed_at_ms,
            sent.session_id.as_deref(),
            sent.message_id.as_deref(),
            sent.seq,
        ) else {
            continue;
        };
        let moment = Moment::Routed {
            index: sent.index,
            session,
            message_id,
            seq,
        };
        let step = evidence.routed_steps.get(&sent.index).copied();
        moments.push((at_ms, step.unwrap_or(u64::MAX), moment));
    }
    for send in evidence.received() {
        let moment = Moment::Received {
            session: &send.session_id,
            message_out_id: &send.message_out_id,
            seq: send.seq,
            quoted: quoted_prompt(&send.content),
        };
        let key = (send.message_out_id.clone(), send.at_ms);
        let step = evidence.send_steps.get(&key).copied();
        moments.push((send.at_ms, step.unwrap_or(u64::MAX), moment));
    }
    // A stable sort keeps ledger order where the trace is silent.
    moments.sort_by_key(|(at_ms, step, _)| (*at_ms, *step));
    moments
        .into_iter()
        .map(|(at_ms, _, moment)| (at_ms, moment))
        .collect()
}

fn routed<'a>(
    seen: &mut Seen<'a>,
    verdict: &mut Verdict,
    at_ms: i64,
    session: &'a str,
    message_id: &'a str,
    seq: i64,
) {
    let found = |detail: String| Found::new(detail).in_session(session).at(at_ms);
    verdict.check(Property::Seq, seq % 2 == 0 && seq > 0, || {
        found(format!(
            "host gave {message_id} seq {seq}: not a positive even number"
        ))
    });
    let last = seen.last_host_seq.get(session).copied().unwrap_or(0);
    verdict.check(Property::Seq, seq > last, || {
        found(format!(
            "host gave {message_id} seq {seq} after it had given seq {last}: not increasing"
        ))
    });
    seen.last_host_seq.insert(session, seq.max(last));
    unique(seen, verdict, at_ms, session, message_id, seq);
}

fn received_seq<'a>(
    seen: &mut Seen<'a>,
    verdict: &mut Verdict,
    at_ms: i64,
    session: &'a str,
    message_out_id: &'a str,
    seq: i64,
) {
    verdict.check(Property::Seq, seq % 2 == 1, || {
        Found::new(format!(
            "the channel received {message_out_id} with seq {seq}: a container seq must be odd"
        ))
        .in_session(session)
        .at(at_ms)
    });
    unique(seen, verdict, at_ms, session, message_out_id, seq);
}

/// A seq names one row of its session, whichever table it is in.
fn unique<'a>(
    seen: &mut Seen<'a>,
    verdict: &mut Verdict,
    at_ms: i64,
    session: &'a str,
    id: &'a str,
    seq: i64,
) {
    let owners = seen.seqs.entry(session).or_default();
    let owner = *owners.entry(seq).or_insert(id);
    verdict.check(Property::Seq, owner == id, || {
        Found::new(format!("seq {seq} names both {owner} and {id}"))
            .in_session(session)
            .at(at_ms)
    });
}

/// An answer that quotes a workload token cannot reach the platform before the host accepted
/// the message carrying it.
fn nothing_before_arrival(
    evidence: &Evidence<'_>,
    seen: &Seen<'_>,
    verdict: &mut Verdict,
    at_ms: i64,
    session: &str,
    quoted: &str,
) {
    for index in 0..evidence.ledger.sent.len() {
        let token = evidence.token(index);
        if !contains_word(quoted, &token) {
            continue;
        }
        let arrived = seen.routed_tokens.contains(&token);
        verdict.check(Property::Time, arrived, || {
            Found::new(format!(
                "an answer quoting {token} reached the channel before {token} was accepted"
            ))
            .in_session(session)
            .at(at_ms)
        });
    }
}
