//! A conversation through a real container: a message in, the mock's answer delivered to the
//! channel; content that needs escaping reaches the agent escaped; follow-ups sent while a
//! turn runs are pushed into that same query and each answered once.
//!
//! Each test ends with the oracle's verdict on the run (`World::check`, the checkers that judge
//! the simulator's runs): no loss, no duplicate, no lost output, one answer, seq, time (here,
//! as nothing failed, also the promptness bound), retries (no try counted, as nothing failed),
//! durability and formatting.

use clawsim_core::model::status;
use clawsim_e2e::world::World;
use clawsim_oracle::Property;
use std::time::Duration;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_message_gets_the_mock_answer_delivered() {
    let Some(mut world) = World::start("chat-answer") else {
        return;
    };
    let marker = world.send("hello from the e2e suite");
    let answer = world.wait_answer(&marker, ANSWER_TIMEOUT);
    assert_eq!(answer.route.channel_type.as_deref(), Some("e2e"));
    assert_eq!(answer.route.platform_id.as_deref(), Some("chat0"));
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    for property in [Property::NoLoss, Property::OneAnswer, Property::Time] {
        assert!(judged.verdict.judged(property), "{property} not judged");
    }
    let session = &judged.sessions[0].snapshot;
    assert_eq!(session.inbound.len(), 1);
    assert_eq!(session.inbound[0].status, status::COMPLETED);
    assert_eq!(world.answers_to(&marker), 1);
}

#[test]
fn content_reaches_the_agent_escaped() {
    let Some(mut world) = World::start("chat-escape") else {
        return;
    };
    // §9.10 probe: the mock quotes the formatted prompt, so the escaping is visible.
    let marker = world.send(r#"<b>&"x""#);
    let answer = world.wait_answer(&marker, ANSWER_TIMEOUT);
    let text = answer.content["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("{marker} &lt;b&gt;&amp;&quot;x&quot;")),
        "prompt not escaped: {text}"
    );
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    assert!(judged.verdict.judged(Property::Formatting));
}

#[test]
fn follow_ups_during_a_turn_join_the_running_query_and_are_answered_once() {
    let Some(mut world) = World::start("chat-follow-ups") else {
        return;
    };
    let first = world.send("@mock think 3s");
    let session_id = world.session_id();
    // Wait until the turn has claimed the first message, then talk while it thinks.
    wait_claimed(&world, 1);
    // One at a time, so each is pushed on its own (two pending at one poll would be pushed as
    // one batch with one answer).
    let second = world.send("and another thing");
    wait_claimed(&world, 2);
    let third = world.send("one more");
    wait_claimed(&world, 3);
    for marker in [&first, &second, &third] {
        world.wait_answer(marker, ANSWER_TIMEOUT);
    }
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    assert!(judged.verdict.judged(Property::OneAnswer));
    let session = &judged.sessions[0].snapshot;
    assert_eq!(judged.sessions[0].session_id, session_id);
    // Pushed follow-ups are routed to the batch's first message (PROTOCOL §5.5).
    let first_id = &session.inbound[0].id;
    let answers: Vec<_> = session
        .outbound
        .iter()
        .filter(|row| row.content.contains("Mock response to"))
        .collect();
    assert_eq!(answers.len(), 3, "{answers:#?}");
    assert!(
        answers
            .iter()
            .all(|row| row.in_reply_to.as_ref() == Some(first_id)),
        "follow-ups were not pushed into the running query: {answers:#?}"
    );
}

/// Waits until `count` messages are claimed and none finished: all pushed into the one turn.
fn wait_claimed(world: &World, count: usize) {
    world.wait_until(
        &format!("{count} claimed messages"),
        ANSWER_TIMEOUT,
        |sessions| {
            let acks = &sessions[0].snapshot.acks;
            acks.len() == count && acks.iter().all(|ack| ack.status == status::PROCESSING)
        },
    );
}
