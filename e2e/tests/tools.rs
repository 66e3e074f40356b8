//! Tools that cross the host boundary, in real containers: `ask_user_question` (the card
//! reaches the channel, the user's answer goes back into the session as a `system` row, the
//! waiting tool takes it and the turn goes on) and `send_file` (the file the agent names is
//! copied into `outbox/<id>/`, delivered with its bytes, and the folder removed after; a file
//! name that would leave the outbox is refused).
//!
//! Each test ends with the oracle's verdict on the run.

use clawsim_core::model::{kind, status};
use clawsim_e2e::world::World;
use serde_json::json;
use std::time::Duration;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_question_card_is_answered_by_the_user_and_the_turn_goes_on() {
    let Some(mut world) = World::start("tool-question") else {
        return;
    };
    let args = json!({"question": "Which colour?", "options": ["red", "blue"]});
    let asked = world.send(&format!("@mock tool ask_user_question {args}"));
    let card = world.wait_delivery("the question card", ANSWER_TIMEOUT, |d| {
        d.content["type"] == "ask_question"
    });
    assert_eq!(card.content["question"], "Which colour?");
    assert_eq!(card.content["options"], json!(["red", "blue"]));
    // The turn waits for the answer: no answer to the message yet.
    assert_eq!(world.answers_to(&asked), 0);
    let question_id = card.content["questionId"].as_str().unwrap().to_string();
    world.answer(&question_id, "blue");
    world.wait_answer(&asked, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    let answer_row = judged.sessions[0]
        .snapshot
        .inbound
        .iter()
        .find(|row| row.kind == kind::SYSTEM && row.content.contains(&question_id))
        .expect("the user's answer in inbound.db");
    assert_eq!(answer_row.content_json()["selectedOption"], "blue");
    assert_eq!(answer_row.status, status::COMPLETED, "consumed by the tool");
}

#[test]
fn a_sent_file_arrives_with_its_bytes_and_its_outbox_folder_is_removed() {
    let Some(mut world) = World::start("tool-send-file") else {
        return;
    };
    // A first message creates the session folder the agent will read the file from.
    let hello = world.send("hello");
    world.wait_answer(&hello, ANSWER_TIMEOUT);
    let session_dir = session_dir(&world);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(session_dir.join("report.bin"), &bytes).unwrap();

    let args = json!({"path": "report.bin", "text": "the report"});
    let sent = world.send(&format!("@mock tool send_file {args}"));
    let delivery = world.wait_delivery("the file", ANSWER_TIMEOUT, |d| !d.files.is_empty());
    assert_eq!(delivery.content["text"], "the report");
    assert_eq!(delivery.files, vec![("report.bin".to_string(), bytes)]);
    world.wait_answer(&sent, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    world.check();
    let outbox = session_dir.join("outbox").join(&delivery.message_out_id);
    assert!(!outbox.exists(), "{} left behind", outbox.display());
}

#[test]
fn a_file_name_that_leaves_the_outbox_is_refused() {
    let Some(mut world) = World::start("tool-file-escape") else {
        return;
    };
    let hello = world.send("hello");
    world.wait_answer(&hello, ANSWER_TIMEOUT);
    let session_dir = session_dir(&world);
    std::fs::write(session_dir.join("secret.txt"), b"x").unwrap();
    let args = json!({"path": "secret.txt", "filename": "../../escaped.txt"});
    let sent = world.send(&format!("@mock tool send_file {args}"));
    world.wait_answer(&sent, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    world.check();
    assert!(world.received().iter().all(|d| d.files.is_empty()));
    let escaped = session_dir.join("outbox").join("../../escaped.txt");
    assert!(!escaped.exists(), "{} was written", escaped.display());
}

/// The folder of the world's one session, as the host sees it.
fn session_dir(world: &World) -> std::path::PathBuf {
    let session_id = world.session_id();
    world.config().session_paths("agent", &session_id).root
}
