//! The tools the provider calls through the agent-runner (PROTOCOL §5, §4 outbound content).
//!
//! Each tool writes one `messages_out` row with an odd seq, routed to the current batch unless
//! told otherwise, and answers the call. The ones with a story: `send_file` must keep the file
//! name inside `outbox/<id>/` (the host ships that folder to the outside world, so a name like
//! `../x` would let the agent send or clobber any file); `edit_message` and `add_reaction` cite
//! the seq the agent saw and must write the id of the message with that seq;
//! `ask_user_question` waits across polls, without blocking, for the host's answer row and
//! consumes it, or gives up at its timeout.
//!
//! Method: the mock provider calls tools from a script in the message text
//! (`@mock tool <name> <json>`); the test reads the rows written and the results the mock got.

mod common;

use clawsim_core::model::{kind, status, OutboundRow, AGENT_CHANNEL};
use clawsim_core::Env;
use common::runner::{chat_route, RunnerWorld};
use serde_json::{json, Value};

/// A chat message whose script calls one tool with `args`.
fn call(world: &mut RunnerWorld, tool: &str, args: Value) -> String {
    let id = world.chat("u1", &format!("@mock tool {tool} {args}; say done"));
    world.step();
    id
}

/// The only result the mock got, which must be from `tool`.
fn only_result(world: &RunnerWorld, tool: &str) -> Result<Value, String> {
    let results = world.tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].0, tool);
    results[0].1.clone()
}

/// Outbound rows other than the mock's final "done".
fn tool_rows(world: &RunnerWorld) -> Vec<OutboundRow> {
    world
        .outbound()
        .into_iter()
        .filter(|row| row.content_json().get("text") != Some(&json!("done")))
        .collect()
}

#[test]
fn send_message_goes_to_the_batch_and_answers_with_the_row() {
    let mut world = RunnerWorld::new();
    let id = call(&mut world, "send_message", json!({"text": "from a tool"}));

    let rows = tool_rows(&world);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].route, chat_route());
    assert_eq!(rows[0].in_reply_to.as_deref(), Some(id.as_str()));
    assert_eq!(rows[0].content_json(), json!({"text": "from a tool"}));
    let result = only_result(&world, "send_message").unwrap();
    assert_eq!(result, json!({"id": rows[0].id, "seq": rows[0].seq}));
    assert_eq!(
        world.texts().last().unwrap(),
        "done",
        "answer after the tool"
    );
}

#[test]
fn send_message_to_another_chat_drops_the_batch_thread() {
    let mut world = RunnerWorld::new();
    call(
        &mut world,
        "send_message",
        json!({"text": "hi", "channel": "slack", "platformId": "C9"}),
    );
    let route = &tool_rows(&world)[0].route;
    assert_eq!(route.channel_type.as_deref(), Some("slack"));
    assert_eq!(route.platform_id.as_deref(), Some("C9"));
    assert_eq!(route.thread_id, None);
}

#[test]
fn send_file_copies_the_file_into_the_outbox_of_its_row() {
    let mut world = RunnerWorld::new();
    let file = world.paths().root.join("report.txt");
    world.env.write_file(&file, b"quarterly numbers").unwrap();
    call(
        &mut world,
        "send_file",
        json!({"path": "report.txt", "text": "here it is"}),
    );

    let row = &tool_rows(&world)[0];
    assert_eq!(
        row.content_json(),
        json!({"text": "here it is", "files": ["report.txt"]})
    );
    let copied = world.paths().outbox_for(&row.id).join("report.txt");
    assert_eq!(world.env.read_file(&copied).unwrap(), b"quarterly numbers");
    assert!(only_result(&world, "send_file").is_ok());
}

#[test]
fn send_file_name_that_would_leave_the_outbox_is_refused() {
    for name in ["../escape.txt", "sub/dir.txt", "/etc/passwd", ".."] {
        let mut world = RunnerWorld::new();
        let file = world.paths().root.join("data.txt");
        world.env.write_file(&file, b"secret").unwrap();
        call(
            &mut world,
            "send_file",
            json!({"path": "data.txt", "filename": name}),
        );

        let error = only_result(&world, "send_file").unwrap_err();
        assert!(error.contains("outbox"), "{name}: {error}");
        assert!(tool_rows(&world).is_empty(), "{name}: no row written");
        let outbox = world.env.list_dir(&world.paths().outbox()).unwrap();
        assert!(outbox.is_empty(), "{name}: nothing copied: {outbox:?}");
        assert!(!world.paths().root.join("escape.txt").exists());
    }
}

#[test]
fn send_file_of_a_missing_file_is_an_error_result() {
    let mut world = RunnerWorld::new();
    call(&mut world, "send_file", json!({"path": "nope.txt"}));
    assert!(only_result(&world, "send_file").is_err());
    assert!(tool_rows(&world).is_empty());
}

#[test]
fn edit_message_and_add_reaction_cite_a_seq_and_write_its_id() {
    let mut world = RunnerWorld::new();
    let target = world.chat("u1", "react to me");
    let seq = world.inbound_seq(&target);
    world.chat(
        "u1",
        &format!(
            "@mock tool edit_message {}; tool add_reaction {}",
            json!({"messageId": seq, "text": "edited"}),
            json!({"messageId": seq.to_string(), "emoji": "👍"}),
        ),
    );
    world.step();

    let contents: Vec<Value> = world.outbound_contents();
    assert_eq!(
        contents[..2],
        [
            json!({"operation": "edit", "messageId": target, "text": "edited"}),
            json!({"operation": "reaction", "messageId": target, "emoji": "👍"}),
        ]
    );
}

#[test]
fn edit_of_an_outbound_seq_finds_the_outbound_row() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "hello");
    world.step();
    let reply = world.outbound()[0].clone();
    world.run_for(21_000);
    call(
        &mut world,
        "edit_message",
        json!({"messageId": reply.seq, "text": "better"}),
    );
    assert_eq!(
        tool_rows(&world).last().unwrap().content_json()["messageId"],
        json!(reply.id)
    );
}

#[test]
fn edit_of_an_unknown_seq_is_an_error_result() {
    let mut world = RunnerWorld::new();
    call(
        &mut world,
        "edit_message",
        json!({"messageId": 999, "text": "x"}),
    );
    let error = only_result(&world, "edit_message").unwrap_err();
    assert!(error.contains("999"), "{error}");
    assert!(tool_rows(&world).is_empty());
}

#[test]
fn send_card_writes_a_chat_sdk_card() {
    let mut world = RunnerWorld::new();
    let card = json!({"title": "Pick", "buttons": ["a", "b"]});
    call(
        &mut world,
        "send_card",
        json!({"card": card, "fallbackText": "Pick a or b"}),
    );
    let row = &tool_rows(&world)[0];
    assert_eq!(row.kind, kind::CHAT_SDK);
    assert_eq!(
        row.content_json(),
        json!({"type": "card", "card": card, "fallbackText": "Pick a or b"})
    );
}

#[test]
fn ask_user_question_waits_for_the_answer_row_and_returns_the_option() {
    let mut world = RunnerWorld::new();
    let args = json!({"question": "Ship it?", "options": ["yes", "no"]});
    call(&mut world, "ask_user_question", args);

    let card = tool_rows(&world)[0].clone();
    assert_eq!(card.kind, kind::CHAT_SDK);
    let content = card.content_json();
    assert_eq!(content["type"], "ask_question");
    assert_eq!(content["question"], "Ship it?");
    assert_eq!(content["options"], json!(["yes", "no"]));
    let question_id = content["questionId"].as_str().unwrap().to_string();

    // Waiting is not idleness: the query outlives the idle timeout while the question is open.
    world.run_for(60_000);
    assert!(world.tool_results().is_empty());
    assert!(world.runner.query_running());

    let answer = world.insert(
        kind::SYSTEM,
        &json!({"questionId": question_id, "selectedOption": "no"}).to_string(),
    );
    world.run_for(1_000);
    assert_eq!(only_result(&world, "ask_user_question"), Ok(json!("no")));
    assert_eq!(world.ack(&answer).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.texts().last().unwrap(), "done");
}

#[test]
fn ask_user_question_gives_up_at_its_timeout() {
    let mut world = RunnerWorld::new();
    let args = json!({"question": "Ship it?", "options": ["yes", "no"], "timeout": 2});
    call(&mut world, "ask_user_question", args);

    world.run_for(1_999);
    assert!(world.tool_results().is_empty());
    world.run_for(1);
    let error = only_result(&world, "ask_user_question").unwrap_err();
    assert!(error.contains("timeout"), "{error}");
    assert_eq!(world.texts().last().unwrap(), "done");
}

#[test]
fn ask_user_question_default_timeout_is_the_configured_one() {
    let mut world = RunnerWorld::with(Default::default(), |config| {
        config.question_timeout_ms = 5_000
    });
    call(
        &mut world,
        "ask_user_question",
        json!({"question": "?", "options": ["a"]}),
    );
    world.run_for(5_000);
    assert!(only_result(&world, "ask_user_question").is_err());
}

#[test]
fn schedule_task_writes_a_system_row_for_the_host() {
    let mut world = RunnerWorld::new();
    let args = json!({
        "prompt": "water the plants",
        "processAfter": "2026-01-02 08:00:00",
        "recurrence": "0 8 * * *",
        "script": "echo hi",
    });
    let id = call(&mut world, "schedule_task", args);

    let row = &tool_rows(&world)[0];
    assert_eq!(row.kind, kind::SYSTEM);
    assert_eq!(row.in_reply_to.as_deref(), Some(id.as_str()));
    let content = row.content_json();
    let task_id = content["taskId"].as_str().unwrap();
    assert_eq!(
        content,
        json!({
            "action": "schedule_task",
            "taskId": task_id,
            "prompt": "water the plants",
            "processAfter": "2026-01-02T08:00:00.000Z",
            "recurrence": "0 8 * * *",
            "script": "echo hi",
        })
    );
    let result = only_result(&world, "schedule_task").unwrap();
    assert_eq!(result["taskId"], json!(task_id));
}

#[test]
fn schedule_task_with_an_unreadable_time_is_refused() {
    let mut world = RunnerWorld::new();
    call(
        &mut world,
        "schedule_task",
        json!({"prompt": "x", "processAfter": "next tuesday"}),
    );
    assert!(only_result(&world, "schedule_task").is_err());
    assert!(tool_rows(&world).is_empty());
}

#[test]
fn cancel_pause_and_resume_task_write_system_rows() {
    let mut world = RunnerWorld::new();
    let script = ["cancel_task", "pause_task", "resume_task"]
        .map(|tool| format!("tool {tool} {}", json!({"taskId": "task-7"})))
        .join("; ");
    world.chat("u1", &format!("@mock {script}"));
    world.step();

    let rows = world.outbound();
    let actions: Vec<Value> = rows[..3].iter().map(|r| r.content_json()).collect();
    assert_eq!(
        actions,
        [
            json!({"action": "cancel_task", "taskId": "task-7"}),
            json!({"action": "pause_task", "taskId": "task-7"}),
            json!({"action": "resume_task", "taskId": "task-7"}),
        ]
    );
    assert!(rows[..3].iter().all(|r| r.kind == kind::SYSTEM));
}

#[test]
fn list_tasks_reads_live_tasks_from_inbound() {
    let mut world = RunnerWorld::new();
    let later = "2026-06-01T09:00:00.000Z";
    let live = world.insert_due(
        kind::TASK,
        &json!({"prompt": "report"}).to_string(),
        Some(later),
    );
    let done = world.insert_due(
        kind::TASK,
        &json!({"prompt": "old"}).to_string(),
        Some(later),
    );
    world
        .inbound
        .as_mut()
        .unwrap()
        .write(|tx| {
            tx.execute(
                "UPDATE messages_in SET status = 'completed' WHERE id = ?1",
                [&done],
            )
        })
        .unwrap();
    call(&mut world, "list_tasks", json!({}));

    let listed = only_result(&world, "list_tasks").unwrap();
    assert_eq!(
        listed,
        json!([{
            "taskId": live,
            "seriesId": null,
            "status": "pending",
            "processAfter": later,
            "recurrence": null,
            "prompt": "report",
            "script": null,
        }])
    );
}

#[test]
fn list_tasks_filters_by_status() {
    let mut world = RunnerWorld::new();
    let later = "2026-06-01T09:00:00.000Z";
    let paused = world.insert_due(kind::TASK, r#"{"prompt": "p"}"#, Some(later));
    world
        .inbound
        .as_mut()
        .unwrap()
        .write(|tx| {
            tx.execute(
                "UPDATE messages_in SET status = 'paused' WHERE id = ?1",
                [&paused],
            )
        })
        .unwrap();
    world.insert_due(kind::TASK, r#"{"prompt": "q"}"#, Some(later));
    call(&mut world, "list_tasks", json!({"status": "paused"}));
    let listed = only_result(&world, "list_tasks").unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["taskId"], json!(paused));
}

#[test]
fn send_to_agent_routes_to_the_agent_channel() {
    let mut world = RunnerWorld::new();
    call(
        &mut world,
        "send_to_agent",
        json!({"agentGroupId": "research", "text": "look into it", "sessionId": "s-2"}),
    );
    let row = &tool_rows(&world)[0];
    assert_eq!(row.route.channel_type.as_deref(), Some(AGENT_CHANNEL));
    assert_eq!(row.route.platform_id.as_deref(), Some("research"));
    assert_eq!(row.route.thread_id.as_deref(), Some("s-2"));
    assert_eq!(row.content_json(), json!({"text": "look into it"}));

    let mut world = RunnerWorld::new();
    call(
        &mut world,
        "send_to_agent",
        json!({"agentGroupId": "research", "text": "x"}),
    );
    assert_eq!(tool_rows(&world)[0].route.thread_id, None);
}

#[test]
fn unknown_tool_and_bad_arguments_are_error_results() {
    let mut world = RunnerWorld::new();
    world.chat(
        "u1",
        r#"@mock tool teleport {}; tool send_message {"text": 5}; tool send_message {}"#,
    );
    world.step();
    let results = world.tool_results();
    assert_eq!(results.len(), 3);
    assert!(
        results.iter().all(|(_, result)| result.is_err()),
        "{results:?}"
    );
    assert_eq!(world.outbound().len(), 1, "only the answer");
}

#[test]
fn tool_rows_take_odd_seqs_above_everything_else() {
    let mut world = RunnerWorld::new();
    world.chat(
        "u1",
        r#"@mock tool send_message {"text": "a"}; tool send_message {"text": "b"}"#,
    );
    world.step();
    let seqs: Vec<i64> = world.outbound().iter().map(|r| r.seq.unwrap()).collect();
    assert_eq!(seqs, [3, 5, 7]);
}
