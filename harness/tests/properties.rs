//! Every property of PROTOCOL §9 fires when what it guards is broken.
//!
//! A checker that never fires proves nothing. Method: run one clean world (no faults; chat,
//! escaped content, a one-shot and a recurring task) and show that every property holds on it;
//! then, per property, break exactly what it guards with a deliberately faulty double of the
//! evidence — a channel that received a row twice, a DB that lost a row or holds a corrupted
//! image, a provider that answered twice or answered early, a sweep that reset a live agent — and
//! show that this property, and only the ones that depend on the same fact, report it. The
//! doubles live here, in the test; nothing in core or sim is switched. The clean run also holds
//! commands (one refused to a non-admin, an admin's `/clear`) and a file sent through the
//! outbox, so §9.11–§9.14 are exercised on it too.

use clawsim::case::Case;
use clawsim::properties::{check, Property};
use clawsim_core::inspect::{DeliveredRow, SessionSnapshot};
use clawsim_core::model::{kind, status, InboundRow, OutboundRow, Route};
use clawsim_core::time::format_instant;
use clawsim_oracle::event::{Actor, Event, SendResult, SweepFacts};
use clawsim_sim::faults::{Fault, FaultPlan, FaultSide};
use clawsim_sim::ledger::{FaultRecord, IntegrityRecord, MaybeDurableRecord};
use clawsim_sim::trace::{Trace, TraceMode};
use clawsim_sim::workload::{ChatSpec, UserMessage, Workload};
use clawsim_sim::world::start_ms;
use clawsim_sim::world::{run_world, RunOutcome};
use std::sync::OnceLock;

const SEED: u64 = 7;

fn message(at_ms: i64, chat: usize, text: &str) -> UserMessage {
    UserMessage {
        at_ms,
        chat,
        thread_id: None,
        sender: format!("u{chat}"),
        sender_id: format!("id{chat}"),
        text: text.to_string(),
        form: Default::default(),
    }
}

/// Two chats (chat 0's user is the admin), seven messages: plain, hostile markup, a one-shot
/// task, a recurring one, an admin command from a non-admin, the admin's `/clear`, a file.
fn clean_case() -> Case {
    let chats = (0..2)
        .map(|i| ChatSpec {
            agent_group_id: format!("ag{i}"),
            messaging_group_id: format!("mg{i}"),
            platform_id: format!("chat{i}"),
            per_thread: false,
        })
        .collect();
    let messages = vec![
        message(5_000, 0, "m0 hello"),
        message(10_000, 1, r#"m1 <b>bold</b> & "quoted""#),
        message(
            40_000,
            0,
            r#"m2 plan @mock tool schedule_task {"prompt":"k2 tick","processAfter":"${start+120s}"}"#,
        ),
        message(
            60_000,
            1,
            r#"m3 repeat @mock tool schedule_task {"prompt":"k3 tick","processAfter":"${start+150s}","recurrence":"*/2 * * * *"}"#,
        ),
        message(90_000, 1, "/cost m4"),
        message(100_000, 0, "/clear m5"),
        message(
            110_000,
            0,
            r#"m6 file @mock tool send_file {"path":".heartbeat","filename":"hb.txt","text":"here"}"#,
        ),
    ];
    Case {
        seed: SEED,
        profile: "bind".into(),
        workload: Workload {
            chats,
            messages,
            answer_delay_ms_max: 5_000,
            ..Workload::default()
        },
        faults: FaultPlan::none(),
        active_ms: 5 * 60_000,
        quiet_ms: 10 * 60_000,
        tape: None,
        design: None,
    }
}

fn clean() -> &'static RunOutcome {
    static CLEAN: OnceLock<RunOutcome> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let config = clean_case().to_config(TraceMode::Full).unwrap();
        run_world(config)
    })
}

fn fired(outcome: &RunOutcome) -> Vec<Property> {
    check(&outcome.record()).failed()
}

/// A copy of the clean run to break.
fn doctored() -> RunOutcome {
    clean().clone()
}

/// The `messages_in` row of the run's one-shot task.
fn one_shot_task(outcome: &mut RunOutcome) -> &mut InboundRow {
    snapshot_mut(outcome, |s| has_task(s) && !recurring(s))
        .inbound
        .iter_mut()
        .find(|r| r.kind == kind::TASK)
        .expect("a one-shot task row")
}

fn snapshot_mut(
    outcome: &mut RunOutcome,
    with: impl Fn(&SessionSnapshot) -> bool,
) -> &mut SessionSnapshot {
    outcome
        .ledger
        .final_state
        .sessions
        .iter_mut()
        .filter_map(|s| s.snapshot.as_mut())
        .find(|s| with(s))
        .expect("a session with such rows")
}

fn is_answer(row: &OutboundRow) -> bool {
    row.content_json()["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("Mock response to: "))
}

fn has_task(snapshot: &SessionSnapshot) -> bool {
    snapshot.inbound.iter().any(|r| r.kind == kind::TASK)
}

fn recurring(snapshot: &SessionSnapshot) -> bool {
    snapshot
        .inbound
        .iter()
        .filter(|r| r.kind == kind::TASK)
        .count()
        > 1
}

#[test]
fn the_world_starts_where_the_case_expects() {
    let first = &clean().trace.events()[0];
    assert_eq!(first.at_ms, start_ms(SEED), "{first:?}");
}

#[test]
fn every_property_holds_on_a_clean_run_and_each_is_exercised() {
    let outcome = clean();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let verdict = check(&outcome.record());
    assert!(verdict.held(), "{:#?}", verdict.violations);
    for property in Property::ALL {
        assert!(
            verdict.checks[&property] > 0,
            "{property} was never applied"
        );
    }
    // The recurring task fired several times, each occurrence answered once.
    let occurrences = outcome
        .ledger
        .final_state
        .sessions
        .iter()
        .filter_map(|s| s.snapshot.as_ref())
        .flat_map(|s| &s.inbound)
        .filter(|r| r.kind == kind::TASK)
        .count();
    assert!(occurrences >= 3, "{occurrences} task rows");
}

// ---- §9.1 no loss -----------------------------------------------------------------------

#[test]
fn a_message_left_pending_is_lost() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| !s.acks.is_empty());
    let id = snapshot.acks[0].message_id.clone();
    snapshot.acks.retain(|a| a.message_id != id);
    let row = snapshot.inbound.iter_mut().find(|r| r.id == id).unwrap();
    row.status = status::PENDING.into();
    assert_eq!(fired(&outcome), vec![Property::NoLoss]);
}

#[test]
fn a_message_the_host_never_accepted_is_lost() {
    let mut outcome = doctored();
    let sent = &mut outcome.ledger.sent[0];
    sent.routed_at_ms = None;
    sent.session_id = None;
    sent.message_id = None;
    sent.seq = None;
    assert!(fired(&outcome).contains(&Property::NoLoss));
}

#[test]
fn a_terminal_ack_never_copied_into_messages_in_is_lost() {
    // A sweep that never copies the agent-runner's outcome: the k2 task was acked completed
    // long before the end, and messages_in says failed.
    let mut outcome = doctored();
    let task = one_shot_task(&mut outcome);
    task.status = status::FAILED.into();
    assert_eq!(fired(&outcome), vec![Property::NoLoss]);
}

// ---- §9.2 no duplicate ------------------------------------------------------------------

/// A faulty channel: the platform got the first answer twice.
fn sent_twice() -> RunOutcome {
    let mut outcome = doctored();
    let first = outcome.ledger.received().next().unwrap().clone();
    let mut again = first.clone();
    again.at_ms += 1_000;
    let position = outcome
        .ledger
        .channel
        .iter()
        .position(|s| *s == first)
        .unwrap();
    outcome.ledger.channel.insert(position + 1, again);
    outcome
}

#[test]
fn a_row_received_twice_is_a_duplicate() {
    assert_eq!(fired(&sent_twice()), vec![Property::NoDuplicate]);
}

#[test]
fn a_resend_after_the_host_died_mid_send_is_allowed() {
    let mut outcome = sent_twice();
    let first = outcome.ledger.received().next().unwrap().clone();
    let orphaned = Event::SendFinished {
        row: first.message_out_id.clone(),
        result: SendResult::Received,
        host_alive: false,
        reached: true,
    };
    outcome.trace = with_events(&outcome, first.at_ms, vec![(Actor::Channel, orphaned)]);
    assert_eq!(fired(&outcome), vec![]);
}

/// A resend after a power cut in the middle of the `delivered` record (seed 5, power-loss): the
/// host sent, died writing the record, the next host sent again.
#[test]
fn a_resend_after_the_host_died_mid_record_is_allowed() {
    let mut outcome = sent_twice();
    let first = outcome.ledger.received().next().unwrap().clone();
    let events = vec![
        (Actor::Delivery, record_failed(&first.message_out_id)),
        (Actor::World, Event::HostStarted { incarnation: 2 }),
    ];
    outcome.trace = with_events(&outcome, first.at_ms, events);
    assert_eq!(fired(&outcome), vec![]);
}

/// A failed record alone excuses nothing: a host that lives on must record, not resend.
#[test]
fn a_resend_after_a_failed_record_without_a_host_death_is_a_duplicate() {
    let mut outcome = sent_twice();
    let first = outcome.ledger.received().next().unwrap().clone();
    let failed = record_failed(&first.message_out_id);
    outcome.trace = with_events(&outcome, first.at_ms, vec![(Actor::Delivery, failed)]);
    assert_eq!(fired(&outcome), vec![Property::NoDuplicate]);
}

/// The row the platform received first.
fn first_received_row(outcome: &RunOutcome) -> String {
    let first = outcome.ledger.received().next().unwrap();
    first.message_out_id.clone()
}

/// The host heard a send of `row` went through but failed to record it.
fn record_failed(row: &str) -> Event {
    Event::RecordFailed {
        row: row.to_string(),
        error: "disk I/O error".into(),
    }
}

/// `outcome`'s trace with `events` appended at `at_ms`, in the first send's session.
fn with_events(outcome: &RunOutcome, at_ms: i64, events: Vec<(Actor, Event)>) -> Trace {
    let session = outcome
        .ledger
        .received()
        .next()
        .map(|s| s.session_id.clone());
    let mut trace = copy_of(&outcome.trace);
    for (actor, event) in events {
        trace.record(at_ms, actor, session.as_deref(), event);
    }
    trace
}

/// A fresh trace holding `trace`'s events.
fn copy_of(trace: &Trace) -> Trace {
    let mut copy = Trace::new(TraceMode::Full);
    for e in trace.events() {
        copy.record(e.at_ms, e.actor, e.session.as_deref(), e.event.clone());
    }
    copy
}

// ---- §9.3 no lost output ----------------------------------------------------------------

#[test]
fn a_due_row_never_recorded_is_lost_output() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| !s.delivered.is_empty());
    snapshot.delivered.remove(0);
    assert_eq!(fired(&outcome), vec![Property::NoLostOutput]);
}

#[test]
fn a_row_recorded_delivered_that_the_channel_never_got_is_lost_output() {
    let mut outcome = doctored();
    let lost = first_received_row(&outcome);
    outcome.ledger.channel.retain(|s| s.message_out_id != lost);
    assert_eq!(fired(&outcome), vec![Property::NoLostOutput]);
}

#[test]
fn an_undeliverable_row_without_a_reason_is_lost_output() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| !s.delivered.is_empty());
    let record: &mut DeliveredRow = &mut snapshot.delivered[0];
    record.status = status::UNDELIVERABLE.into();
    record.reason = None;
    assert_eq!(fired(&outcome), vec![Property::NoLostOutput]);
    let snapshot = snapshot_mut(&mut outcome, |s| {
        s.delivered
            .iter()
            .any(|d| d.status == status::UNDELIVERABLE)
    });
    snapshot.delivered[0].reason = Some("no adapter for channel".into());
    assert_eq!(fired(&outcome), vec![]);
}

// ---- §9.3a one answer -------------------------------------------------------------------

#[test]
fn a_turn_replayed_after_a_crash_is_a_second_answer() {
    // A broken provider: it answered m0 again in a new row.
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| s.outbound.iter().any(is_answer));
    let mut second = snapshot
        .outbound
        .iter()
        .find(|r| is_answer(r))
        .unwrap()
        .clone();
    second.id = format!("{}-again", second.id);
    second.seq = second.seq.map(|s| s + 1_000);
    snapshot.delivered.push(DeliveredRow {
        message_out_id: second.id.clone(),
        delivered_at: snapshot.delivered[0].delivered_at.clone(),
        status: status::DELIVERED.into(),
        reason: None,
    });
    snapshot.outbound.push(second.clone());
    let mut receipt = outcome.ledger.received().next().unwrap().clone();
    receipt.content = second.content_json();
    receipt.seq = second.seq;
    receipt.message_out_id = second.id;
    receipt.at_ms = outcome.ledger.channel.last().unwrap().at_ms + 1;
    outcome.ledger.channel.push(receipt);
    // §9.11 too: m0 is answered more often in its conversation than its turn allows.
    assert_eq!(
        fired(&outcome),
        vec![Property::OneAnswer, Property::Answered]
    );
}

// ---- §9.4 seq -----------------------------------------------------------------------------

#[test]
fn a_container_row_with_an_even_seq_breaks_seq() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| !s.outbound.is_empty());
    let row = &mut snapshot.outbound[0];
    row.seq = row.seq.map(|s| s + 1_001);
    assert_eq!(fired(&outcome), vec![Property::Seq]);
}

#[test]
fn two_rows_sharing_a_seq_break_seq() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| s.inbound.len() >= 2);
    snapshot.inbound[1].seq = snapshot.inbound[0].seq;
    assert_eq!(fired(&outcome), vec![Property::Seq]);
}

#[test]
fn host_seqs_handed_out_in_decreasing_order_break_seq_online() {
    let mut outcome = doctored();
    let session = outcome.ledger.sent[0].session_id.clone();
    let later = outcome
        .ledger
        .sent
        .iter()
        .position(|s| s.index > 0 && s.session_id == session)
        .unwrap();
    outcome.ledger.sent[later].seq = Some(0);
    let verdict = check(&outcome.record());
    assert_eq!(verdict.failed(), vec![Property::Seq]);
    assert!(
        verdict.violations[0].at_ms.is_some(),
        "online: names the moment"
    );
}

// ---- §9.5 single writer -------------------------------------------------------------------

#[test]
fn a_side_opening_the_other_sides_db_for_writing_is_reported() {
    let mut outcome = doctored();
    outcome
        .ledger
        .final_state
        .single_writer_violations
        .push("host opened /data/sessions/ag0/s/outbound.db for writing".into());
    assert_eq!(fired(&outcome), vec![Property::SingleWriter]);
}

// ---- §9.6 time ----------------------------------------------------------------------------

#[test]
fn an_answer_before_its_message_arrived_is_early() {
    let mut outcome = doctored();
    let routed = outcome.ledger.sent[0].routed_at_ms.unwrap();
    outcome.ledger.sent[0].routed_at_ms = Some(routed + 3_600_000);
    assert!(fired(&outcome).contains(&Property::Time));
}

#[test]
fn a_task_answered_before_its_process_after_is_early() {
    let mut outcome = doctored();
    let task = one_shot_task(&mut outcome);
    task.process_after = Some(format_instant(
        clean().ledger.final_state.at_ms + 86_400_000,
    ));
    assert_eq!(fired(&outcome), vec![Property::Time]);
}

#[test]
fn a_slow_answer_on_a_healthy_session_is_late() {
    let mut outcome = doctored();
    let first = outcome.ledger.sent[0].clone();
    let token = "m0";
    // The platform got m0's answer ten minutes after m0 arrived, and it was acked as late.
    for send in &mut outcome.ledger.channel {
        let text = send.content["text"].as_str().unwrap_or("");
        if text.contains(token) {
            send.at_ms = first.routed_at_ms.unwrap() + 600_000;
        }
    }
    let snapshot = snapshot_mut(&mut outcome, |s| {
        s.acks
            .iter()
            .any(|a| Some(&a.message_id) == first.message_id.as_ref())
    });
    for ack in &mut snapshot.acks {
        if Some(&ack.message_id) == first.message_id.as_ref() {
            ack.status_changed = format_instant(first.routed_at_ms.unwrap() + 600_000);
        }
    }
    assert_eq!(fired(&outcome), vec![Property::Time]);
}

// ---- §9.7 series ---------------------------------------------------------------------------

#[test]
fn two_rows_for_one_occurrence_break_the_series() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, recurring);
    let tasks: Vec<usize> = (0..snapshot.inbound.len())
        .filter(|i| snapshot.inbound[*i].kind == kind::TASK)
        .collect();
    let earlier = snapshot.inbound[tasks[0]].process_after.clone();
    snapshot.inbound[tasks[1]].process_after = earlier;
    assert_eq!(fired(&outcome), vec![Property::Series]);
}

#[test]
fn an_occurrence_claimed_after_its_series_was_cancelled_breaks_the_series() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, recurring);
    let first: InboundRow = snapshot
        .inbound
        .iter()
        .find(|r| r.kind == kind::TASK)
        .unwrap()
        .clone();
    // The agent cancelled the series right after its first occurrence; every later one was
    // still claimed.
    let mut cancel = snapshot.outbound[0].clone();
    cancel.id = "out-cancel".into();
    cancel.seq = Some(100_001);
    cancel.kind = kind::SYSTEM.into();
    cancel.route.channel_type = None;
    cancel.content = serde_json::json!({"action": "cancel_task", "taskId": first.id}).to_string();
    snapshot.outbound.push(cancel);
    snapshot.delivered.push(DeliveredRow {
        message_out_id: "out-cancel".into(),
        delivered_at: first.process_after.clone().unwrap(),
        status: status::DELIVERED.into(),
        reason: None,
    });
    assert_eq!(fired(&outcome), vec![Property::Series]);
}

// ---- §9.8 retries ---------------------------------------------------------------------------

#[test]
fn more_than_five_tries_break_retries() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| !s.inbound.is_empty());
    snapshot.inbound[0].tries = 6;
    assert!(fired(&outcome).contains(&Property::Retries));
}

#[test]
fn a_retry_sooner_than_its_backoff_breaks_retries() {
    let mut outcome = doctored();
    let snapshot = snapshot_mut(&mut outcome, |s| !s.inbound.is_empty());
    let row = &mut snapshot.inbound[0];
    row.tries = 3;
    let created = clawsim_core::time::parse_instant(&row.timestamp).unwrap();
    row.process_after = Some(format_instant(created + 5_000));
    assert_eq!(fired(&outcome), vec![Property::Retries]);
}

#[test]
fn a_sweep_that_resets_a_live_agent_breaks_retries() {
    let mut outcome = doctored();
    let polled = outcome
        .trace
        .events()
        .iter()
        .rev()
        .find(|e| matches!(e.event, Event::Polled { .. }))
        .unwrap()
        .clone();
    let mut trace = copy_of(&outcome.trace);
    let reset = Event::Swept {
        facts: SweepFacts {
            presumed_dead: true,
            retried: 1,
            ..SweepFacts::default()
        },
    };
    trace.record(
        polled.at_ms + 30_000,
        Actor::Sweep,
        polled.session.as_deref(),
        reset,
    );
    outcome.trace = trace;
    assert_eq!(fired(&outcome), vec![Property::Retries]);
}

#[test]
fn a_retry_given_to_the_agent_before_its_backoff_breaks_retries() {
    // Whatever the row's columns say: the record shows m0 given to a new container one second
    // after a sweep retried it.
    let mut outcome = doctored();
    let given = || Event::TurnStarted {
        prompt: "<message>m0 hello</message>".into(),
        prompt_chars: 28,
        resumed: true,
    };
    let retried = Event::Swept {
        facts: SweepFacts {
            presumed_dead: true,
            retried: 1,
            ..SweepFacts::default()
        },
    };
    for event in [Event::RunnerStarted, given(), retried] {
        outcome.trace = with_event_in(&outcome, 0, Actor::Provider, event);
    }
    let session = outcome.ledger.sent[0].session_id.clone();
    let mut trace = copy_of(&outcome.trace);
    let at_ms = outcome.ledger.final_state.at_ms + 1_000;
    trace.record(at_ms, Actor::Provider, session.as_deref(), given());
    outcome.trace = trace;
    let verdict = check(&outcome.record());
    assert_eq!(verdict.failed(), vec![Property::Retries]);
    assert!(
        verdict
            .violations
            .iter()
            .any(|v| v.detail.contains("the shortest backoff is 10000 ms")),
        "{:#?}",
        verdict.violations
    );
}

// ---- §9.9 durability --------------------------------------------------------------------------

/// `PRAGMA integrity_check` of a real SQLite image whose second page was overwritten.
fn corrupted_image_check() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbound.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE messages_in (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, content TEXT);",
        )
        .unwrap();
        for i in 0..200 {
            conn.execute(
                "INSERT INTO messages_in VALUES (?1, ?2, ?3)",
                rusqlite::params![format!("msg-{i}"), i * 2, "x".repeat(100)],
            )
            .unwrap();
        }
    }
    let mut image = std::fs::read(&path).unwrap();
    let page = 4096;
    for byte in &mut image[page + 8..page + 200] {
        *byte = 0x5a;
    }
    std::fs::write(&path, image).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn.prepare("PRAGMA integrity_check").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0));
    match rows {
        Ok(rows) => rows.map(|r| r.unwrap_or_else(|e| e.to_string())).collect(),
        Err(error) => vec![format!("error: {error}")],
    }
}

#[test]
fn a_corrupted_db_image_breaks_durability() {
    let result = corrupted_image_check();
    assert_ne!(result, vec!["ok".to_string()]);
    let mut outcome = doctored();
    outcome.ledger.crash_checks.push(IntegrityRecord {
        at_ms: outcome.ledger.final_state.at_ms,
        file: "/data/sessions/ag0/s/inbound.db".into(),
        result,
    });
    assert_eq!(fired(&outcome), vec![Property::Durability]);
}

#[test]
fn a_received_row_missing_from_outbound_db_breaks_durability() {
    let mut outcome = doctored();
    let received = outcome
        .ledger
        .received()
        .next()
        .unwrap()
        .message_out_id
        .clone();
    let snapshot = snapshot_mut(&mut outcome, |s| {
        s.outbound.iter().any(|r| r.id == received)
    });
    snapshot.outbound.retain(|r| r.id != received);
    snapshot.delivered.retain(|d| d.message_out_id != received);
    assert_eq!(fired(&outcome), vec![Property::Durability]);
}

#[test]
fn a_row_lost_after_a_failed_fsync_is_maybe_durable_not_a_violation() {
    let mut outcome = doctored();
    let received = outcome.ledger.received().next().unwrap().clone();
    let snapshot = snapshot_mut(&mut outcome, |s| {
        s.outbound.iter().any(|r| r.id == received.message_out_id)
    });
    snapshot
        .outbound
        .retain(|r| r.id != received.message_out_id);
    snapshot
        .delivered
        .retain(|d| d.message_out_id != received.message_out_id);
    let session = outcome
        .ledger
        .final_state
        .sessions
        .iter()
        .find(|s| s.session_id == received.session_id)
        .unwrap();
    let path = format!("{}/outbound.db", session.dir);
    outcome
        .ledger
        .final_state
        .maybe_durable
        .push(MaybeDurableRecord {
            side: "container".into(),
            file: format!("{path}-journal"),
            path,
            at_ms: Some(outcome.ledger.final_state.at_ms),
            cause: "FsyncError { nth: 1 }".into(),
        });
    assert_eq!(fired(&outcome), vec![]);
    // The same loss after a commit that had returned is a lost committed row.
    let record = outcome.ledger.final_state.maybe_durable.last_mut().unwrap();
    record.cause = "CommitNotDurable".into();
    assert_eq!(fired(&outcome), vec![Property::Durability]);
}

#[test]
fn an_accepted_message_missing_from_inbound_db_breaks_durability() {
    let mut outcome = doctored();
    let id = outcome.ledger.sent[0].message_id.clone().unwrap();
    let snapshot = snapshot_mut(&mut outcome, |s| s.inbound.iter().any(|r| r.id == id));
    snapshot.inbound.retain(|r| r.id != id);
    snapshot.acks.retain(|a| a.message_id != id);
    assert!(fired(&outcome).contains(&Property::Durability));
}

// ---- §9.10 formatting -------------------------------------------------------------------------

#[test]
fn an_unescaped_prompt_breaks_formatting() {
    let mut outcome = doctored();
    // A broken formatter: m1's text reached the agent with its markup raw.
    let raw = r#"Mock response to: <message id="4" sender="u1" time="00:00">m1 <b>bold</b> & "quoted"</message>"#;
    for send in &mut outcome.ledger.channel {
        if send.content["text"]
            .as_str()
            .is_some_and(|t| t.contains("m1 "))
        {
            send.content = serde_json::json!({ "text": raw });
        }
    }
    for session in &mut outcome.ledger.final_state.sessions {
        for row in session
            .snapshot
            .iter_mut()
            .flat_map(|s| s.outbound.iter_mut())
        {
            if row.content.contains("m1 ") {
                row.content = serde_json::json!({ "text": raw }).to_string();
            }
        }
    }
    // §9.11 too: what reached the conversation is not what the provider answered.
    assert_eq!(
        fired(&outcome),
        vec![Property::Formatting, Property::Answered]
    );
}

// ---- faults decide what is excused -------------------------------------------------------------

#[test]
fn clock_faults_switch_off_only_the_checks_they_would_falsify() {
    let mut outcome = sent_twice();
    outcome.ledger.faults.push(FaultRecord {
        at_ms: outcome.ledger.final_state.at_ms,
        fault: Fault::ClockStep {
            side: FaultSide::Container,
            delta_ms: -60_000,
        },
        applied: true,
    });
    // A clock fault excuses no duplicate.
    assert_eq!(fired(&outcome), vec![Property::NoDuplicate]);
}

// ---- §9.11 answered ---------------------------------------------------------------------------

/// Edits the platform's and the DB's copy of every reply whose text satisfies `which`: its
/// text and route, given as `(content JSON, route)`.
fn edit_replies(
    outcome: &mut RunOutcome,
    which: impl Fn(&str) -> bool,
    edit: impl Fn(&mut serde_json::Value, &mut Route),
) {
    for send in &mut outcome.ledger.channel {
        if send.content["text"].as_str().is_some_and(&which) {
            edit(&mut send.content, &mut send.route);
        }
    }
    for row in outcome
        .ledger
        .final_state
        .sessions
        .iter_mut()
        .filter_map(|s| s.snapshot.as_mut())
        .flat_map(|s| s.outbound.iter_mut())
    {
        let mut content = row.content_json();
        if content["text"].as_str().is_some_and(&which) {
            edit(&mut content, &mut row.route);
            row.content = content.to_string();
        }
    }
}

/// Every copy of the replies satisfying `which` given the text `text`.
fn rewrite_replies(outcome: &mut RunOutcome, which: impl Fn(&str) -> bool, text: &str) {
    edit_replies(outcome, which, |content, _| {
        *content = serde_json::json!({ "text": text })
    });
}

fn answers(token: &'static str) -> impl Fn(&str) -> bool {
    move |text| {
        text.strip_prefix("Mock response to: ")
            .is_some_and(|q| q.contains(&format!(">{token} ")))
    }
}

#[test]
fn a_message_completed_without_its_answer_is_unanswered() {
    // A runner that acks a turn completed although the provider's answer never went out: the
    // conversation got some other text instead.
    let mut outcome = doctored();
    rewrite_replies(&mut outcome, answers("m0"), "something else");
    assert_eq!(fired(&outcome), vec![Property::Answered]);
}

#[test]
fn a_message_failed_without_an_error_reply_is_unanswered() {
    let mut outcome = doctored();
    let id = outcome.ledger.sent[0].message_id.clone().unwrap();
    let snapshot = snapshot_mut(&mut outcome, |s| s.inbound.iter().any(|r| r.id == id));
    for ack in snapshot.acks.iter_mut().filter(|a| a.message_id == id) {
        ack.status = status::FAILED.into();
    }
    let row = snapshot.inbound.iter_mut().find(|r| r.id == id).unwrap();
    row.status = status::FAILED.into();
    assert_eq!(fired(&outcome), vec![Property::Answered]);
}

#[test]
fn a_refused_command_without_its_documented_reply_is_unanswered() {
    let mut outcome = doctored();
    let denied = |text: &str| text.starts_with("Permission denied: /cost");
    assert!(outcome
        .ledger
        .received()
        .any(|s| s.content["text"].as_str().is_some_and(denied)));
    rewrite_replies(&mut outcome, denied, "ok");
    assert_eq!(fired(&outcome), vec![Property::Answered]);
}

// ---- §9.12 routing ----------------------------------------------------------------------------

/// Every copy of the replies satisfying `which` sent to chat 1's conversation instead.
fn reroute(outcome: &mut RunOutcome, which: impl Fn(&str) -> bool) {
    let elsewhere = outcome.ledger.sent[1].conversation.clone().unwrap();
    edit_replies(outcome, which, |_, route| *route = elsewhere.clone());
}

#[test]
fn an_answer_sent_to_another_conversation_breaks_routing() {
    let mut outcome = doctored();
    reroute(&mut outcome, answers("m0"));
    assert_eq!(fired(&outcome), vec![Property::Answered, Property::Routing]);
}

#[test]
fn a_task_answered_in_another_conversation_breaks_routing() {
    // k2 was scheduled from chat 0; its output went to chat 1.
    let mut outcome = doctored();
    reroute(&mut outcome, |text| text.contains("k2 tick"));
    assert_eq!(fired(&outcome), vec![Property::Routing]);
}

// ---- §9.13 confinement ------------------------------------------------------------------------

/// `outcome`'s trace with `event` appended by `actor` in the session of workload message
/// `index`.
fn with_event_in(outcome: &RunOutcome, index: usize, actor: Actor, event: Event) -> Trace {
    let session = outcome.ledger.sent[index].session_id.clone();
    let mut trace = copy_of(&outcome.trace);
    let at_ms = outcome.ledger.final_state.at_ms;
    trace.record(at_ms, actor, session.as_deref(), event);
    trace
}

#[test]
fn a_file_written_outside_the_outbox_breaks_confinement() {
    let mut outcome = doctored();
    let session = outcome.ledger.final_state.sessions[0].clone();
    let escaped = Event::FileWritten {
        side: FaultSide::Container,
        path: format!("{}/outbox/../evil", session.dir),
    };
    let index = outcome
        .ledger
        .sent
        .iter()
        .position(|s| s.session_id.as_deref() == Some(&session.session_id))
        .unwrap();
    outcome.trace = with_event_in(&outcome, index, Actor::Files, escaped);
    assert_eq!(fired(&outcome), vec![Property::Confinement]);
}

#[test]
fn the_clean_run_sent_a_file_read_from_its_outbox() {
    let reads = clean()
        .trace
        .events()
        .iter()
        .filter(|e| matches!(&e.event, Event::FileRead { path, .. } if path.contains("/outbox/")))
        .count();
    assert!(reads >= 1, "the host read the file it sent");
    assert!(clean().ledger.received().any(|s| s.files == ["hb.txt"]));
}

#[test]
fn a_file_sent_that_was_not_read_from_the_rows_outbox_breaks_confinement() {
    let mut outcome = doctored();
    let send = outcome
        .ledger
        .channel
        .iter_mut()
        .find(|s| !s.files.is_empty())
        .unwrap();
    send.files = vec!["../../central.db".into()];
    assert_eq!(fired(&outcome), vec![Property::Confinement]);
}

#[test]
fn a_non_admins_command_reaching_the_provider_breaks_confinement() {
    let mut outcome = doctored();
    let reached = Event::TurnStarted {
        prompt: "/cost m4".into(),
        prompt_chars: 8,
        resumed: true,
    };
    outcome.trace = with_event_in(&outcome, 4, Actor::Provider, reached);
    assert_eq!(fired(&outcome), vec![Property::Confinement]);
}

#[test]
fn a_provider_session_reset_without_an_admins_clear_breaks_confinement() {
    // Chat 1 (m1, m3, and m4: a /cost refused to a non-admin) had a live provider session; a
    // later turn of the same agent-runner started afresh.
    let mut outcome = doctored();
    let heard = Event::ProviderResult {
        text: Some("x".into()),
    };
    let reset = Event::TurnStarted {
        prompt: "<message>later</message>".into(),
        prompt_chars: 24,
        resumed: false,
    };
    outcome.trace = with_event_in(&outcome, 1, Actor::Provider, heard);
    outcome.trace = with_event_in(&outcome, 1, Actor::Provider, reset.clone());
    assert_eq!(fired(&outcome), vec![Property::Confinement]);
    // The same reset in chat 0, where the admin's /clear came in, is the /clear's.
    let mut admin = doctored();
    let resumed_turns = |o: &RunOutcome| {
        let session = o.ledger.sent[5].session_id.clone();
        o.trace
            .events()
            .iter()
            .filter(|e| e.session == session)
            .any(|e| matches!(e.event, Event::TurnStarted { resumed: false, .. }))
    };
    assert!(resumed_turns(&admin), "the /clear reset chat 0's session");
    admin.trace = with_event_in(&admin, 5, Actor::Provider, reset);
    assert!(fired(&admin).contains(&Property::Confinement));
}

// ---- §9.14 head of line -----------------------------------------------------------------------

#[test]
fn a_row_refused_for_good_but_recorded_delivered_breaks_head_of_line() {
    // A host that records a row delivered although the platform refused it for good.
    let mut outcome = doctored();
    let row = first_received_row(&outcome);
    let mut trace = Trace::new(TraceMode::Full);
    for e in outcome.trace.events() {
        let event = match &e.event {
            Event::SendFinished {
                row: sent,
                host_alive,
                reached,
                ..
            } if *sent == row => Event::SendFinished {
                row: row.clone(),
                result: SendResult::Permanent {
                    error: "blocked".into(),
                },
                host_alive: *host_alive,
                reached: *reached,
            },
            other => other.clone(),
        };
        trace.record(e.at_ms, e.actor, e.session.as_deref(), event);
    }
    outcome.trace = trace;
    assert_eq!(fired(&outcome), vec![Property::HeadOfLine]);
}

#[test]
fn passes_failing_in_a_row_after_faults_stopped_break_head_of_line() {
    let mut outcome = doctored();
    let failed = || Event::PassFailed {
        error: "a row that fails every time".into(),
    };
    outcome.trace = with_event_in(&outcome, 0, Actor::DeliveryFast, failed());
    assert_eq!(fired(&outcome), vec![]);
    outcome.trace = with_event_in(&outcome, 0, Actor::DeliveryFast, failed());
    assert_eq!(fired(&outcome), vec![Property::HeadOfLine]);
}
