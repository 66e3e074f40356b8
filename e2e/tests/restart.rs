//! Host restarts and replays with real containers.
//!
//! A host restart stops the host (its runtime takes its containers down) and starts a new one on
//! the same data. Restarted right after the agent wrote `schedule_task` requests, while the host
//! may be applying them and the agent may be writing, several times over, the host must apply each request exactly once
//! (PROTOCOL §7 Decision: effect and `delivered` row in one transaction): one task series per
//! request, each task fired once. The agent side may lose the rest of a killed turn (output-sent
//! protection acks a message with output `completed`), but must never replay it.
//!
//! The other two kill a container while a follow-up pushed into its running query is under way.
//! A pushed follow-up's output is routed to the batch's *first* message, so the container-side
//! output-sent protection must know which inputs a turn consumed: a follow-up whose turn ended
//! (answered) is not answered again, and one whose turn wrote a tool row and then died mid-turn
//! is not run again either (its tool would act twice), as for a first message in that state.
//!
//! All end with the oracle's verdict on the run (here §9.2 with its system-action part, §9.3a,
//! §9.7), each of which must have been judged.

use clawsim_core::model::kind;
use clawsim_core::time::format_instant;
use clawsim_e2e::world::{carries, now_ms, Judged, World};
use clawsim_oracle::Property;
use serde_json::json;
use std::time::Duration;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A `tool schedule_task` directive for a task whose prompt carries `token`, due in `in_ms`.
fn schedule(token: &str, in_ms: i64) -> String {
    let args = json!({
        "prompt": format!("{token} a task"),
        "processAfter": format_instant(now_ms() + in_ms),
    });
    format!("tool schedule_task {args}")
}

/// The `schedule_task` requests the agent wrote for `token`'s task, and the task rows.
fn requests_and_tasks(world: &World, token: &str) -> (usize, usize) {
    let sessions = world.sessions();
    let snapshot = &sessions[0].snapshot;
    let requests = snapshot
        .outbound
        .iter()
        .filter(|row| row.kind == kind::SYSTEM && carries(&row.content, token))
        .count();
    let tasks = snapshot
        .inbound
        .iter()
        .filter(|row| row.kind == kind::TASK && carries(&row.content, token))
        .count();
    (requests, tasks)
}

/// The properties a replayed turn or a twice-applied action would break were judged.
fn assert_replays_judged(judged: &Judged) {
    for property in [Property::NoDuplicate, Property::OneAnswer, Property::Series] {
        assert!(judged.verdict.judged(property), "{property} not judged");
    }
}

#[test]
fn a_host_restarted_while_applying_system_actions_applies_each_once() {
    let Some(mut world) = World::start("restart-actions") else {
        return;
    };
    let hello = world.send("hello");
    world.wait_answer(&hello, ANSWER_TIMEOUT);
    // The request must start its own batch (see the second test for why).
    world.wait_no_query_running(ANSWER_TIMEOUT);

    let (first_task, second_task) = (world.task_token(), world.task_token());
    let due_ms = now_ms() + 8_000;
    world.send(&format!(
        "@mock {}; {}",
        schedule(&first_task, 6_000),
        schedule(&second_task, 8_000)
    ));
    // Restart as soon as the agent has written a request: the host may be applying it, and
    // the agent may be inside a write (recovery.rs covers what that leaves behind).
    world.wait_until("a request written", ANSWER_TIMEOUT, |sessions| {
        let snapshot = &sessions[0].snapshot;
        snapshot.outbound.iter().any(|row| row.kind == kind::SYSTEM)
    });
    world.restart_host();
    std::thread::sleep(Duration::from_millis(1_000));
    world.restart_host();
    std::thread::sleep(Duration::from_millis(1_000));
    world.restart_host();
    world.send("after the restarts");

    std::thread::sleep(Duration::from_millis((due_ms - now_ms()).max(0) as u64));
    world.wait_settled(SETTLE_TIMEOUT);
    for marker in [&first_task, &second_task] {
        let (requests, tasks) = requests_and_tasks(&world, marker);
        // A turn killed after its first request may never write the second (output-sent
        // protection acks it completed); what was requested is applied exactly once.
        if requests > 1 || tasks != requests {
            world.fail(&format!(
                "task {marker}: {requests} request(s) written, {tasks} task row(s) made"
            ));
        }
    }
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    assert_replays_judged(&judged);
}

#[test]
fn a_follow_up_answered_before_the_container_died_is_not_answered_again() {
    let Some(mut world) = World::start("restart-follow-up-answered") else {
        return;
    };
    // A first message opens a query that stays open for follow-ups.
    let hello = world.send("hello");
    world.wait_answer(&hello, ANSWER_TIMEOUT);
    let task = world.task_token();
    let follow_up = world.send(&format!("@mock {}", schedule(&task, 1_000)));
    // Its turn is over (request and answer written) but the query is still open: kill now.
    world.wait_answer(&follow_up, ANSWER_TIMEOUT);
    let session_id = world.session_id();
    world.kill_container(&session_id);
    std::thread::sleep(Duration::from_secs(2));
    world.wait_settled(SETTLE_TIMEOUT);
    let (requests, tasks) = requests_and_tasks(&world, &task);
    if requests != 1 || tasks != 1 || world.answers_to(&follow_up) != 1 {
        world.fail(&format!(
            "the follow-up's turn ran again: {requests} request(s), {tasks} task row(s), {} answers",
            world.answers_to(&follow_up)
        ));
    }
    let judged = world.check();
    assert_replays_judged(&judged);
}

#[test]
fn a_follow_up_whose_turn_already_acted_is_not_replayed_after_the_container_dies() {
    let Some(mut world) = World::start("restart-follow-up") else {
        return;
    };
    let hello = world.send("hello");
    world.wait_answer(&hello, ANSWER_TIMEOUT);
    let task = world.task_token();
    world.send(&format!(
        "@mock {}; active; think 3s",
        schedule(&task, 1_000)
    ));
    world.wait_until(
        "the follow-up's request written",
        ANSWER_TIMEOUT,
        |sessions| {
            let snapshot = &sessions[0].snapshot;
            snapshot.outbound.iter().any(|row| row.kind == kind::SYSTEM)
        },
    );
    // Inside the think, not inside a write.
    std::thread::sleep(Duration::from_millis(1_000));
    let session_id = world.session_id();
    world.kill_container(&session_id);
    std::thread::sleep(Duration::from_secs(5));
    world.wait_settled(SETTLE_TIMEOUT);
    let (requests, tasks) = requests_and_tasks(&world, &task);
    if requests != 1 || tasks != 1 {
        world.fail(&format!(
            "the follow-up's turn ran again: {requests} request(s), {tasks} task row(s)"
        ));
    }
    let judged = world.check();
    assert_replays_judged(&judged);
}
