//! Tasks the agent schedules through the host, in real containers: a one-shot task fires once,
//! not before its time; a recurring task fires again on its cron (five fields, so once a
//! minute at best: this test takes up to two minutes) until the agent cancels it, and the
//! cancel ends the whole series, using the task id the agent was given.
//!
//! Each test ends with the oracle's verdict on the run; §9.6 (nothing before `process_after`)
//! and §9.7 (one row and one answer per occurrence, nothing of a cancelled series claimed after
//! the cancel) are the ones these runs exercise, and must have been judged.

use clawsim_core::model::{kind, status};
use clawsim_core::time::format_instant;
use clawsim_e2e::world::{now_ms, Judged, World};
use clawsim_oracle::Property;
use serde_json::{json, Value};
use std::time::Duration;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The script line that makes the agent call `tool` with `args`.
fn tool(name: &str, args: Value) -> String {
    format!("@mock tool {name} {args}")
}

#[test]
fn a_scheduled_task_fires_once_and_not_before_its_time() {
    let Some(mut world) = World::start("task-once") else {
        return;
    };
    let task_marker = world.task_token();
    let process_after = format_instant(now_ms() + 4_000);
    let request = tool(
        "schedule_task",
        json!({"prompt": format!("{task_marker} water the plants"), "processAfter": process_after}),
    );
    let asked = world.send(&request);
    world.wait_answer(&asked, ANSWER_TIMEOUT);
    let answer = world.wait_answer(&task_marker, ANSWER_TIMEOUT);
    assert!(answer.content["text"]
        .as_str()
        .unwrap()
        .contains("[SCHEDULED TASK]"));
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    assert_tasks_judged(&judged);
    let tasks: Vec<_> = judged.sessions[0]
        .snapshot
        .inbound
        .iter()
        .filter(|row| row.kind == kind::TASK)
        .collect();
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    assert_eq!(tasks[0].status, status::COMPLETED);
    assert_eq!(world.answers_to(&task_marker), 1);
}

#[test]
fn a_recurring_task_fires_on_its_cron_until_the_agent_cancels_the_series() {
    let Some(mut world) = World::start("task-recurring") else {
        return;
    };
    let task_marker = schedule_every_minute(&mut world);
    // The first occurrence at once, the second at the next minute boundary.
    world.wait_answers(&task_marker, 2, Duration::from_secs(90));
    // The agent cancels with the id the host's answer to its request named.
    let task_id = host_task_id(&world);
    cancel_and_check(&mut world, &task_marker, &task_id);
}

/// The id the agent's own `schedule_task` call returned must name the task for the host too.
#[test]
fn the_task_id_the_schedule_call_returned_cancels_the_series() {
    let Some(mut world) = World::start("task-agent-id") else {
        return;
    };
    let task_marker = schedule_every_minute(&mut world);
    world.wait_answers(&task_marker, 1, Duration::from_secs(90));
    let task_id = agent_task_id(&world);
    cancel_and_check(&mut world, &task_marker, &task_id);
}

/// Has the agent schedule a task every minute, first at once; returns the prompt's marker.
fn schedule_every_minute(world: &mut World) -> String {
    let task_marker = world.task_token();
    let request = tool(
        "schedule_task",
        json!({
            "prompt": format!("{task_marker} check the mail"),
            "processAfter": format_instant(now_ms() + 1_000),
            "recurrence": "* * * * *",
        }),
    );
    let asked = world.send(&request);
    world.wait_answer(&asked, ANSWER_TIMEOUT);
    task_marker
}

/// Cancels the series by `task_id`, waits until no occurrence is pending or recurring any
/// more, and applies the §9 checks (§9.7: nothing of the series claimed after the cancel).
fn cancel_and_check(world: &mut World, task_marker: &str, task_id: &str) {
    let cancel = world.send(&tool("cancel_task", json!({ "taskId": task_id })));
    world.wait_answer(&cancel, ANSWER_TIMEOUT);
    world.wait_until(
        "the cancel applied to the whole series",
        SETTLE_TIMEOUT,
        |sessions| {
            let mut tasks = sessions[0]
                .snapshot
                .inbound
                .iter()
                .filter(|row| row.kind == kind::TASK);
            tasks.all(|row| row.status != status::PENDING && row.recurrence.is_none())
        },
    );
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    assert_tasks_judged(&judged);
    assert!(world.answers_to(task_marker) >= 1);
}

/// The time and series properties were judged, not skipped.
fn assert_tasks_judged(judged: &Judged) {
    for property in [Property::Time, Property::Series, Property::NoDuplicate] {
        assert!(judged.verdict.judged(property), "{property} not judged");
    }
}

/// The `taskId` of the host's answer to the agent's `schedule_task` (a `system` row the agent
/// reads as `[SYSTEM RESPONSE]`).
fn host_task_id(world: &World) -> String {
    let sessions = world.sessions();
    let response = sessions[0]
        .snapshot
        .inbound
        .iter()
        .find(|row| row.kind == kind::SYSTEM && row.content.contains("schedule_task"))
        .expect("the host's answer to schedule_task");
    response.content_json()["result"]["taskId"]
        .as_str()
        .expect("a taskId in the answer")
        .to_string()
}

/// The `taskId` the agent's `schedule_task` call handed back, as written in its system row.
fn agent_task_id(world: &World) -> String {
    let sessions = world.sessions();
    let request = sessions[0]
        .snapshot
        .outbound
        .iter()
        .find(|row| row.kind == kind::SYSTEM && row.content.contains("schedule_task"))
        .expect("a schedule_task row");
    request.content_json()["taskId"]
        .as_str()
        .expect("schedule_task row with a taskId")
        .to_string()
}
