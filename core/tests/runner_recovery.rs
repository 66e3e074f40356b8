//! How the agent-runner survives what goes wrong around it (PROTOCOL §5 "On start", §5.6, §8).
//!
//! A container that died left `processing` claims: the next one releases them so the messages
//! are processed again, except a message that already has output, which is acked `completed`
//! rather than answered twice (the container side of output-sent protection); a message it
//! released runs in a batch of its own, so a poison message takes nothing down with it. The host may
//! not have created `inbound.db` yet when the runner starts. The provider may fail (a retryable
//! error completes the batch, a fatal one fails it, both after an `Error:` reply) or take the
//! process down (exit code, no acks, so the next container takes the batch again). Bad input -
//! content that is not JSON, a kind nobody knows, a column of the wrong type, 10 MB of text -
//! never stops the loop and never leaves a row unprocessed.
//!
//! Method: the test plays the host and the previous container, writing both DBs directly
//! where it needs a state the runner would not reach on its own.

mod common;

use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::model::{kind, status};
use clawsim_core::provider::{Provider, ProviderQuery, QueryPoll};
use clawsim_core::runner::mock::MockProvider;
use clawsim_core::runner::{AgentRunner, ClaimCleanup};
use clawsim_core::Env;
use common::runner::RunnerWorld;
use rusqlite::params;
use serde_json::json;

const AFTER_IDLE_TIMEOUT_MS: i64 = 21_000;

/// Writes `outbound.db` with `write`, as a previous container left it.
fn leave_outbound(
    world: &RunnerWorld,
    write: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
) {
    let path = world.paths().outbound_db();
    let mut outbound = Db::open(&*world.env, &path, Schema::Outbound, Access::ReadWrite).unwrap();
    outbound.write(write).unwrap();
}

#[test]
fn start_releases_claims_but_acks_those_that_already_have_output() {
    let mut world = RunnerWorld::new();
    let answered = world.chat("u1", "answered before the crash");
    let unanswered = world.chat("u1", "claimed, never answered");
    let finished = world.chat("u1", "completed earlier");
    leave_outbound(&world, |tx| {
        let ack = "INSERT INTO processing_ack VALUES (?1, ?2, '2026-01-01T00:00:00.000Z')";
        tx.execute(ack, params![answered, status::PROCESSING])?;
        tx.execute(ack, params![unanswered, status::PROCESSING])?;
        tx.execute(ack, params![finished, status::COMPLETED])?;
        tx.execute(
                "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, kind, content)
                 VALUES ('out-old', 7, ?1, '2026-01-01T00:00:00.000Z', 'chat', '{\"text\":\"hi\"}')",
                [&answered],
            )?;
        Ok(())
    });

    world.restart(MockProvider::new());

    assert_eq!(
        world.runner.claim_cleanup(),
        ClaimCleanup {
            released: 1,
            completed: 1
        }
    );
    assert_eq!(world.ack(&answered).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&unanswered), None);
    assert_eq!(world.ack(&finished).as_deref(), Some(status::COMPLETED));

    world.step();
    let inputs = world.provider_inputs();
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].contains("claimed, never answered"));
    assert!(!inputs[0].contains("answered before the crash"));
    assert_eq!(
        world.outbound().last().unwrap().in_reply_to,
        Some(unanswered)
    );
}

#[test]
fn answered_follow_up_is_not_answered_again_after_a_crash_and_an_unanswered_one_is() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "@mock think 1s; say first");
    world.step();
    // Mid-turn: one follow-up is pushed and answered, then a second is pushed.
    let answered = world.chat("u1", "@mock say follow-up answer");
    world.run_for(1_500);
    assert_eq!(world.texts(), vec!["first", "follow-up answer"]);
    let unanswered = world.chat("u1", "@mock think 5s; say late answer");
    world.run_for(600);
    assert_eq!(world.ack(&unanswered).as_deref(), Some(status::PROCESSING));

    // The container dies before the turn ends; the next one starts on the same folder.
    world.restart(MockProvider::new());
    assert_eq!(world.ack(&answered).as_deref(), Some(status::COMPLETED));
    assert_eq!(
        world.ack(&unanswered),
        None,
        "unanswered follow-up released"
    );
    world.run_for(30_000);
    let texts = world.texts();
    assert_eq!(
        texts.iter().filter(|t| *t == "follow-up answer").count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| *t == "late answer").count(),
        1,
        "{texts:?}"
    );
}

#[test]
fn messages_a_dead_container_left_unanswered_are_retried_one_per_batch() {
    let mut world = RunnerWorld::new();
    let poison = world.chat("u1", "@mock exit 137");
    let neighbour = world.chat("u1", "@mock say fine");
    assert_eq!(
        world.run_for(1_000),
        Some(137),
        "the batch's turn exits the process"
    );

    world.restart(MockProvider::new());
    world.step();
    let inputs = world.provider_inputs();
    assert_eq!(inputs.len(), 1);
    assert!(
        inputs[0].contains("exit 137") && !inputs[0].contains("say fine"),
        "{inputs:?}"
    );
    assert_eq!(world.ack(&poison).as_deref(), Some(status::PROCESSING));
    assert_eq!(
        world.ack(&neighbour),
        None,
        "the neighbour waits for its own batch"
    );
    assert_eq!(world.run_for(1_000), Some(137));
    // (The host backs the poison message off and fails it after its tries; while it is not
    // due, the neighbour is taken and answered: that story is pinned in sim's scenarios.)
}

#[test]
fn follow_up_whose_turn_already_wrote_a_tool_row_is_not_run_again_after_a_crash() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "@mock think 1s; say first");
    world.step();
    let follow_up = world.chat(
        "u1",
        r#"@mock tool send_message {"text": "acted once"}; think 10s; say done"#,
    );
    world.run_for(3_000);
    assert_eq!(world.texts(), vec!["first", "acted once"]);

    world.restart(MockProvider::new());
    assert_eq!(world.ack(&follow_up).as_deref(), Some(status::COMPLETED));
    world.run_for(30_000);
    let texts = world.texts();
    assert_eq!(
        texts.iter().filter(|t| *t == "acted once").count(),
        1,
        "{texts:?}"
    );
}

#[test]
fn runner_starts_before_inbound_exists_and_picks_it_up_later() {
    let mut world = RunnerWorld::without_inbound();
    world.run_for(3_000);
    assert!(world.outbound().is_empty());

    world.create_inbound();
    let id = world.chat("u1", "hello");
    world.run_for(1_000);
    assert_eq!(world.outbound().len(), 1);
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
}

#[test]
fn inbound_without_tables_yet_is_retried_not_fatal() {
    let mut world = RunnerWorld::without_inbound();
    // The host has created the file but not its schema yet.
    std::fs::write(world.paths().inbound_db(), b"").unwrap();
    world.run_for(2_000);
    std::fs::remove_file(world.paths().inbound_db()).unwrap();
    world.create_inbound();
    world.chat("u1", "hello");
    world.run_for(1_000);
    assert_eq!(world.outbound().len(), 1);
}

#[test]
fn fatal_provider_error_replies_and_fails_the_batch() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock error fatal the model is gone");
    let follow = world.chat("u1", "same batch");
    world.step();
    assert_eq!(world.texts(), ["Error: the model is gone"]);
    let out = world.outbound();
    assert_eq!(out[0].in_reply_to.as_deref(), Some(id.as_str()));
    assert_eq!(world.ack(&id).as_deref(), Some(status::FAILED));
    assert_eq!(world.ack(&follow).as_deref(), Some(status::FAILED));
    assert!(!world.runner.query_running());
}

#[test]
fn retryable_provider_error_replies_and_fails_the_turn_it_ended() {
    // A retryable error that ends the query leaves the batch without a result: PROTOCOL §5 "no
    // silent success" makes it `failed` (its error reply told the user), never `completed`.
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock error retryable overloaded");
    world.step();
    assert_eq!(world.texts(), ["Error: overloaded"]);
    assert_eq!(world.ack(&id).as_deref(), Some(status::FAILED));
}

#[test]
fn provider_exit_stops_the_runner_without_acking() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock think 1s; exit 137");
    assert_eq!(world.run_for(5_000), Some(137));
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    assert!(world.outbound().is_empty());

    // The next container takes the message again (it has no output).
    world.restart(MockProvider::new());
    assert_eq!(world.ack(&id), None);
}

#[test]
fn content_that_is_not_json_is_the_text() {
    let mut world = RunnerWorld::new();
    let id = world.insert(kind::CHAT, "plain <b>text</b> & \"quotes\"");
    world.step();
    assert_eq!(
        world.provider_inputs(),
        [concat!(
            r#"<message id="2" sender="Unknown" time="00:00">"#,
            "plain &lt;b&gt;text&lt;/b&gt; &amp; &quot;quotes&quot;</message>"
        )]
    );
    assert_eq!(world.outbound().len(), 1);
    world.run_for(AFTER_IDLE_TIMEOUT_MS);
    assert_eq!(world.ack(&id).as_deref(), Some(status::COMPLETED));
}

#[test]
fn unknown_kind_is_acked_completed_without_a_turn() {
    let mut world = RunnerWorld::new();
    let id = world.insert("carrier-pigeon", r#"{"text": "coo"}"#);
    world.step();
    assert_eq!(world.ack(&id).as_deref(), Some(status::COMPLETED));
    assert!(world.provider_inputs().is_empty());
    assert!(world.outbound().is_empty());
}

#[test]
fn column_of_the_wrong_type_is_read_not_stuck() {
    let mut world = RunnerWorld::new();
    let inbound = world.inbound.as_mut().unwrap();
    inbound
        .write(|tx| {
            tx.execute(
                "INSERT INTO messages_in (id, seq, kind, timestamp, status, content)
                 VALUES ('blob-1', 2, 'chat', 12345, 'pending', ?1)",
                [b"\xffbytes, not text".to_vec()],
            )
        })
        .unwrap();
    world.step();
    assert_eq!(world.ack("blob-1").as_deref(), Some(status::PROCESSING));
    assert!(world.provider_inputs()[0].contains("bytes, not text"));
}

#[test]
fn ten_megabyte_message_is_processed() {
    let mut world = RunnerWorld::new();
    let text = "x".repeat(10 * 1024 * 1024);
    let id = world.chat("u1", &text);
    world.step();
    let inputs = world.provider_inputs();
    assert!(inputs[0].len() > 10 * 1024 * 1024);
    let texts = world.texts();
    assert_eq!(texts.len(), 1);
    assert!(texts[0].starts_with("Mock response to: <message id=\"2\""));
    world.run_for(AFTER_IDLE_TIMEOUT_MS);
    assert_eq!(world.ack(&id).as_deref(), Some(status::COMPLETED));
}

#[test]
fn host_response_is_formatted_into_the_next_batch() {
    let mut world = RunnerWorld::new();
    let content =
        json!({"action": "schedule_task", "status": "success", "result": {"taskId": "t1"}});
    let id = world.insert(kind::SYSTEM, &content.to_string());
    world.step();
    assert_eq!(
        world.provider_inputs(),
        ["[SYSTEM RESPONSE]\n\nAction: schedule_task\nStatus: success\nResult: {\"taskId\":\"t1\"}"]
    );
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
}

#[test]
fn host_response_during_a_query_waits_for_the_next_batch() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "hello");
    world.step();
    let content = json!({"action": "cancel_task", "status": "success", "result": null});
    let id = world.insert(kind::SYSTEM, &content.to_string());
    let chat = world.chat("u1", "still talking");
    world.run_for(1_000);
    assert_eq!(world.ack(&id), None, "not pushed into the running query");
    assert_eq!(
        world.ack(&chat).as_deref(),
        Some(status::PROCESSING),
        "pushed"
    );

    world.run_for(AFTER_IDLE_TIMEOUT_MS);
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    assert!(world
        .provider_inputs()
        .last()
        .unwrap()
        .starts_with("[SYSTEM RESPONSE]"));
}

#[test]
fn answer_to_no_waiting_question_is_acked_not_shown() {
    let mut world = RunnerWorld::new();
    let content = json!({"questionId": "q-gone", "selectedOption": "yes"});
    let id = world.insert(kind::SYSTEM, &content.to_string());
    world.step();
    assert_eq!(world.ack(&id).as_deref(), Some(status::COMPLETED));
    assert!(world.provider_inputs().is_empty());
}

#[test]
fn heartbeat_exists_from_start() {
    let world = RunnerWorld::new();
    let heartbeat = world.paths().heartbeat();
    assert_eq!(
        world.env.mtime_ms(&heartbeat).unwrap(),
        Some(world.now_ms())
    );
    assert!(world.env.exists(&world.paths().outbox()));
}

#[test]
fn message_sent_by_a_chat_sdk_author_is_named() {
    let mut world = RunnerWorld::new();
    let content =
        json!({"author": {"fullName": "Ada L", "userName": "ada", "userId": "u9"}, "text": "hi"});
    world.insert(kind::CHAT_SDK, &content.to_string());
    world.step();
    assert!(world.provider_inputs()[0].contains(r#"sender="Ada L""#));
}

/// A provider that ignores `end()` and never finishes: only `abort()` stops it.
struct HungProvider {
    aborted: std::rc::Rc<std::cell::Cell<bool>>,
}

struct HungQuery {
    aborted: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Provider for HungProvider {
    fn query(&mut self, _: &str, _: Option<&str>, _: i64) -> Box<dyn ProviderQuery> {
        Box::new(HungQuery {
            aborted: self.aborted.clone(),
        })
    }
}

impl ProviderQuery for HungQuery {
    fn push(&mut self, _: &str, _: i64) {}
    fn end(&mut self) {}
    fn abort(&mut self) {
        self.aborted.set(true);
    }
    fn tool_result(&mut self, _: &str, _: Result<serde_json::Value, String>, _: i64) {}
    fn poll(&mut self, _: i64) -> QueryPoll {
        QueryPoll::Pending { wake_at_ms: None }
    }
}

#[test]
fn provider_that_ignores_end_is_aborted_one_timeout_later() {
    let aborted = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "hello");
    let config = world.config.clone();
    let dyn_env: std::rc::Rc<dyn Env> = world.env.clone();
    let provider = HungProvider {
        aborted: aborted.clone(),
    };
    world.runner = AgentRunner::start(dyn_env, config, Box::new(provider)).unwrap();

    world.step();
    world.run_for(2 * 20_000 - 1);
    assert!(!aborted.get());
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    world.run_for(1);
    assert!(aborted.get());
    // Aborted without a result: failed, with an error reply (PROTOCOL §5 "no silent success").
    assert_eq!(world.ack(&id).as_deref(), Some(status::FAILED));
    assert!(
        world.texts()[0].starts_with("Error: "),
        "{:?}",
        world.texts()
    );
    assert!(!world.runner.query_running());
}

#[test]
fn runner_that_exited_stays_exited() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "@mock exit 3");
    assert_eq!(world.step().exit_code, Some(3));
    world.chat("u1", "anyone there?");
    world.env.advance(30_000);
    assert_eq!(world.step().exit_code, Some(3));
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    assert_eq!(world.provider_inputs().len(), 1);
}

/// Makes every insert into `messages_out` fail (as a full disk would) until `allow_output`.
fn refuse_output(world: &RunnerWorld) {
    let path = world.paths().outbound_db();
    let db = Db::open(&*world.env, &path, Schema::Outbound, Access::ReadWrite).unwrap();
    db.conn()
        .execute_batch(
            "CREATE TRIGGER refuse_output BEFORE INSERT ON messages_out
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
}

fn allow_output(world: &RunnerWorld) {
    let path = world.paths().outbound_db();
    let db = Db::open(&*world.env, &path, Schema::Outbound, Access::ReadWrite).unwrap();
    db.conn()
        .execute_batch("DROP TRIGGER refuse_output")
        .unwrap();
}

#[test]
fn reply_that_cannot_be_written_is_written_once_when_it_can() {
    let mut world = RunnerWorld::new();
    let id = world.chat("u1", "hello");
    refuse_output(&world);

    let error = world.runner.step().unwrap_err();
    assert!(error.to_string().contains("disk full"), "{error}");
    assert_eq!(world.ack(&id).as_deref(), Some(status::PROCESSING));
    world.env.advance(1_000);
    assert!(world.runner.step().is_err(), "still failing, still kept");

    allow_output(&world);
    world.step();
    world.step();
    assert_eq!(world.outbound().len(), 1);
    assert_eq!(
        world.outbound()[0].in_reply_to.as_deref(),
        Some(id.as_str())
    );
}

#[test]
fn tool_call_that_cannot_be_written_is_retried_whole() {
    let mut world = RunnerWorld::new();
    world.chat(
        "u1",
        r#"@mock tool send_message {"text": "once"}; say done"#,
    );
    refuse_output(&world);
    assert!(world.runner.step().is_err());
    assert!(
        world.tool_results().is_empty(),
        "the call is not answered yet"
    );

    allow_output(&world);
    world.run_for(1_000);
    assert_eq!(world.texts(), ["once", "done"]);
    assert_eq!(world.tool_results().len(), 1);
}

#[test]
fn every_message_of_an_answered_batch_is_acked_on_restart_not_answered_again() {
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "one");
    let second = world.chat("u2", "two");
    world.step();
    assert_eq!(world.outbound().len(), 1, "one answer for the batch");

    world.restart(MockProvider::new());
    assert_eq!(
        world.runner.claim_cleanup(),
        ClaimCleanup {
            released: 0,
            completed: 2
        }
    );
    assert_eq!(world.ack(&first).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&second).as_deref(), Some(status::COMPLETED));
    world.run_for(2_000);
    assert!(world.provider_inputs().is_empty());
    assert_eq!(world.outbound().len(), 1);
}

#[test]
fn batch_claimed_but_unanswered_is_taken_again_one_message_at_a_time() {
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "@mock think 10s; say one");
    let second = world.chat("u2", "@mock say two");
    world.step();

    world.restart(MockProvider::new());
    assert_eq!(world.ack(&first), None);
    assert_eq!(world.ack(&second), None);
    world.run_for(60_000);
    let inputs = world.provider_inputs();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    assert!(inputs[0].contains("say one") && !inputs[0].contains("say two"));
    assert!(inputs[1].contains("say two"));
    assert_eq!(world.texts(), vec!["one", "two"]);
}

#[test]
fn follow_up_of_a_dead_query_is_taken_again() {
    let mut world = RunnerWorld::new();
    let first = world.chat("u1", "hello");
    world.step();
    let follow_up = world.chat("u1", "@mock think 5s; say late");
    world.step();
    assert_eq!(world.ack(&follow_up).as_deref(), Some(status::PROCESSING));

    // The container dies while the follow-up's turn is under way.
    world.restart(MockProvider::new());
    assert_eq!(world.ack(&first).as_deref(), Some(status::COMPLETED));
    assert_eq!(world.ack(&follow_up), None, "released, not lost");
    world.run_for(5_000);
    assert_eq!(world.texts().last().unwrap(), "late");
    assert_eq!(
        world.outbound().last().unwrap().in_reply_to.as_deref(),
        Some(follow_up.as_str())
    );
}

#[test]
fn finished_claims_leave_no_batch_bookkeeping_behind() {
    let mut world = RunnerWorld::new();
    world.chat("u1", "one");
    world.chat("u2", "two");
    world.run_for(AFTER_IDLE_TIMEOUT_MS);
    let path = world.paths().outbound_db();
    let db = Db::open(&*world.env, &path, Schema::Outbound, Access::ReadOnly).unwrap();
    let open: i64 = db
        .conn()
        .query_row("SELECT COUNT(*) FROM claim_batches", [], |r| r.get(0))
        .unwrap();
    assert_eq!(open, 0);
}

#[test]
fn a_message_a_dead_container_left_unanswered_is_not_batched_behind_a_fresh_one() {
    let mut world = RunnerWorld::new();
    let fresh = world.chat("u1", "@mock say fine");
    let poison = world.chat("u1", "@mock exit 137");
    // The previous container died holding only the second message (the first reached the
    // inbox unclaimed): the next one must not put the suspect in the fresh message's batch.
    leave_outbound(&world, |tx| {
        tx.execute(
            "INSERT INTO processing_ack VALUES (?1, ?2, '2026-01-01T00:00:00.000Z')",
            params![poison, status::PROCESSING],
        )?;
        Ok(())
    });

    world.restart(MockProvider::new());
    world.step();
    let inputs = world.provider_inputs();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert!(
        inputs[0].contains("say fine") && !inputs[0].contains("exit 137"),
        "the suspect runs in a batch of its own: {inputs:?}"
    );
    assert_eq!(world.ack(&fresh).as_deref(), Some(status::PROCESSING));
    assert_eq!(
        world.ack(&poison),
        None,
        "the suspect waits for its own batch"
    );
    // Its own batch comes once the fresh turn has ended, alone: only it takes the process down.
    assert_eq!(world.run_for(AFTER_IDLE_TIMEOUT_MS + 5_000), Some(137));
    assert_eq!(world.ack(&fresh).as_deref(), Some(status::COMPLETED));
    let inputs = world.provider_inputs();
    assert!(
        inputs
            .last()
            .is_some_and(|input| input.contains("exit 137") && !input.contains("say fine")),
        "{inputs:?}"
    );
}
