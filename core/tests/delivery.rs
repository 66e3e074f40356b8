//! Delivery (PROTOCOL §7 "Delivery"): every due `messages_out` row reaches its channel once, with
//! its files, or is recorded undeliverable with a reason — never dropped silently.
//!
//! The stories behind these: the reference ran a fast and a slow delivery loop over the same
//! session and could hand one row to the channel twice; it compared `deliver_after` as text and
//! sent some rows early; a channel that failed for a moment lost the row, and one that failed
//! for good was retried forever. Here one pass runs per session, instants are compared as
//! instants, transient failures back off a bounded number of times, and the only duplicate is a
//! send followed by a host crash before the row was recorded.

mod host_support;

use clawsim_core::channel::SendError;
use clawsim_core::host::{DeliveryStep, SessionMode};
use clawsim_core::model::{OutboundRow, Route};
use clawsim_core::time::format_instant;
use clawsim_core::Env;
use host_support::*;
use serde_json::json;

/// A world with one routed message; returns the host, the session and the agent.
fn session_with_message(world: &World) -> (clawsim_core::host::Host, String, Agent, String) {
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("hi", None)).unwrap();
    let session = host.session(&routed.session_id).unwrap();
    let agent = Agent::of(&world.env, &session);
    (host, routed.session_id, agent, routed.message_id)
}

#[test]
fn chat_reply_is_sent_once_and_recorded_delivered() {
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    let reply_id = agent.reply(&message_id, "hello back");

    let sent = deliver(&mut host, &session_id, accept);
    assert_eq!(texts(&sent), ["hello back"]);
    assert_eq!(sent[0].route, room_route());
    assert_eq!(sent[0].session_id, session_id);
    assert_eq!(sent[0].seq, Some(3));
    assert_eq!(
        delivered(&world.env, &agent.paths)[&reply_id],
        ("delivered".to_string(), None)
    );
    assert!(deliver(&mut host, &session_id, accept).is_empty());

    drop(host);
    let mut reopened = world.open();
    assert!(
        deliver(&mut reopened, &session_id, accept).is_empty(),
        "a restarted host reads everything once and finds it settled"
    );
}

#[test]
fn files_are_sent_sorted_and_the_outbox_folder_removed() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    let id = agent.write(
        "chat",
        room_route(),
        json!({"text": "two files", "files": ["b.txt", "a.txt"]}),
    );
    agent.outbox_file(&id, "b.txt", b"bee");
    agent.outbox_file(&id, "a.txt", b"ay");

    let sent = deliver(&mut host, &session_id, accept);
    let files: Vec<(String, Vec<u8>)> = sent[0].files.clone();
    assert_eq!(
        files,
        vec![
            ("a.txt".to_string(), b"ay".to_vec()),
            ("b.txt".to_string(), b"bee".to_vec())
        ]
    );
    assert!(!agent.paths.outbox_for(&id).exists());
    assert!(agent.paths.outbox().is_dir());
}

#[test]
fn a_named_file_missing_from_the_outbox_is_retried_then_undeliverable() {
    let mut world = World::new();
    world.config.send_attempts_max = 2;
    let (mut host, session_id, agent, _) = session_with_message(&world);
    let id = agent.write(
        "chat",
        room_route(),
        json!({"text": "see file", "files": ["gone.png"]}),
    );
    assert!(deliver(&mut host, &session_id, accept).is_empty());
    world.env.advance_ms(60_000);
    assert!(deliver(&mut host, &session_id, accept).is_empty());
    let (status, reason) = delivered(&world.env, &agent.paths)[&id].clone();
    assert_eq!(status, "undeliverable");
    assert!(reason.unwrap().contains("gone.png"));
}

#[test]
fn ask_question_is_recorded_before_it_reaches_the_channel() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    let card = json!({"type": "ask_question", "questionId": "q-1", "question": "Tea?", "options": ["yes", "no"]});
    let id = agent.write("chat-sdk", room_route(), card);

    let mut pass = host.begin_delivery(&session_id).unwrap().unwrap();
    let DeliveryStep::Send(delivery) = host.delivery_step(&mut pass).unwrap() else {
        panic!("the card is sent");
    };
    assert_eq!(delivery.message_out_id, id);
    let questions = host.pending_questions().unwrap();
    assert_eq!(questions.len(), 1, "recorded before the adapter sees it");
    assert_eq!(questions[0].question_id, "q-1");
    assert_eq!(questions[0].session_id, session_id);
    assert_eq!(questions[0].message_out_id, id);
    host.delivery_sent(&mut pass, Ok(())).unwrap();
    assert_eq!(host.delivery_step(&mut pass).unwrap(), DeliveryStep::Done);
    host.end_delivery(pass);
}

#[test]
fn answering_a_question_writes_one_system_row_routed_like_the_question() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    let thread_route = Route {
        thread_id: Some("t-9".into()),
        ..room_route()
    };
    let card = json!({"type": "ask_question", "questionId": "q-7", "question": "Tea?", "options": ["yes", "no"]});
    agent.write("chat-sdk", thread_route.clone(), card);
    deliver(&mut host, &session_id, accept);
    world.runtime.exit(&session_id);

    let answer = host.answer_question("q-7", "yes").unwrap();
    assert_eq!(answer.session_id, session_id);
    let row = inbound_row(&world.env, &agent.paths, &answer.message_id);
    assert_eq!(row.kind, "system");
    assert_eq!(row.status, "pending");
    assert_eq!(row.route, thread_route);
    assert_eq!(
        row.content_json(),
        json!({"questionId": "q-7", "selectedOption": "yes"})
    );
    assert_eq!(row.seq.unwrap() % 2, 0);
    assert!(host.pending_questions().unwrap().is_empty());
    assert_eq!(
        world.runtime.starts().len(),
        2,
        "the answer wakes the container"
    );

    let again = host.answer_question("q-7", "no").unwrap_err().to_string();
    assert!(again.contains("q-7"), "{again}");
}

#[test]
fn a_second_pass_of_the_same_session_is_refused_while_one_runs() {
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    agent.reply(&message_id, "only once");

    let mut fast = host.begin_delivery(&session_id).unwrap().unwrap();
    assert!(host.begin_delivery(&session_id).unwrap().is_none());
    let DeliveryStep::Send(_) = host.delivery_step(&mut fast).unwrap() else {
        panic!("the reply is handed out");
    };
    assert!(
        host.begin_delivery(&session_id).unwrap().is_none(),
        "the slow pass may not start while the fast one has the row in flight"
    );
    host.delivery_sent(&mut fast, Ok(())).unwrap();
    host.end_delivery(fast);

    let sent = deliver(&mut host, &session_id, accept);
    assert!(sent.is_empty());
}

#[test]
fn a_dropped_pass_releases_the_session_and_its_row_is_read_again() {
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    agent.reply(&message_id, "in flight");
    let mut pass = host.begin_delivery(&session_id).unwrap().unwrap();
    let DeliveryStep::Send(_) = host.delivery_step(&mut pass).unwrap() else {
        panic!("handed out");
    };
    drop(pass);
    assert_eq!(
        texts(&deliver(&mut host, &session_id, accept)),
        ["in flight"]
    );
}

#[test]
fn host_crash_between_send_and_record_resends_once_and_only_that() {
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    agent.reply(&message_id, "first");
    agent.reply(&message_id, "second");
    let mut pass = host.begin_delivery(&session_id).unwrap().unwrap();
    let DeliveryStep::Send(first) = host.delivery_step(&mut pass).unwrap() else {
        panic!("handed out");
    };
    host.delivery_sent(&mut pass, Ok(())).unwrap();
    let DeliveryStep::Send(second) = host.delivery_step(&mut pass).unwrap() else {
        panic!("handed out");
    };
    assert_eq!(texts(&[first, second]), ["first", "second"]);
    drop(pass);
    drop(host); // crash: "second" reached the channel but was never recorded

    let mut host = world.open();
    assert_eq!(texts(&deliver(&mut host, &session_id, accept)), ["second"]);
    assert!(deliver(&mut host, &session_id, accept).is_empty());
}

#[test]
fn transient_failures_back_off_then_become_undeliverable() {
    let mut world = World::new();
    world.config.send_attempts_max = 3;
    world.config.send_backoff_base_ms = 1_000;
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    let flaky = agent.reply(&message_id, "flaky");
    let fail = |_: &_| Err(SendError::Transient("503".into()));

    assert_eq!(deliver(&mut host, &session_id, fail).len(), 1);
    assert!(
        deliver(&mut host, &session_id, fail).is_empty(),
        "backing off 2 s"
    );
    let later = agent.reply(&message_id, "later");
    assert_eq!(
        texts(&deliver(&mut host, &session_id, accept)),
        ["later"],
        "a row in backoff does not hold back the rows after it"
    );
    world.env.advance_ms(1_999);
    assert!(deliver(&mut host, &session_id, fail).is_empty());
    world.env.advance_ms(1);
    assert_eq!(
        deliver(&mut host, &session_id, fail).len(),
        1,
        "second attempt"
    );
    world.env.advance_ms(4_000);
    assert_eq!(
        deliver(&mut host, &session_id, fail).len(),
        1,
        "third attempt"
    );
    world.env.advance_ms(60_000);
    assert!(
        deliver(&mut host, &session_id, fail).is_empty(),
        "no fourth"
    );

    let settled = delivered(&world.env, &agent.paths);
    assert_eq!(settled[&later].0, "delivered");
    let (status, reason) = settled[&flaky].clone();
    assert_eq!(status, "undeliverable");
    assert_eq!(reason.as_deref(), Some("gave up after 3 attempts: 503"));
}

#[test]
fn transient_backoff_survives_a_host_restart() {
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    agent.reply(&message_id, "flaky");
    deliver(&mut host, &session_id, |_| {
        Err(SendError::Transient("503".into()))
    });
    drop(host);
    let mut host = world.open();
    assert!(
        deliver(&mut host, &session_id, accept).is_empty(),
        "still backing off"
    );
    world.env.advance_ms(2_000);
    assert_eq!(texts(&deliver(&mut host, &session_id, accept)), ["flaky"]);
}

#[test]
fn permanent_failure_is_undeliverable_with_the_adapters_reason() {
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    let id = agent.reply(&message_id, "nope");
    let sent = deliver(&mut host, &session_id, |_| {
        Err(SendError::Permanent("chat deleted".into()))
    });
    assert_eq!(sent.len(), 1);
    assert_eq!(
        delivered(&world.env, &agent.paths)[&id],
        (
            "undeliverable".to_string(),
            Some("chat deleted".to_string())
        )
    );
    assert!(deliver(&mut host, &session_id, accept).is_empty());
}

#[test]
fn a_row_without_a_route_is_undeliverable_not_sent() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    let id = agent.write("chat", Route::default(), json!({"text": "where to?"}));
    assert!(deliver(&mut host, &session_id, accept).is_empty());
    let (status, reason) = delivered(&world.env, &agent.paths)[&id].clone();
    assert_eq!(status, "undeliverable");
    assert!(reason.unwrap().starts_with("no route"));
}

#[test]
fn deliver_after_in_mixed_text_forms_is_compared_as_an_instant() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    // Now is 2026-03-01T08:00:00.000Z. As text, "2026-03-01 08:00:30" sorts before it (a space
    // sorts before "T") and the reference sent it early; as instants it is 30 s away.
    for (text, deliver_after) in [
        ("space form", "2026-03-01 08:00:30"),
        ("offset form", "2026-03-01T09:00:30+01:00"),
        ("iso form", "2026-03-01T08:00:30.000Z"),
    ] {
        agent.write_row(OutboundRow {
            id: world.env.new_id("out"),
            seq: None,
            in_reply_to: None,
            timestamp: format_instant(world.env.now_ms()),
            deliver_after: Some(deliver_after.into()),
            recurrence: None,
            kind: "chat".into(),
            route: room_route(),
            content: json!({ "text": text }).to_string(),
        });
    }
    assert!(deliver(&mut host, &session_id, accept).is_empty());
    world.env.advance_ms(29_999);
    assert!(deliver(&mut host, &session_id, accept).is_empty());
    world.env.advance_ms(1);
    assert_eq!(
        texts(&deliver(&mut host, &session_id, accept)),
        ["space form", "offset form", "iso form"],
        "due rows go in seq order"
    );
}

#[test]
fn edits_and_reactions_go_to_the_adapter_like_messages() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    agent.write(
        "chat",
        room_route(),
        json!({"operation": "edit", "messageId": "p-1", "text": "fixed"}),
    );
    agent.write(
        "chat",
        room_route(),
        json!({"operation": "reaction", "messageId": "p-1", "emoji": "👍"}),
    );
    let sent = deliver(&mut host, &session_id, accept);
    let operations: Vec<&str> = sent
        .iter()
        .map(|d| d.content["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["edit", "reaction"]);
}

#[test]
fn outbound_content_that_is_not_json_is_sent_as_text() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    agent.write_row(OutboundRow {
        id: "raw-1".into(),
        seq: None,
        in_reply_to: None,
        timestamp: format_instant(world.env.now_ms()),
        deliver_after: Some("whenever".into()),
        recurrence: None,
        kind: "mystery-kind".into(),
        route: room_route(),
        content: "plain words".into(),
    });
    let sent = deliver(&mut host, &session_id, accept);
    assert_eq!(texts(&sent), ["plain words"]);
    assert_eq!(sent[0].kind, "mystery-kind");
}

#[test]
fn ten_megabytes_of_outbound_content_are_delivered() {
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    agent.reply(&message_id, &"y".repeat(10 * 1024 * 1024));
    let sent = deliver(&mut host, &session_id, accept);
    assert_eq!(texts(&sent)[0].len(), 10 * 1024 * 1024);
}

#[test]
fn missing_outbound_db_is_an_error_naming_the_file() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    std::fs::remove_file(agent.paths.outbound_db()).unwrap();
    let error = host.begin_delivery(&session_id).unwrap_err().to_string();
    assert!(error.contains("outbound.db"), "{error}");
    assert!(
        host.begin_delivery(&session_id).is_err(),
        "no pass was left holding the session"
    );
}

#[test]
fn corrupt_outbound_db_ends_the_pass_with_an_error_naming_the_file() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    std::fs::write(agent.paths.outbound_db(), vec![0x5a; 8192]).unwrap();
    let error = match host.begin_delivery(&session_id) {
        Err(error) => error,
        Ok(pass) => {
            let mut pass = pass.unwrap();
            let error = host.delivery_step(&mut pass).unwrap_err();
            assert_eq!(host.delivery_step(&mut pass).unwrap(), DeliveryStep::Done);
            host.end_delivery(pass);
            error
        }
    };
    assert!(error.to_string().contains("outbound.db"), "{error}");
}

#[test]
fn a_settled_row_below_the_watermark_is_not_read_again_by_the_same_host() {
    // Flat cost: after a pass, the host reads only rows above its watermark. To see that, the
    // test erases the `delivered` row of a settled reply behind the host's back: the running
    // host does not look at it again; a restarted host (watermark 0) reads everything once.
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    let id = agent.reply(&message_id, "old");
    deliver(&mut host, &session_id, accept);
    let db = rusqlite::Connection::open(agent.paths.inbound_db()).unwrap();
    db.execute("DELETE FROM delivered WHERE message_out_id = ?1", [&id])
        .unwrap();
    agent.reply(&message_id, "new");
    assert_eq!(texts(&deliver(&mut host, &session_id, accept)), ["new"]);
    drop(host);
    let mut restarted = world.open();
    assert_eq!(
        texts(&deliver(&mut restarted, &session_id, accept)),
        ["old"]
    );
}

/// Route of a message for the `ag-helper` agent group, in `thread_id` if given.
fn to_helper(thread_id: Option<&str>) -> Route {
    Route {
        platform_id: Some("ag-helper".into()),
        channel_type: Some("agent".into()),
        thread_id: thread_id.map(str::to_string),
    }
}

/// The `ag-helper` group's session, which a message for it created.
fn helper_session(host: &mut clawsim_core::host::Host) -> clawsim_core::host::SessionInfo {
    host.active_sessions()
        .unwrap()
        .into_iter()
        .find(|s| s.agent_group_id == "ag-helper")
        .expect("the helper's session was created on demand")
}

#[test]
fn agent_message_lands_in_the_target_groups_session_once() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    host.add_agent_group("ag-helper", "Helper").unwrap();
    host.allow_agent_route("ag-main", "ag-helper").unwrap();
    let id = agent.write("chat", to_helper(None), json!({"text": "please summarise"}));
    assert!(
        deliver(&mut host, &session_id, accept).is_empty(),
        "not a channel send"
    );
    assert_eq!(delivered(&world.env, &agent.paths)[&id].0, "delivered");

    let helper = helper_session(&mut host);
    let rows = inbound_rows(&world.env, &helper.paths);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, "chat");
    assert_eq!(rows[0].route.channel_type.as_deref(), Some("agent"));
    assert_eq!(rows[0].route.platform_id.as_deref(), Some("ag-main"));
    assert_eq!(
        rows[0].route.thread_id.as_deref(),
        Some(session_id.as_str())
    );
    let content = rows[0].content_json();
    assert_eq!(content["text"], "please summarise");
    assert_eq!(content["sender"], "Main");
    assert!(
        world.runtime.starts().contains(&helper.id),
        "the helper is woken"
    );

    // A crash after the target write, before the sender's `delivered` row: the redelivery
    // writes nothing new.
    drop(host);
    let db = rusqlite::Connection::open(agent.paths.inbound_db()).unwrap();
    db.execute("DELETE FROM delivered", []).unwrap();
    let mut host = world.open();
    deliver(&mut host, &session_id, accept);
    assert_eq!(inbound_rows(&world.env, &helper.paths).len(), 1);
    assert_eq!(
        delivered(&world.env, &agent.paths)[&id].0,
        "delivered",
        "the repeat is recorded as delivered, not stuck on the row already written"
    );
}

#[test]
fn agent_reply_names_the_sender_session_and_reaches_it() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    host.add_agent_group("ag-helper", "Helper").unwrap();
    host.allow_agent_route("ag-main", "ag-helper").unwrap();
    host.allow_agent_route("ag-helper", "ag-main").unwrap();
    agent.write("chat", to_helper(None), json!({"text": "ping"}));
    deliver(&mut host, &session_id, accept);
    let helper = helper_session(&mut host);
    let helper_agent = Agent::of(&world.env, &helper);
    let question = &inbound_rows(&world.env, &helper.paths)[0];
    helper_agent.write("chat", question.route.clone(), json!({"text": "pong"}));
    deliver(&mut host, &helper.id, accept);

    let back = inbound_rows(&world.env, &agent.paths);
    let last = back.last().unwrap();
    assert_eq!(last.content_json()["text"], "pong");
    assert_eq!(last.route.platform_id.as_deref(), Some("ag-helper"));
}

#[test]
fn agent_message_without_permission_is_undeliverable_with_reason() {
    let world = World::new();
    let (mut host, session_id, agent, _) = session_with_message(&world);
    host.add_agent_group("ag-helper", "Helper").unwrap();
    let id = agent.write("chat", to_helper(None), json!({"text": "let me in"}));
    deliver(&mut host, &session_id, accept);
    let (status, reason) = delivered(&world.env, &agent.paths)[&id].clone();
    assert_eq!(status, "undeliverable");
    assert_eq!(
        reason.as_deref(),
        Some("agent group ag-main may not send to agent group ag-helper")
    );
    assert_eq!(
        host.active_sessions().unwrap().len(),
        1,
        "no session created for it"
    );
}

#[test]
fn agent_message_naming_a_session_of_another_group_goes_to_the_target_groups_session() {
    // Found by mutation testing: with the group check of the named session gone, a message for
    // `ag-helper` that names a session of `ag-main` in its thread landed in `ag-main`'s session.
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    host.add_agent_group("ag-helper", "Helper").unwrap();
    host.allow_agent_route("ag-main", "ag-helper").unwrap();
    let own_rows = inbound_rows(&world.env, &agent.paths).len();
    agent.write(
        "chat",
        to_helper(Some(&session_id)),
        json!({"text": "for the helper"}),
    );
    deliver(&mut host, &session_id, accept);
    assert_eq!(
        inbound_rows(&world.env, &agent.paths).len(),
        own_rows,
        "nothing written into the sender's own session (it holds {message_id})"
    );
    let helper = helper_session(&mut host);
    let rows = inbound_rows(&world.env, &helper.paths);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].content_json()["text"], "for the helper");
}

#[test]
fn a_backlog_longer_than_one_read_is_delivered_in_one_pass() {
    // A pass reads rows above its watermark in batches of 64; a full batch means more may
    // follow (a mutant reading "more" as "a short batch" left the rest for later passes).
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    for i in 0..150 {
        agent.reply(&message_id, &format!("r{i}"));
    }
    assert_eq!(deliver(&mut host, &session_id, accept).len(), 150);
}

/// One delivery pass that tolerates step errors (the pass then ends); returns what was sent.
fn deliver_tolerant(
    host: &mut clawsim_core::host::Host,
    session_id: &str,
) -> Vec<clawsim_core::channel::OutboundDelivery> {
    let mut pass = host.begin_delivery(session_id).unwrap().expect("no pass");
    let mut sent = Vec::new();
    while let Ok(DeliveryStep::Send(delivery)) = host.delivery_step(&mut pass) {
        sent.push(delivery);
        host.delivery_sent(&mut pass, Ok(())).unwrap();
    }
    host.end_delivery(pass);
    sent
}

#[test]
fn a_malformed_row_delays_no_other_row_and_ends_undeliverable_with_its_reason() {
    // Story (PROTOCOL §7, §9.14): a row whose every read failed ended each pass with an error,
    // so the watermark never passed it and every later row of its session waited forever.
    // Method: a row whose content is a blob (what a broken writer could leave: it cannot be
    // read as text), then a good reply; passes run with time moving past any backoff.
    let world = World::new();
    let (mut host, session_id, agent, message_id) = session_with_message(&world);
    let bad = agent.reply(&message_id, "to be broken");
    let db = rusqlite::Connection::open(agent.paths.outbound_db()).unwrap();
    db.execute(
        "UPDATE messages_out SET content = x'00ff' WHERE id = ?1",
        [&bad],
    )
    .unwrap();
    agent.reply(&message_id, "after the bad row");

    let mut sent = deliver_tolerant(&mut host, &session_id);
    sent.extend(deliver_tolerant(&mut host, &session_id));
    assert_eq!(texts(&sent), ["after the bad row"], "within one pass of it");
    for _ in 0..20 {
        world.env.advance_ms(10 * 60_000);
        assert!(deliver_tolerant(&mut host, &session_id).is_empty());
    }
    let (status, reason) = delivered(&world.env, &agent.paths)[&bad].clone();
    assert_eq!(status, "undeliverable");
    let reason = reason.expect("a reason");
    assert!(reason.contains("content"), "names what is wrong: {reason}");
}
