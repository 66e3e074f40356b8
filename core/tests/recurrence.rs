//! Recurring tasks (PROTOCOL §7 sweep step 4, §9.7): each occurrence fires once, the next one is
//! scheduled from the occurrence's scheduled time, and a host that was down fires what it missed
//! once, not once per missed occurrence.
//!
//! The stories behind these: the reference computed the next run from the moment the previous
//! one finished, so a daily 09:00 task drifted later every day; after a weekend of downtime a
//! host that stepped the series one occurrence at a time fired the same task over and over; and
//! a crash between inserting the next occurrence and clearing the recurrence of the finished one
//! doubled the series. The tests play the agent by acking occurrences and let the sweep step
//! the series.

mod host_support;

use clawsim_core::host::{Host, SessionInfo, SessionMode};
use clawsim_core::model::InboundRow;
use clawsim_core::time::parse_instant;
use host_support::*;

struct Setup {
    world: World,
    host: Host,
    session: SessionInfo,
    agent: Agent,
}

fn setup_with(configure: impl FnOnce(&mut World)) -> Setup {
    let mut world = World::new();
    configure(&mut world);
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("hi", None)).unwrap();
    let session = host.session(&routed.session_id).unwrap();
    let agent = Agent::of(&world.env, &session);
    agent.ack(&routed.message_id, "completed");
    Setup {
        world,
        host,
        session,
        agent,
    }
}

impl Setup {
    fn tasks(&self) -> Vec<InboundRow> {
        inbound_rows(&self.world.env, &self.session.paths)
            .into_iter()
            .filter(|r| r.kind == "task")
            .collect()
    }

    fn finish(&mut self, id: &str, status: &str) -> usize {
        self.agent.ack(id, status);
        self.host
            .sweep_session(&self.session.id)
            .unwrap()
            .recurrences
    }
}

#[test]
fn next_occurrence_counts_from_the_scheduled_time_not_the_run_time() {
    let mut s = setup_with(|_| {});
    insert_inbound(
        &s.world.env,
        &s.session.paths,
        &task_row("task-1", "2026-03-01T09:00:00Z", Some("0 9 * * *")),
    );
    s.world.env.set_now("2026-03-01T09:07:13Z");
    assert_eq!(s.finish("task-1", "completed"), 1);

    let tasks = s.tasks();
    assert_eq!(tasks.len(), 2);
    let (done, next) = (&tasks[0], &tasks[1]);
    assert_eq!(
        (done.status.as_str(), done.recurrence.as_deref()),
        ("completed", None)
    );
    assert_eq!(
        next.process_after.as_deref(),
        Some("2026-03-02T09:00:00.000Z")
    );
    assert_eq!(next.recurrence.as_deref(), Some("0 9 * * *"));
    assert_eq!(next.series_id.as_deref(), Some("task-1"));
    assert_eq!(
        (next.kind.as_str(), next.status.as_str(), next.tries),
        ("task", "pending", 0)
    );
    assert_eq!((&next.content, &next.route), (&done.content, &done.route));
    assert_eq!(next.seq.unwrap() % 2, 0);
}

#[test]
fn occurrences_missed_while_down_fire_once() {
    let mut s = setup_with(|_| {});
    insert_inbound(
        &s.world.env,
        &s.session.paths,
        &task_row("task-1", "2026-03-01T09:00:00Z", Some("0 9 * * *")),
    );
    // The host was down from before 09:00 on the 1st until noon on the 4th: the overdue
    // occurrence runs once, and the next one is tomorrow's, not the 2nd's.
    s.world.env.set_now("2026-03-04T12:00:00Z");
    assert_eq!(s.finish("task-1", "completed"), 1);
    let tasks = s.tasks();
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        tasks[1].process_after.as_deref(),
        Some("2026-03-05T09:00:00.000Z")
    );
}

#[test]
fn stepping_a_series_twice_schedules_nothing_more() {
    let mut s = setup_with(|_| {});
    insert_inbound(
        &s.world.env,
        &s.session.paths,
        &task_row("task-1", "2026-03-01T09:00:00Z", Some("*/15 * * * *")),
    );
    s.world.env.set_now("2026-03-01T09:01:00Z");
    assert_eq!(s.finish("task-1", "completed"), 1);
    assert_eq!(s.host.sweep_session(&s.session.id).unwrap().recurrences, 0);
    drop(s.host);
    s.host = s.world.open();
    assert_eq!(s.host.sweep_session(&s.session.id).unwrap().recurrences, 0);
    assert_eq!(s.tasks().len(), 2);
}

#[test]
fn each_occurrence_of_a_series_fires_once_across_many_days() {
    let mut s = setup_with(|_| {});
    insert_inbound(
        &s.world.env,
        &s.session.paths,
        &task_row("task-1", "2026-03-01T09:00:00Z", Some("0 9 * * *")),
    );
    for day in 1..=5 {
        s.world.env.set_now(&format!("2026-03-0{day}T09:00:05Z"));
        let current = s.tasks().pop().unwrap();
        assert_eq!(current.status, "pending");
        assert_eq!(
            current.process_after.as_deref().and_then(parse_instant),
            parse_instant(&format!("2026-03-0{day}T09:00:00Z"))
        );
        s.finish(&current.id, "completed");
    }
    let tasks = s.tasks();
    assert_eq!(tasks.len(), 6);
    assert!(tasks
        .iter()
        .all(|t| t.series_id.as_deref() == Some("task-1")));
    assert_eq!(tasks.iter().filter(|t| t.recurrence.is_some()).count(), 1);
}

#[test]
fn cron_is_evaluated_in_the_configured_time_zone() {
    let mut s = setup_with(|world| {
        world.config.time_zone = "America/New_York".parse().unwrap();
    });
    // 09:00 in New York is 14:00 UTC in March before the DST change (8 March 2026), 13:00 after.
    insert_inbound(
        &s.world.env,
        &s.session.paths,
        &task_row("task-1", "2026-03-07T14:00:00Z", Some("0 9 * * *")),
    );
    s.world.env.set_now("2026-03-07T14:00:01Z");
    s.finish("task-1", "completed");
    assert_eq!(
        s.tasks()[1].process_after.as_deref(),
        Some("2026-03-08T13:00:00.000Z")
    );
}

#[test]
fn a_failed_occurrence_does_not_end_its_series() {
    let mut s = setup_with(|_| {});
    insert_inbound(
        &s.world.env,
        &s.session.paths,
        &task_row("task-1", "2026-03-01T09:00:00Z", Some("0 9 * * *")),
    );
    s.world.env.set_now("2026-03-01T09:00:30Z");
    assert_eq!(s.finish("task-1", "failed"), 1);
    let tasks = s.tasks();
    assert_eq!(tasks[0].status, "failed");
    assert_eq!(
        tasks[1].process_after.as_deref(),
        Some("2026-03-02T09:00:00.000Z")
    );
}

#[test]
fn a_finished_row_left_with_its_recurrence_gets_its_next_occurrence() {
    // An older build (or the reference) finished the row without stepping the series.
    let mut s = setup_with(|_| {});
    // It failed at its last try: the next occurrence starts afresh, not failed, not with tries.
    let mut row = task_row("task-old", "2026-03-01T07:00:00Z", Some("0 7 * * *"));
    row.status = "failed".into();
    row.tries = 5;
    insert_inbound(&s.world.env, &s.session.paths, &row);
    assert_eq!(s.host.sweep_session(&s.session.id).unwrap().recurrences, 1);
    let tasks = s.tasks();
    assert_eq!(tasks[0].recurrence, None);
    let next = &tasks[1];
    assert_eq!(
        next.process_after.as_deref(),
        Some("2026-03-02T07:00:00.000Z")
    );
    assert_eq!((next.status.as_str(), next.tries), ("pending", 0));
    let now = clawsim_core::time::format_instant(clawsim_core::Env::now_ms(&*s.world.env));
    assert_eq!(next.timestamp, now, "written now, not when the old row was");
    assert_eq!(s.host.sweep_session(&s.session.id).unwrap().recurrences, 0);
}

#[test]
fn a_row_whose_cron_cannot_be_read_ends_its_series_without_crashing() {
    let mut s = setup_with(|_| {});
    insert_inbound(
        &s.world.env,
        &s.session.paths,
        &task_row("task-bad", "2026-03-01T07:00:00Z", Some("whenever")),
    );
    assert_eq!(s.finish("task-bad", "completed"), 0);
    let tasks = s.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (tasks[0].status.as_str(), tasks[0].recurrence.as_deref()),
        ("completed", None)
    );
}
