//! §9.14 No head-of-line blocking.
//!
//! Judged from what the channel and the delivery passes did, as the trace shows them:
//!
//! - A row the platform refused for good (a send that finished `permanent` while its host ran),
//!   or one whose sends failed as often as the host tries a row (`send_attempts_max`) and never
//!   got through, ends recorded undeliverable with a reason — never delivered, never left open.
//! - Once faults stop, a session's delivery pass never fails twice in a row. A row that fails
//!   on its own must cost only itself (a failed attempt, then backoff); a pass that ends on it
//!   every time holds back every later row of the session, which is exactly what this forbids.
//!   Only trouble with the session's files may end a pass (PROTOCOL §7), and a storage fault
//!   (a full disk, a failed sync, a busy database, a power loss) may outlast the active period
//!   by some operations the record does not bound; so this part is judged in runs where no
//!   storage fault struck, and counted as not judged in the others.

use super::evidence::Evidence;
use super::{Found, Property, Verdict};
use crate::event::{Actor, Event, SendResult};
use crate::fault::Fault;
use clawsim_core::model::status;
use std::collections::BTreeMap;

/// §9.14.
pub fn head_of_line(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    undeliverable_rows_end_recorded(evidence, verdict);
    no_pass_fails_twice_once_faults_stop(evidence, verdict);
}

/// How each row's sends went, by session and row: refused for good, failed for now, received.
#[derive(Default)]
struct Sends {
    permanent: bool,
    transient: u32,
    received: bool,
}

fn undeliverable_rows_end_recorded(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let mut sends: BTreeMap<(String, String), Sends> = BTreeMap::new();
    for recorded in evidence.outcome.events {
        let Event::SendFinished {
            row,
            result,
            host_alive: true,
            ..
        } = &recorded.event
        else {
            continue;
        };
        let session = recorded.session.clone().unwrap_or_default();
        let of_row = sends.entry((session, row.clone())).or_default();
        match result {
            SendResult::Received => of_row.received = true,
            SendResult::Transient { .. } => of_row.transient += 1,
            SendResult::Permanent { .. } => of_row.permanent = true,
        }
    }
    let attempts_max = evidence.host.send_attempts_max;
    for ((session, row), of_row) in sends {
        // A row that got through in the end was deliverable: its refusal was never recorded
        // (the record failed) and a later send succeeded.
        let failing_every_time = of_row.transient >= attempts_max;
        if of_row.received || !(of_row.permanent || failing_every_time) {
            continue;
        }
        let Some(snapshot) = evidence.snapshots.get(session.as_str()) else {
            continue;
        };
        let record = snapshot.delivered.iter().find(|d| d.message_out_id == row);
        let recorded = record.is_some_and(|d| {
            d.status == status::UNDELIVERABLE && d.reason.as_deref().is_some_and(|r| !r.is_empty())
        });
        let lost = evidence.maybe_durable(&session, "inbound.db", None);
        verdict.check(Property::HeadOfLine, recorded || lost, || {
            let why = if of_row.permanent {
                "the platform refused it for good".to_string()
            } else {
                format!("its {} sends all failed", of_row.transient)
            };
            Found::new(format!(
                "{row} cannot be delivered ({why}) but is recorded {}, not undeliverable with \
                 its reason",
                record.map_or("nowhere", |d| d.status.as_str())
            ))
            .in_session(&session)
        });
    }
}

fn no_pass_fails_twice_once_faults_stop(evidence: &Evidence<'_>, verdict: &mut Verdict) {
    let storage_faulted = evidence.applied_faults().any(|f| {
        matches!(
            f.fault,
            Fault::FsyncError { .. }
                | Fault::DiskFull { .. }
                | Fault::SqliteBusy { .. }
                | Fault::PowerCut { .. }
                | Fault::MachineCrash { .. }
        )
    });
    if storage_faulted {
        verdict.not_judged(
            Property::HeadOfLine,
            "passes failing in a row, in a run where a storage fault struck (how long its \
             effect lasts is not recorded)",
        );
        return;
    }
    let mut quiet = false;
    // Whether the last pass of each session since faults stopped failed.
    let mut last_failed: BTreeMap<String, bool> = BTreeMap::new();
    for recorded in evidence.outcome.events {
        let pass = matches!(recorded.actor, Actor::DeliveryFast | Actor::DeliverySlow);
        let failed = match &recorded.event {
            Event::QuietPeriod => {
                quiet = true;
                continue;
            }
            Event::PassFailed { .. } if pass => true,
            Event::PassDone if pass => false,
            _ => continue,
        };
        if !quiet {
            continue;
        }
        let session = recorded.session.clone().unwrap_or_default();
        let before = last_failed.insert(session.clone(), failed).unwrap_or(false);
        verdict.check(Property::HeadOfLine, !(failed && before), || {
            Found::new(
                "two delivery passes of the session failed in a row after faults stopped: \
                 something held back every row behind it"
                    .to_string(),
            )
            .in_session(&session)
            .at(recorded.at_ms)
        });
    }
}
