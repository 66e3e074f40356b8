//! The scriptable mock provider on its own (PROTOCOL §5 provider interface).
//!
//! The simulator and the e2e suite drive every agent-runner path through it, so its behaviour is
//! a contract: `Init` first, the default answer for the prompt and for each pushed follow-up,
//! think times taken only from the `now_ms` it is given, `Activity` while an `active` script
//! thinks, tool calls that wait for their results, outcomes (`silent`, `error`, `exit`), a
//! malformed directive reported and skipped rather than fatal, a default script for inputs
//! without one, and session ids from a counter.
//!
//! Method: poll the query directly and list the events at given instants.

use clawsim_core::provider::{Provider, ProviderEvent, ProviderQuery, QueryPoll};
use clawsim_core::runner::mock::{default_answer, MockProvider, MockRecord};
use serde_json::json;

const T0: i64 = 1_000_000;

/// Polls until the query waits or is done; returns the events and that last poll.
fn drain(query: &mut dyn ProviderQuery, now_ms: i64) -> (Vec<ProviderEvent>, QueryPoll) {
    let mut events = Vec::new();
    for _ in 0..1_000 {
        match query.poll(now_ms) {
            QueryPoll::Event(event) => events.push(event),
            other => return (events, other),
        }
    }
    panic!("query never waited: {events:?}");
}

fn result(text: &str) -> ProviderEvent {
    ProviderEvent::Result {
        text: Some(text.to_string()),
        ends_turn: true,
    }
}

fn init(session: &str) -> ProviderEvent {
    ProviderEvent::Init {
        session_id: session.to_string(),
    }
}

const IDLE: QueryPoll = QueryPoll::Pending { wake_at_ms: None };

#[test]
fn answers_prompt_and_each_follow_up_then_ends() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("hello", None, T0);
    assert_eq!(
        drain(&mut *query, T0),
        (
            vec![init("mock-session-1"), result("Mock response to: hello")],
            IDLE
        )
    );
    query.push("again", T0);
    query.push("and again", T0);
    assert_eq!(
        drain(&mut *query, T0).0,
        [
            result("Mock response to: again"),
            result("Mock response to: and again")
        ]
    );
    query.end();
    assert_eq!(query.poll(T0), QueryPoll::Done);
}

#[test]
fn default_answer_quotes_the_first_hundred_characters() {
    let prompt = "a".repeat(100) + "TAIL";
    assert_eq!(
        default_answer(&prompt),
        format!("Mock response to: {}", "a".repeat(100))
    );
}

#[test]
fn session_ids_count_up_and_resume_keeps_the_id() {
    let mut mock = MockProvider::new();
    let mut first = mock.query("a", None, T0);
    let mut resumed = mock.query("b", Some("mock-session-1"), T0);
    let mut second = mock.query("c", None, T0);
    assert_eq!(first.poll(T0), QueryPoll::Event(init("mock-session-1")));
    assert_eq!(resumed.poll(T0), QueryPoll::Event(init("mock-session-1")));
    assert_eq!(second.poll(T0), QueryPoll::Event(init("mock-session-2")));
}

#[test]
fn think_answers_exactly_when_the_time_comes() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("@mock think 1500ms; say ready", None, T0);
    assert_eq!(
        drain(&mut *query, T0),
        (
            vec![init("mock-session-1")],
            QueryPoll::Pending {
                wake_at_ms: Some(T0 + 1_500)
            }
        )
    );
    assert_eq!(drain(&mut *query, T0 + 1_499).0, []);
    assert_eq!(drain(&mut *query, T0 + 1_500).0, [result("ready")]);
}

#[test]
fn active_thinking_emits_activity_every_second() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("@mock active; think 3s; reply 2", None, T0);
    drain(&mut *query, T0);
    let mut seen = Vec::new();
    for now in (T0 + 500..=T0 + 3_000).step_by(500) {
        seen.extend(drain(&mut *query, now).0.into_iter().map(|e| (now - T0, e)));
    }
    let answer = default_answer("@mock active; think 3s; reply 2");
    assert_eq!(
        seen,
        [
            (1_000, ProviderEvent::Activity),
            (2_000, ProviderEvent::Activity),
            // Only the last answer of `reply 2` ends the turn.
            (
                3_000,
                ProviderEvent::Result {
                    text: Some(answer.clone()),
                    ends_turn: false
                }
            ),
            (3_000, result(&answer)),
        ]
    );
}

#[test]
fn progress_and_tools_run_in_order_and_wait_for_results() {
    let mut mock = MockProvider::new();
    let transcript = mock.transcript();
    let prompt =
        r#"@mock progress step one; tool send_message {"text": "x;y"}; tool list_tasks; say end"#;
    let mut query = mock.query(prompt, None, T0);
    let (events, poll) = drain(&mut *query, T0);
    assert_eq!(poll, IDLE, "waiting for the first tool result");
    assert_eq!(
        events,
        [
            init("mock-session-1"),
            ProviderEvent::Progress {
                message: "step one".into()
            },
            ProviderEvent::ToolCall {
                call_id: "mock-call-1".into(),
                name: "send_message".into(),
                args: json!({"text": "x;y"})
            },
        ]
    );
    query.tool_result("wrong-call", Ok(json!(1)), T0);
    assert_eq!(drain(&mut *query, T0).0, [], "still waiting");
    query.tool_result("mock-call-1", Ok(json!({"seq": 3})), T0);
    assert_eq!(
        drain(&mut *query, T0).0,
        [ProviderEvent::ToolCall {
            call_id: "mock-call-2".into(),
            name: "list_tasks".into(),
            args: json!({})
        }]
    );
    query.tool_result("mock-call-2", Err("no inbound".into()), T0);
    assert_eq!(drain(&mut *query, T0).0, [result("end")]);
    let tool_results: Vec<_> = transcript
        .records()
        .into_iter()
        .filter(|r| matches!(r, MockRecord::ToolResult { .. }))
        .collect();
    assert_eq!(tool_results.len(), 2);
}

#[test]
fn silent_says_nothing_until_ended() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("@mock silent", None, T0);
    assert_eq!(drain(&mut *query, T0), (vec![init("mock-session-1")], IDLE));
    query.push("hello?", T0);
    assert_eq!(drain(&mut *query, T0 + 60_000), (vec![], IDLE));
    query.end();
    assert_eq!(query.poll(T0 + 60_000), QueryPoll::Done);
}

#[test]
fn error_ends_the_query() {
    for (script, retryable) in [
        ("error retryable slow down", true),
        ("error fatal gone", false),
    ] {
        let mut mock = MockProvider::new();
        let mut query = mock.query(&format!("@mock {script}"), None, T0);
        let (events, poll) = drain(&mut *query, T0);
        let message = script
            .split_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            events[1],
            ProviderEvent::Error {
                message,
                retryable,
                classification: None
            }
        );
        assert_eq!(poll, QueryPoll::Done);
    }
}

#[test]
fn exit_beats_error_beats_an_answer() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("@mock say hi; error fatal x; exit 3", None, T0);
    let (events, poll) = drain(&mut *query, T0);
    assert_eq!(events[1..], [ProviderEvent::Exit { code: 3 }]);
    assert_eq!(poll, QueryPoll::Done);
}

#[test]
fn malformed_directive_is_reported_and_skipped() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("@mock think forever; say still here", None, T0);
    assert_eq!(
        drain(&mut *query, T0).0[1..],
        [
            ProviderEvent::Progress {
                message: "mock: ignored malformed directive `think forever`".into()
            },
            result("still here"),
        ]
    );
}

#[test]
fn default_script_applies_only_to_inputs_without_their_own() {
    let mut mock = MockProvider::with_default_script(
        "# every answer is slow and short\n@mock think 1s\nsay default",
    );
    let mut query = mock.query("plain", None, T0);
    assert_eq!(drain(&mut *query, T0).0, [init("mock-session-1")]);
    assert_eq!(drain(&mut *query, T0 + 1_000).0, [result("default")]);
    query.push("@mock say own", T0 + 1_000);
    assert_eq!(drain(&mut *query, T0 + 1_000).0, [result("own")]);
}

#[test]
fn abort_stops_at_once() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("@mock think 10s", None, T0);
    drain(&mut *query, T0);
    query.abort();
    assert_eq!(query.poll(T0 + 10_000), QueryPoll::Done);
}

#[test]
fn end_lets_the_turn_under_way_finish() {
    let mut mock = MockProvider::new();
    let mut query = mock.query("@mock think 10s; say late", None, T0);
    drain(&mut *query, T0);
    query.end();
    query.push("ignored after end", T0);
    assert_eq!(
        drain(&mut *query, T0 + 10_000),
        (vec![result("late")], QueryPoll::Done)
    );
}

#[test]
fn fixture_scripts_parse_without_malformed_directives() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/mock-scripts");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let script = clawsim_core::runner::mock::MockScript::parse(&text);
        assert!(
            script.malformed.is_empty(),
            "{}: {:?}",
            path.display(),
            script.malformed
        );
        assert!(!script.directives.is_empty(), "{}", path.display());
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(!names.is_empty());
}

#[test]
fn task_placeholder_names_the_last_task_this_session_scheduled() {
    let mut mock = MockProvider::new();
    let mut query = mock.query(
        r#"@mock tool schedule_task {"prompt":"tick"}; tool cancel_task {"taskId":"$task"}"#,
        None,
        T0,
    );
    let call_id = |event: &ProviderEvent| match event {
        ProviderEvent::ToolCall { call_id, args, .. } => (call_id.clone(), args.clone()),
        other => panic!("expected a tool call, got {other:?}"),
    };
    let (events, _) = drain(&mut *query, T0);
    let (first, _) = call_id(&events[1]);
    query.tool_result(&first, Ok(json!({"taskId": "task-7"})), T0);
    let (events, _) = drain(&mut *query, T0);
    let (_, args) = call_id(&events[0]);
    assert_eq!(args, json!({"taskId": "task-7"}));
    // Another session's agent does not hold that id: the placeholder stays unknown.
    let mut other = mock.query(r#"@mock tool pause_task {"taskId":"$task"}"#, None, T0);
    let (events, _) = drain(&mut *other, T0);
    assert_eq!(call_id(&events[1]).1, json!({"taskId": "$task"}));
}

#[test]
fn brackets_and_semicolons_inside_quotes_do_not_end_a_directive() {
    let mut mock = MockProvider::new();
    let prompt = r#"@mock tool send_message {"text": "} ; {"}; say end"#;
    let mut query = mock.query(prompt, None, T0);
    let (events, poll) = drain(&mut *query, T0);
    assert_eq!(poll, IDLE, "waiting for the tool result");
    assert_eq!(
        events,
        [
            init("mock-session-1"),
            ProviderEvent::ToolCall {
                call_id: "mock-call-1".into(),
                name: "send_message".into(),
                args: json!({"text": "} ; {"})
            },
        ]
    );
    query.tool_result("mock-call-1", Ok(json!({"seq": 3})), T0);
    assert_eq!(drain(&mut *query, T0).0, [result("end")]);
}
