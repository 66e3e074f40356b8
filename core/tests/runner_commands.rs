//! Slash commands in the agent-runner (PROTOCOL §5 step 3).
//!
//! Admin commands are allowed only to the configured admin sender: anyone else gets a
//! `Permission denied` reply and the message is acked. The admin's `/clear` drops the provider
//! session (the next query starts fresh); other admin commands and unknown commands reach the
//! provider raw, in order with the messages around them; filtered commands vanish without a
//! reply. A `/clear` behind other messages waits until they have had their turn in the old
//! session, and one arriving mid-query ends that query instead of being pushed into it.
//!
//! Method: the test plays the host and reads the reply rows, acks and what the mock provider
//! was given.

mod common;

use clawsim_core::model::status;
use clawsim_core::runner::mock::MockRecord;
use common::runner::{RunnerWorld, ADMIN};

const AFTER_IDLE_TIMEOUT_MS: i64 = 21_000;

/// `resume_session_id` of every query the provider was asked for, in order.
fn resumed_sessions(world: &RunnerWorld) -> Vec<Option<String>> {
    world
        .transcript
        .records()
        .into_iter()
        .filter_map(|record| match record {
            MockRecord::Query {
                resume_session_id, ..
            } => Some(resume_session_id),
            _ => None,
        })
        .collect()
}

#[test]
fn admin_clear_drops_the_session_and_replies() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "hello");
    world.run_for(AFTER_IDLE_TIMEOUT_MS);
    assert_eq!(world.runner.session_id(), Some("mock-session-1"));

    let clear = world.chat(ADMIN, "/clear");
    world.step();
    let out = world.outbound();
    let reply = out.last().unwrap();
    assert_eq!(reply.in_reply_to.as_deref(), Some(clear.as_str()));
    assert_eq!(world.texts().last().unwrap(), "Session cleared.");
    assert_eq!(world.ack(&clear).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.runner.session_id(), None);
    assert!(
        !world.runner.query_running(),
        "/clear itself starts no query"
    );

    world.chat("u1", "again");
    world.step();
    assert_eq!(resumed_sessions(&world), [None, None]);
    assert_eq!(world.runner.session_id(), Some("mock-session-2"));
}

#[test]
fn admin_command_from_anyone_else_is_denied() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "hello");
    world.run_for(AFTER_IDLE_TIMEOUT_MS);

    let clear = world.chat("intruder", "/clear");
    let cost = world.chat("intruder", "/COST please");
    world.step();

    assert_eq!(
        &world.texts()[1..],
        [
            "Permission denied: /clear requires admin access.",
            "Permission denied: /cost requires admin access.",
        ]
    );
    let out = world.outbound();
    assert_eq!(out[1].in_reply_to.as_deref(), Some(clear.as_str()));
    assert_eq!(out[2].in_reply_to.as_deref(), Some(cost.as_str()));
    assert_eq!(world.ack(&clear).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&cost).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.runner.session_id(), Some("mock-session-1"), "kept");
    assert_eq!(
        world.provider_inputs().len(),
        1,
        "nothing reached the provider"
    );
}

#[test]
fn filtered_commands_are_acked_and_nothing_is_sent() {
    let mut world = RunnerWorld::new();
    let ids: Vec<String> = ["/help", "/LOGIN now", "/logout", "/doctor", "/config x"]
        .into_iter()
        .map(|text| world.chat(ADMIN, text))
        .collect();
    world.step();

    for id in &ids {
        assert_eq!(world.ack(id).as_deref(), Some(status::COMPLETED), "{id}");
    }
    assert!(world.outbound().is_empty());
    assert!(world.provider_inputs().is_empty());
}

#[test]
fn unknown_command_goes_to_the_provider_raw() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "/deploy <prod> & go");
    world.step();
    assert_eq!(world.provider_inputs(), ["/deploy <prod> & go"]);
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
}

#[test]
fn admin_command_other_than_clear_goes_to_the_provider_raw() {
    let mut world = RunnerWorld::new();
    world.chat(ADMIN, "/compact");
    world.step();
    assert_eq!(world.provider_inputs(), ["/compact"]);
}

#[test]
fn raw_commands_sit_between_the_formatted_messages_around_them() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "before");
    world.chat("u1", "/deploy now");
    world.chat("u2", "after");
    world.step();
    assert_eq!(
        world.provider_inputs(),
        [concat!(
            r#"<message id="2" sender="User u1" time="00:00">before</message>"#,
            "\n\n/deploy now\n\n",
            r#"<message id="6" sender="User u2" time="00:00">after</message>"#,
        )]
    );
}

#[test]
fn clear_behind_other_messages_waits_for_their_turn_in_the_old_session() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "first");
    world.run_for(AFTER_IDLE_TIMEOUT_MS);

    let before = world.chat("u1", "before the clear");
    let clear = world.chat(ADMIN, "/clear");
    let after = world.chat("u1", "after the clear");
    world.step();
    assert!(world.provider_inputs()[1].contains("before the clear"));
    assert!(!world.provider_inputs()[1].contains("after the clear"));
    assert_eq!(world.ack(&clear), None, "held back");
    assert_eq!(world.ack(&after), None, "held back behind the clear");

    world.run_for(AFTER_IDLE_TIMEOUT_MS);
    assert_eq!(world.ack(&before).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&clear).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&after).as_deref(), Some(status::COMPLETED));
    assert_eq!(
        resumed_sessions(&world),
        [None, Some("mock-session-1".into()), None]
    );
    assert!(world.provider_inputs()[2].contains("after the clear"));
}

#[test]
fn admin_command_mid_query_ends_the_query_and_runs_after_it() {
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "@mock think 5s");
    world.step();
    world.run_for(1_000);

    let clear = world.chat(ADMIN, "/clear");
    let later = world.chat("u1", "behind the clear");
    world.run_for(1_000);
    assert_eq!(world.provider_inputs().len(), 1, "nothing pushed");
    assert_eq!(world.ack(&clear), None);
    assert_eq!(world.ack(&later), None);

    // The query ends once its turn is answered, well before the idle timeout.
    world.run_for(3_500);
    assert_eq!(world.ack(&first).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&clear).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&later).as_deref(), Some(status::PROCESSING));
    assert!(world.texts().contains(&"Session cleared.".to_string()));
    assert_eq!(resumed_sessions(&world), [None, None]);
}
