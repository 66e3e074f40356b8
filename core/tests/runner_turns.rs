//! The agent-runner's poll loop around one provider query (PROTOCOL §5 steps 1–7).
//!
//! A message becomes a prompt, the provider's answer becomes a reply row routed to the
//! conversation of the batch (citing its first message), and the batch is acked `completed` only
//! once the query is over. The
//! story these pin down is the reference's follow-up bug: a message pushed into a running query
//! was acked at push time, so a container that died mid-turn lost it. Here a follow-up stays
//! `processing` until the query that consumed it has ended. They also pin the heartbeat
//! decision (touched every poll, also while a silent provider thinks), the idle timeout, and
//! that nothing is taken before its `process_after`.
//!
//! The second story is PROTOCOL §5 "one conversation per turn": the reference answered every
//! result of a turn at the first message of its batch, so a follow-up from another thread of a
//! shared session, or another agent's message landing in a shared session, was answered in the
//! wrong place. Here a turn serves one conversation; a message of another waits for its own
//! turn, in seq order, and is answered where it came from.
//!
//! The third is PROTOCOL §5 "no silent success": a turn aborted after 40 s of silence was acked
//! `completed` with no reply, so the user never learnt that nothing came. Here a message whose
//! turn ends without a result (the provider went quiet, hung, or failed) ends `failed` with an
//! `Error: …` reply in its conversation; only an empty result the provider itself returned
//! completes without a reply.
//!
//! Method: the test plays the host, writing `inbound.db` directly, and steps the runner on a
//! manual clock with the scriptable mock provider.

mod common;

use clawsim_core::model::Route;
use clawsim_core::model::{kind, status};
use clawsim_core::runner::mock::MockRecord;
use clawsim_core::time::format_instant;
use clawsim_core::Env;
use common::runner::{chat_content, chat_route, RunnerWorld};

const IDLE_TIMEOUT_MS: i64 = 20_000;

#[test]
fn message_in_gets_a_reply_routed_to_it() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "hello");
    let inbound_seq = world.inbound_seq(&id);

    world.step();

    let out = world.outbound();
    assert_eq!(out.len(), 1);
    let reply = &out[0];
    assert_eq!(reply.kind, kind::CHAT);
    assert_eq!(reply.in_reply_to.as_deref(), Some(id.as_str()));
    assert_eq!(reply.route, chat_route());
    let seq = reply.seq.unwrap();
    assert!(
        seq % 2 == 1 && seq > inbound_seq,
        "odd seq above inbound: {seq}"
    );
    assert_eq!(
        world.texts(),
        [r#"Mock response to: <message id="2" sender="User u1" time="00:00">hello</message>"#]
    );
}

#[test]
fn batch_is_acked_completed_only_when_the_query_ends() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "hello");
    world.step();
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    assert!(world.runner.query_running());

    world.run_for(IDLE_TIMEOUT_MS - 1);
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));

    world.run_for(1_000);
    assert_eq!(world.ack(&id).as_deref(), Some(status::COMPLETED));
    assert!(!world.runner.query_running());
}

#[test]
fn several_pending_messages_form_one_prompt_answered_once() {
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "one");
    let second = world.chat("u2", "two");

    world.step();

    assert_eq!(
        world.provider_inputs(),
        [concat!(
            "<messages>\n",
            r#"<message id="2" sender="User u1" time="00:00">one</message>"#,
            "\n",
            r#"<message id="4" sender="User u2" time="00:00">two</message>"#,
            "\n</messages>"
        )]
    );
    let out = world.outbound();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].in_reply_to.as_deref(), Some(first.as_str()));
    assert_eq!(world.ack(&second).as_deref(), Some(status::PROCESSING));
}

#[test]
fn follow_up_is_pushed_answered_and_acked_only_after_the_turn() {
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "@mock think 5s; say first answer");
    world.step();
    world.run_for(1_000);

    let follow_up = world.chat("u1", "and another thing");
    world.step();
    assert_eq!(world.ack(&follow_up).as_deref(), Some(status::PROCESSING));
    assert_eq!(
        world.provider_inputs().len(),
        2,
        "pushed into the same query"
    );

    world.run_for(4_000);
    let texts = world.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0], "first answer");
    assert!(texts[1].contains("and another thing"), "{texts:?}");
    for row in world.outbound() {
        assert_eq!(row.in_reply_to.as_deref(), Some(first.as_str()));
    }
    // Answered, but the query is still open: the claim holds until it ends.
    assert_eq!(world.ack(&follow_up).as_deref(), Some(status::PROCESSING));

    world.run_for(IDLE_TIMEOUT_MS);
    assert_eq!(world.ack(&first).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&follow_up).as_deref(), Some(status::COMPLETED));
}

#[test]
fn next_batch_resumes_the_provider_session() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "one");
    world.run_for(IDLE_TIMEOUT_MS + 1_000);
    assert_eq!(world.runner.session_id(), Some("mock-session-1"));

    world.chat("u1", "two");
    world.step();

    let records = world.transcript.records();
    let resumed = records.iter().filter_map(|record| match record {
        clawsim_core::runner::mock::MockRecord::Query {
            resume_session_id, ..
        } => Some(resume_session_id.clone()),
        _ => None,
    });
    assert_eq!(
        resumed.collect::<Vec<_>>(),
        [None, Some("mock-session-1".to_string())]
    );
}

#[test]
fn nothing_is_taken_before_its_process_after() {
    let mut world = RunnerWorld::new();
    let later = format_instant(world.now_ms() + 10_000);
    let id = world.insert_due(
        kind::CHAT,
        &common::runner::chat_content("u1", "later"),
        Some(&later),
    );

    world.run_for(9_999);
    assert_eq!(world.ack(&id), None);
    assert!(world.outbound().is_empty());

    world.run_for(1_001);
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    assert_eq!(world.outbound().len(), 1);
}

#[test]
fn process_after_in_sqlite_form_compares_as_an_instant() {
    let mut world = RunnerWorld::new();
    // One second in the future, written the way SQLite's datetime() writes it: as text it sorts
    // before the ISO form of now, as an instant it is later.
    let later = format_instant(world.now_ms() + 1_000)
        .replace('T', " ")
        .replace(".000Z", "");
    let id = world.insert_due(
        kind::CHAT,
        &common::runner::chat_content("u1", "x"),
        Some(&later),
    );
    world.step();
    assert_eq!(world.ack(&id), None);
    world.env.advance(1_000);
    world.step();
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
}

#[test]
fn heartbeat_is_touched_every_poll_while_a_silent_query_thinks() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock silent");
    let heartbeat = world.paths().heartbeat();
    for _ in 0..30 {
        let step = world.step();
        assert_eq!(
            world.env.mtime_ms(&heartbeat).unwrap(),
            Some(world.now_ms()),
            "heartbeat not touched at this poll"
        );
        world.env.set_now_ms(step.next_wake_ms);
    }
    assert!(
        world.outbound().is_empty(),
        "a silent provider sends nothing"
    );
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));

    world.run_for(IDLE_TIMEOUT_MS);
    assert_eq!(
        world.ack(&id).as_deref(),
        Some(status::FAILED),
        "no silent success"
    );
}

#[test]
fn query_ends_after_the_idle_timeout_counted_from_the_last_event() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock think 3s");
    world.run_for(3_000);
    assert_eq!(world.outbound().len(), 1, "answered after thinking");

    world.run_for(IDLE_TIMEOUT_MS - 1);
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    world.run_for(1);
    assert_eq!(world.ack(&id).as_deref(), Some(status::COMPLETED));
}

#[test]
fn activity_events_keep_a_long_thinking_query_open() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock think 45s; active");
    world.run_for(44_000);
    assert!(world.outbound().is_empty());
    assert!(world.runner.query_running(), "activity kept it open");
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));

    world.run_for(1_000);
    assert_eq!(world.outbound().len(), 1);
}

#[test]
fn next_wake_follows_the_poll_intervals_and_the_provider() {
    let mut world = RunnerWorld::new();
    let now = world.now_ms();
    assert_eq!(world.step().next_wake_ms, now + 1_000, "idle interval");

    world.chat("u1", "@mock think 200ms");
    assert_eq!(
        world.step().next_wake_ms,
        now + 200,
        "the provider wants it sooner"
    );
    world.env.advance(200);
    let after_answer = world.step().next_wake_ms;
    assert_eq!(
        after_answer,
        now + 200 + 500,
        "active interval while the query runs"
    );
}

/// The route of `thread` in the room every world's messages come from.
fn thread_route(thread: &str) -> Route {
    Route {
        thread_id: Some(thread.into()),
        ..chat_route()
    }
}

/// The prompts of the queries started, in order (pushes excluded).
fn query_prompts(world: &RunnerWorld) -> Vec<String> {
    let records = world.transcript.records();
    let prompts = records.into_iter().filter_map(|record| match record {
        MockRecord::Query { prompt, .. } => Some(prompt),
        _ => None,
    });
    prompts.collect()
}

/// The outbound row whose text is `text`.
fn reply_with_text(world: &RunnerWorld, text: &str) -> clawsim_core::model::OutboundRow {
    let rows = world.outbound();
    let found = rows.iter().find(|row| row.content_json()["text"] == text);
    found
        .unwrap_or_else(|| panic!("no reply {text:?} in {rows:#?}"))
        .clone()
}

#[test]
fn a_follow_up_from_another_thread_waits_for_its_own_turn_and_is_answered_there() {
    // Goal: a message of another conversation is not pushed into the running turn (the
    // reference pushed it and answered it in the first thread). Method: a turn thinks on
    // thread-1 while a message arrives on thread-2 of the same session.
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "@mock think 5s; say first answer");
    world.step();
    let other = thread_route("thread-2");
    let content = chat_content("u2", "@mock say second answer");
    let second = world.insert_routed(kind::CHAT, &content, other.clone());
    world.step();
    assert_eq!(world.provider_inputs().len(), 1, "not pushed into the turn");
    assert_eq!(world.ack(&second), None, "left pending for its own turn");

    world.run_for(2 * IDLE_TIMEOUT_MS);
    let answer = reply_with_text(&world, "first answer");
    assert_eq!(answer.route, chat_route());
    assert_eq!(answer.in_reply_to.as_deref(), Some(first.as_str()));
    let answer = reply_with_text(&world, "second answer");
    assert_eq!(answer.route, other, "answered in its own thread");
    assert_eq!(answer.in_reply_to.as_deref(), Some(second.as_str()));
    assert_eq!(query_prompts(&world).len(), 2, "one turn each");
    assert_eq!(world.ack(&first).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&second).as_deref(), Some(status::COMPLETED));
}

#[test]
fn another_agents_message_in_a_shared_session_is_answered_back_to_its_session() {
    // Goal: a message from another agent, pending beside a user's chat, gets its own turn and
    // its answer goes back to the session that sent it (its thread_id), not to the user.
    // Method: both rows are pending before the first poll.
    let mut world = RunnerWorld::new();
    let user = world.chat("u1", "@mock say to the user");
    let from_agent = Route {
        channel_type: Some("agent".into()),
        platform_id: Some("ag-main".into()),
        thread_id: Some("sess-main-2".into()),
    };
    let content = serde_json::json!({"sender": "Main", "text": "@mock say to the agent"});
    let asked = world.insert_routed(kind::CHAT, &content.to_string(), from_agent.clone());

    world.run_for(2 * IDLE_TIMEOUT_MS);
    let answer = reply_with_text(&world, "to the user");
    assert_eq!(answer.route, chat_route());
    assert_eq!(answer.in_reply_to.as_deref(), Some(user.as_str()));
    let answer = reply_with_text(&world, "to the agent");
    assert_eq!(answer.route, from_agent, "back to the asking session");
    assert_eq!(answer.in_reply_to.as_deref(), Some(asked.as_str()));
    assert_eq!(world.ack(&asked).as_deref(), Some(status::COMPLETED));
}

#[test]
fn conversations_take_their_turns_in_seq_order() {
    // Goal: a batch holds only its conversation, and a message behind one of another
    // conversation waits behind it (seq order), rather than jumping the queue into the batch.
    // Method: thread-1, thread-2, thread-1 pending at once; the order of the prompts.
    let mut world = RunnerWorld::new();
    world.chat("u1", "one");
    let content = chat_content("u2", "two");
    world.insert_routed(kind::CHAT, &content, thread_route("thread-2"));
    world.chat("u1", "three");

    world.run_for(4 * IDLE_TIMEOUT_MS);
    let prompts = query_prompts(&world);
    assert_eq!(prompts.len(), 3, "{prompts:#?}");
    for (prompt, text) in prompts.iter().zip(["one", "two", "three"]) {
        assert!(prompt.contains(&format!(">{text}</message>")), "{prompt}");
    }
}

/// `(route, in_reply_to)` of every outbound row whose text starts with `Error: `.
fn error_replies(world: &RunnerWorld) -> Vec<(Route, Option<String>)> {
    let rows = world.outbound();
    let errors = rows.into_iter().filter(|row| {
        let content = row.content_json();
        content["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Error: "))
    });
    errors.map(|row| (row.route, row.in_reply_to)).collect()
}

#[test]
fn a_turn_silent_until_the_idle_timeout_fails_with_an_error_reply() {
    // Goal: silence is not success. Method: a provider that never answers; the runner ends the
    // turn at the idle timeout and the mock is then done.
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock silent");
    world.run_for(IDLE_TIMEOUT_MS + 1_000);
    assert!(!world.runner.query_running());
    assert_eq!(world.ack(&id).as_deref(), Some(status::FAILED));
    assert_eq!(error_replies(&world), [(chat_route(), Some(id))]);
}

#[test]
fn a_hung_provider_aborted_after_the_idle_timeout_fails_with_an_error_reply() {
    // Goal: a provider that ignores `end()` is aborted one timeout later, and its message is not
    // completed as answered. Method: a provider thinking far longer than two timeouts.
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock think 100s; say too late");
    world.run_for(2 * IDLE_TIMEOUT_MS + 1_000);
    assert!(!world.runner.query_running(), "aborted");
    assert_eq!(world.ack(&id).as_deref(), Some(status::FAILED));
    assert_eq!(error_replies(&world), [(chat_route(), Some(id))]);
}

#[test]
fn an_unanswered_follow_up_fails_while_the_answered_prompt_completes() {
    // Goal: the verdict is per input. Method: the prompt is answered, then a follow-up pushed
    // into the same turn meets a provider that falls silent.
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "@mock think 2s; say first answer");
    world.step();
    let follow_up = world.chat("u1", "@mock silent");
    world.step();
    assert_eq!(world.provider_inputs().len(), 2, "pushed into the turn");
    world.run_for(2 * IDLE_TIMEOUT_MS);
    assert_eq!(world.ack(&first).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&follow_up).as_deref(), Some(status::FAILED));
    assert_eq!(error_replies(&world), [(chat_route(), Some(follow_up))]);
}

#[test]
fn an_empty_result_the_provider_chose_completes_without_a_reply() {
    // Goal: the one silence that is success: the agent answered with nothing.
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock reply 0");
    world.run_for(IDLE_TIMEOUT_MS + 1_000);
    assert_eq!(world.ack(&id).as_deref(), Some(status::COMPLETED));
    assert!(world.outbound().is_empty());
}
