//! The checkers are independent of the core's time code.
//!
//! PROTOCOL §9 ("How the checks are made") asks that the checkers parse time and decide what is
//! due with their own code, so a bug in the core's cannot hide itself by being mirrored in the
//! judge. The bug these tests stand for: comparing stored instants as text. A row may hold
//! `2026-05-28 20:26:41` (the form SQLite's `datetime()` writes) while another holds
//! `2026-05-28T20:26:40.500Z`; as text the space sorts before the `T`, so a judge that compares
//! text gets both directions wrong. Each test builds a small run record by hand, shows that such
//! a deliberately wrong judge misreads it, and that the oracle's verdict is the right one.
//!
//! The last test reads the oracle's own source and fails if it ever calls the core's time or
//! recurrence code.

use clawsim_core::config::HostConfig;
use clawsim_core::inspect::{AckRow, DeliveredRow, SessionSnapshot};
use clawsim_core::model::{kind, status, InboundRow, OutboundRow, Route};
use clawsim_oracle::ledger::{ChannelSend, FinalSession, FinalState, Ledger, SendOutcome};
use clawsim_oracle::properties::Bounds;
use clawsim_oracle::{check, time, Property, RunRecord, Verdict};
use serde_json::json;
use std::path::Path;

/// 2026-05-28T20:26:40Z.
const NOW_MS: i64 = 1_780_000_000_000;
const SESSION: &str = "sess-1";

/// The deliberately wrong judge: "due" when the stored text sorts at or before now's text.
fn text_is_due(after: &str, now_text: &str) -> bool {
    after <= now_text
}

fn route() -> Route {
    Route {
        platform_id: Some("chat0".into()),
        channel_type: Some("test".into()),
        thread_id: None,
    }
}

fn inbound(id: &str, seq: i64, kind: &str, content: serde_json::Value) -> InboundRow {
    InboundRow {
        id: id.into(),
        seq: Some(seq),
        kind: kind.into(),
        timestamp: "2026-05-28T08:00:00.000Z".into(),
        status: status::COMPLETED.into(),
        process_after: None,
        recurrence: None,
        tries: 0,
        route: route(),
        content: content.to_string(),
        series_id: None,
    }
}

fn outbound(id: &str, seq: i64, at: &str, kind: &str, content: serde_json::Value) -> OutboundRow {
    OutboundRow {
        id: id.into(),
        seq: Some(seq),
        in_reply_to: None,
        timestamp: at.into(),
        deliver_after: None,
        recurrence: None,
        kind: kind.into(),
        route: route(),
        content: content.to_string(),
    }
}

fn delivered(id: &str) -> DeliveredRow {
    DeliveredRow {
        message_out_id: id.into(),
        delivered_at: "2026-05-28T20:26:40.600Z".into(),
        status: status::DELIVERED.into(),
        reason: None,
    }
}

/// A ledger holding one session in `snapshot` at the end, read at `NOW_MS`.
fn ledger_with(snapshot: SessionSnapshot, channel: Vec<ChannelSend>) -> Ledger {
    Ledger {
        channel,
        final_state: FinalState {
            at_ms: NOW_MS,
            host_now_ms: NOW_MS,
            sessions: vec![FinalSession {
                session_id: SESSION.into(),
                agent_group_id: "agent".into(),
                dir: "/data/sessions/agent/sess-1".into(),
                snapshot: Some(snapshot),
                error: None,
            }],
            ..FinalState::default()
        },
        ..Ledger::default()
    }
}

fn judge(ledger: &Ledger) -> Verdict {
    let record = RunRecord {
        events: &[],
        ledger,
        sim_ms: 60_000,
        errors: &[],
        host: HostConfig::new(Path::new("/data")),
        bounds: Bounds {
            poll_interval_idle_ms: 1_000,
            query_idle_timeout_ms: 20_000,
            container_start_ms_max: 1_000,
            channel_latency_ms_max: 100,
        },
    };
    check(&record)
}

/// A one-shot task the agent scheduled for `process_after`, answered at 20:26:40.500Z.
fn task_answered_at_half_past(process_after: &str) -> Ledger {
    let mut task = inbound("task-1", 2, kind::TASK, json!({ "prompt": "k1 tick" }));
    task.process_after = Some(process_after.into());
    task.series_id = Some("task-1".into());
    let request = outbound(
        "out-1",
        1,
        "2026-05-28T08:00:00.000Z",
        kind::SYSTEM,
        json!({ "action": "schedule_task", "prompt": "k1 tick" }),
    );
    let answer_content = json!({ "text": "Mock response to: [SCHEDULED TASK] k1 tick" });
    let answer = outbound(
        "out-2",
        3,
        "2026-05-28T20:26:40.500Z",
        kind::CHAT,
        answer_content.clone(),
    );
    let receipt = ChannelSend {
        at_ms: NOW_MS + 600,
        outcome: SendOutcome::Received,
        message_out_id: "out-2".into(),
        seq: Some(3),
        session_id: SESSION.into(),
        route: route(),
        kind: kind::CHAT.into(),
        content: answer_content,
        files: Vec::new(),
        host_incarnation: 1,
    };
    let snapshot = SessionSnapshot {
        inbound: vec![task],
        delivered: vec![delivered("out-1"), delivered("out-2")],
        outbound: vec![request, answer],
        acks: vec![AckRow {
            message_id: "task-1".into(),
            status: status::COMPLETED.into(),
            status_changed: "2026-05-28T20:26:40.550Z".into(),
        }],
    };
    ledger_with(snapshot, vec![receipt])
}

#[test]
fn an_answer_before_process_after_is_early_though_its_text_sorts_after() {
    let (after, answered) = ("2026-05-28 20:26:41", "2026-05-28T20:26:40.500Z");
    // The wrong judge sees the task due when it was answered, so nothing early.
    assert!(text_is_due(after, answered));
    // The oracle reads two instants, 500 ms apart, the answer first.
    let answered_ms = time::parse_instant(answered).unwrap();
    assert!(!time::is_due(Some(after), answered_ms));
    let verdict = judge(&task_answered_at_half_past(after));
    assert_eq!(verdict.failed(), vec![Property::Time], "{verdict:#?}");
    assert!(verdict.violations[0].detail.contains("500 ms early"));
    // The control: due at the same text form half a second earlier, the answer is on time.
    let verdict = judge(&task_answered_at_half_past("2026-05-28 20:26:40"));
    assert!(verdict.held(), "{:#?}", verdict.violations);
    assert!(verdict.judged(Property::Time) && verdict.judged(Property::Series));
}

/// A chat message due at `process_after`, still pending at the end.
fn message_pending_since(process_after: &str, row_status: &str) -> Ledger {
    let mut row = inbound("msg-1", 2, kind::CHAT, json!({ "text": "m0 hello" }));
    row.process_after = Some(process_after.into());
    row.status = row_status.into();
    let snapshot = SessionSnapshot {
        inbound: vec![row],
        ..SessionSnapshot::default()
    };
    ledger_with(snapshot, Vec::new())
}

#[test]
fn a_row_due_hours_ago_is_owed_though_its_text_sorts_after_now() {
    let (after, now_text) = ("2026-05-28T08:00:00Z", "2026-05-28 20:26:40");
    assert_eq!(time::parse_instant(now_text), Some(NOW_MS));
    // The wrong judge sees a row not yet due, so a pending row would be excused.
    assert!(!text_is_due(after, now_text));
    assert!(time::is_due(Some(after), NOW_MS));
    let verdict = judge(&message_pending_since(after, status::PENDING));
    assert_eq!(verdict.failed(), vec![Property::NoLoss], "{verdict:#?}");
    let verdict = judge(&message_pending_since(after, status::COMPLETED));
    assert!(verdict.held(), "{:#?}", verdict.violations);
}

/// Every `clawsim_core::…` path in `source`, with its `{…}` groups, as one string each.
fn core_paths(source: &str) -> Vec<String> {
    const ROOT: &str = "clawsim_core::";
    let mut paths = Vec::new();
    for (at, _) in source.match_indices(ROOT) {
        let mut depth = 0;
        let path: String = source[at..]
            .chars()
            .take_while(|c| {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => return false,
                    '}' => depth -= 1,
                    _ => {}
                }
                c.is_alphanumeric()
                    || matches!(c, '_' | ':' | '{' | '}' | '*')
                    || (depth > 0 && (c.is_whitespace() || *c == ','))
            })
            .collect();
        paths.push(path);
    }
    paths
}

/// True when a path names the core's `time` module or its recurrence code.
fn names_core_time(path: &str) -> bool {
    path.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|segment| segment == "time" || segment == "recurrence")
}

#[test]
fn the_oracle_never_calls_the_cores_time_or_recurrence_code() {
    // The detector finds the forms a use can take.
    for found in [
        "use clawsim_core::time::is_due;",
        "clawsim_core::time::parse_instant(text)",
        "use clawsim_core::{model::kind, time};",
        "use clawsim_core::{\n    host::recurrence::next_after,\n};",
    ] {
        assert!(
            core_paths(found).iter().any(|p| names_core_time(p)),
            "{found}"
        );
    }
    assert!(!core_paths("use clawsim_core::model::{kind, text_of};")
        .iter()
        .any(|p| names_core_time(p)));

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut offenders = Vec::new();
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        read += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        for core_path in core_paths(&source) {
            if names_core_time(&core_path) {
                offenders.push(format!("{}: {core_path}", path.display()));
            }
        }
    }
    assert!(
        read >= 10,
        "read only {read} source files under {}",
        src.display()
    );
    assert!(
        offenders.is_empty(),
        "the oracle uses the core's time code: {offenders:#?}"
    );
}
