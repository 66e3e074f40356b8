//! System actions (PROTOCOL §7): `schedule_task`, `cancel_task`, `pause_task`, `resume_task`
//! written by the agent as `kind='system'` rows and applied by the host to `inbound.db`.
//!
//! The stories behind these: a host that died after applying an action but before recording it
//! scheduled the task twice on restart (here effect and record share one transaction); cancelling
//! a recurring task by the id the agent held stopped one occurrence while the series went on
//! (here every action covers the whole series); a typo in a cron was accepted and the task never
//! ran, silently (here the agent gets an error row).

mod host_support;

use clawsim_core::host::{Host, SessionInfo, SessionMode};
use clawsim_core::model::InboundRow;
use host_support::*;
use serde_json::{json, Value};

struct Setup {
    world: World,
    host: Host,
    session: SessionInfo,
    agent: Agent,
}

fn setup() -> Setup {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("remind me", None)).unwrap();
    let session = host.session(&routed.session_id).unwrap();
    let agent = Agent::of(&world.env, &session);
    Setup {
        world,
        host,
        session,
        agent,
    }
}

impl Setup {
    fn apply(&mut self, content: Value) -> String {
        let id = self.agent.system(content);
        let sent = deliver(&mut self.host, &self.session.id, accept);
        assert!(sent.is_empty(), "system rows never reach a channel");
        id
    }

    fn rows(&self) -> Vec<InboundRow> {
        inbound_rows(&self.world.env, &self.session.paths)
    }

    fn tasks(&self) -> Vec<InboundRow> {
        self.rows()
            .into_iter()
            .filter(|r| r.kind == "task")
            .collect()
    }

    fn replies(&self) -> Vec<Value> {
        self.rows()
            .into_iter()
            .filter(|r| r.kind == "system")
            .map(|r| r.content_json())
            .collect()
    }

    /// The agent ran an occurrence to completion; the sweep steps the series.
    fn complete(&mut self, task_id: &str) {
        self.agent.ack(task_id, "completed");
        self.host.sweep_session(&self.session.id).unwrap();
    }
}

#[test]
fn the_task_id_the_agent_was_told_names_the_series_it_can_cancel() {
    let mut s = setup();
    s.apply(
        json!({"action": "schedule_task", "taskId": "task-from-agent", "prompt": "p",
        "processAfter": "2026-03-01T09:00:00Z", "recurrence": "0 9 * * *"}),
    );
    assert_eq!(s.tasks()[0].id, "task-from-agent");
    assert_eq!(s.replies()[0]["result"]["taskId"], "task-from-agent");
    // The same id again is taken: the second series gets a fresh id and says which.
    s.apply(
        json!({"action": "schedule_task", "taskId": "task-from-agent", "prompt": "q",
        "processAfter": "2026-03-01T09:00:00Z"}),
    );
    let second_id = s.replies()[1]["result"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second_id, "task-from-agent");
    s.apply(json!({"action": "cancel_task", "taskId": "task-from-agent"}));
    let first = s
        .tasks()
        .into_iter()
        .find(|t| t.id == "task-from-agent")
        .unwrap();
    assert_eq!(first.status, "completed");
    let second = s.tasks().into_iter().find(|t| t.id == second_id).unwrap();
    assert_eq!(second.status, "pending");
}

#[test]
fn schedule_task_inserts_a_task_and_answers_ok() {
    let mut s = setup();
    let request = s.apply(json!({
        "action": "schedule_task", "prompt": "water the plants",
        "processAfter": "2026-03-01 09:30:00", "script": "echo hi"
    }));
    assert_eq!(s.tasks().len(), 1);
    let rows: Vec<InboundRow> = s.rows().into_iter().skip(1).collect();
    insta::assert_yaml_snapshot!("schedule_task_rows", rows);
    assert_eq!(
        delivered(&s.world.env, &s.session.paths)[&request].0,
        "delivered"
    );
}

#[test]
fn system_action_is_applied_once_across_a_host_restart() {
    let mut s = setup();
    s.apply(json!({"action": "schedule_task", "prompt": "once", "processAfter": "2026-03-02T00:00:00Z"}));
    drop(s.host);
    // A restarted host reads the whole outbound.db again; the action's `delivered` row was
    // committed with its effect, so nothing is applied twice.
    s.host = s.world.open();
    assert!(deliver(&mut s.host, &s.session.id, accept).is_empty());
    assert_eq!(s.tasks().len(), 1);
    assert_eq!(s.replies().len(), 1);
}

#[test]
fn host_crash_mid_pass_neither_repeats_the_action_nor_loses_the_rest() {
    let mut s = setup();
    s.agent.system(
        json!({"action": "schedule_task", "prompt": "p", "processAfter": "2026-03-02T00:00:00Z"}),
    );
    s.agent.reply("any", "after the action");
    let mut pass = s.host.begin_delivery(&s.session.id).unwrap().unwrap();
    let step = s.host.delivery_step(&mut pass).unwrap();
    assert!(
        matches!(step, clawsim_core::host::DeliveryStep::Send(_)),
        "action applied on the way"
    );
    drop(pass);
    drop(s.host); // crash while the chat row is in flight
    s.host = s.world.open();
    assert_eq!(
        texts(&deliver(&mut s.host, &s.session.id, accept)),
        ["after the action"]
    );
    assert_eq!(s.tasks().len(), 1);
}

#[test]
fn invalid_cron_schedules_nothing_and_answers_an_error() {
    let mut s = setup();
    let id = s.apply(json!({
        "action": "schedule_task", "prompt": "p", "processAfter": "2026-03-02T00:00:00Z",
        "recurrence": "every tuesday"
    }));
    assert!(s.tasks().is_empty());
    let reply = &s.replies()[0];
    assert_eq!(reply["action"], "schedule_task");
    assert_eq!(reply["status"], "error");
    assert!(reply["result"]["error"]
        .as_str()
        .unwrap()
        .contains("every tuesday"));
    assert_eq!(
        delivered(&s.world.env, &s.session.paths)[&id].0,
        "delivered"
    );
}

#[test]
fn six_field_cron_takes_a_seconds_field() {
    let mut s = setup();
    s.apply(json!({"action": "schedule_task", "prompt": "p", "recurrence": "30 0 9 * * *"}));
    assert_eq!(
        s.tasks()[0].process_after.as_deref(),
        Some("2026-03-01T09:00:30.000Z")
    );
    assert_eq!(s.replies()[0]["status"], "ok");
}

#[test]
fn seven_field_cron_is_refused() {
    let mut s = setup();
    s.apply(json!({"action": "schedule_task", "prompt": "p", "recurrence": "0 0 9 * * * 2027"}));
    assert!(s.tasks().is_empty());
    assert_eq!(s.replies()[0]["status"], "error");
}

#[test]
fn invalid_process_after_schedules_nothing_and_answers_an_error() {
    let mut s = setup();
    s.apply(json!({"action": "schedule_task", "prompt": "p", "processAfter": "next week-ish"}));
    assert!(s.tasks().is_empty());
    let reply = &s.replies()[0];
    assert_eq!(reply["status"], "error");
    assert!(reply["result"]["error"]
        .as_str()
        .unwrap()
        .contains("next week-ish"));
}

#[test]
fn recurring_task_without_process_after_starts_at_its_next_cron_time() {
    let mut s = setup();
    s.apply(json!({"action": "schedule_task", "prompt": "p", "recurrence": "30 9 * * *"}));
    let task = &s.tasks()[0];
    assert_eq!(
        task.process_after.as_deref(),
        Some("2026-03-01T09:30:00.000Z")
    );
    assert_eq!(task.recurrence.as_deref(), Some("30 9 * * *"));
}

/// Schedules a daily series and runs its first occurrence; returns (first id, second id).
fn series_with_two_occurrences(s: &mut Setup) -> (String, String) {
    s.apply(json!({
        "action": "schedule_task", "prompt": "daily", "processAfter": "2026-03-01T08:00:00Z",
        "recurrence": "0 8 * * *"
    }));
    let first = s.tasks()[0].id.clone();
    s.complete(&first);
    let tasks = s.tasks();
    assert_eq!(tasks.len(), 2, "the series stepped to its next occurrence");
    (first, tasks[1].id.clone())
}

#[test]
fn cancel_by_an_old_occurrence_id_ends_the_whole_series() {
    let mut s = setup();
    let (first, second) = series_with_two_occurrences(&mut s);
    s.apply(json!({"action": "cancel_task", "taskId": first}));
    let next = s.tasks().into_iter().find(|t| t.id == second).unwrap();
    assert_eq!(next.status, "completed");
    assert_eq!(next.recurrence, None);
    assert_eq!(s.replies().last().unwrap()["status"], "ok");

    s.agent.ack(&second, "completed");
    s.world.env.advance_ms(3 * 86_400_000);
    s.host.sweep_session(&s.session.id).unwrap();
    assert_eq!(s.tasks().len(), 2, "a cancelled series fires no more");
}

#[test]
fn pause_and_resume_act_on_the_whole_series() {
    let mut s = setup();
    let (first, second) = series_with_two_occurrences(&mut s);
    s.apply(json!({"action": "pause_task", "taskId": first}));
    let status_of =
        |s: &Setup, id: &str| s.tasks().into_iter().find(|t| t.id == id).unwrap().status;
    assert_eq!(status_of(&s, &second), "paused");
    assert_eq!(
        status_of(&s, &first),
        "completed",
        "finished occurrences stay finished"
    );

    s.apply(json!({"action": "resume_task", "taskId": first}));
    assert_eq!(status_of(&s, &second), "pending");
    let replies = s.replies();
    assert_eq!(replies.len(), 3);
    assert!(replies.iter().all(|r| r["status"] == "ok"));
    assert_eq!(replies[1]["action"], "pause_task");
    assert_eq!(replies[1]["result"]["changed"], 1);
}

#[test]
fn a_paused_occurrence_that_finishes_anyway_leaves_its_series_paused() {
    let mut s = setup();
    let (first, second) = series_with_two_occurrences(&mut s);
    s.apply(json!({"action": "pause_task", "taskId": first}));
    // The agent had already claimed the occurrence and finishes it after the pause.
    s.complete(&second);
    let third = s.tasks().pop().unwrap();
    assert_ne!(third.id, second);
    assert_eq!(third.status, "paused");
}

#[test]
fn cancel_of_an_unknown_task_answers_an_error() {
    let mut s = setup();
    s.apply(json!({"action": "cancel_task", "taskId": "task-nope"}));
    let reply = &s.replies()[0];
    assert_eq!(reply["status"], "error");
    assert_eq!(reply["result"]["error"], "unknown task task-nope");
}

#[test]
fn unknown_action_is_recorded_undeliverable_and_changes_nothing() {
    let mut s = setup();
    let id = s.apply(json!({"action": "launch_rocket"}));
    let (status, reason) = delivered(&s.world.env, &s.session.paths)[&id].clone();
    assert_eq!(status, "undeliverable");
    assert_eq!(
        reason.as_deref(),
        Some("unknown system action launch_rocket")
    );
    assert!(s.replies().is_empty());
}

#[test]
fn system_row_that_is_not_json_is_recorded_undeliverable() {
    let mut s = setup();
    let id = s
        .agent
        .write("system", room_route(), json!("schedule everything"));
    deliver(&mut s.host, &s.session.id, accept);
    let (status, reason) = delivered(&s.world.env, &s.session.paths)[&id].clone();
    assert_eq!(status, "undeliverable");
    assert_eq!(reason.as_deref(), Some("system row without an action"));
}
