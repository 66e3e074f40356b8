//! Container lifecycle (PROTOCOL §7): wake starts a container unless one runs, at most
//! `max_concurrent_containers` run and the rest wait their turn, an idle container is stopped
//! after `idle_stop_ms`, and the central DB's `container_status` follows (running, idle,
//! stopped).
//!
//! The stories behind these: a burst of messages to many conversations started a container for
//! each and exhausted the machine; a container that failed to start lost the wake-up and its
//! message sat until the next message arrived; and a host restart forgot the containers it had
//! started, so it started more than the limit. The runtime here is a fake that records what it
//! was asked to do.

mod host_support;

use clawsim_core::host::{Host, SessionMode};
use clawsim_core::runtime::ContainerState;
use host_support::*;

const MINUTE_MS: i64 = 60_000;

fn status_of(host: &mut Host, session_id: &str) -> String {
    host.session(session_id).unwrap().container_status
}

#[test]
fn an_idle_container_is_stopped_after_idle_stop_ms() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("hi", None)).unwrap();
    let agent = Agent::of(&world.env, &host.session(&routed.session_id).unwrap());
    agent.ack(&routed.message_id, "completed");
    assert_eq!(status_of(&mut host, &routed.session_id), "running");
    assert!(!host.sweep_session(&routed.session_id).unwrap().stopped_idle);
    assert_eq!(status_of(&mut host, &routed.session_id), "idle");

    world.env.advance_ms(30 * MINUTE_MS - 1);
    assert!(!host.sweep_session(&routed.session_id).unwrap().stopped_idle);
    world.env.advance_ms(1);
    assert!(host.sweep_session(&routed.session_id).unwrap().stopped_idle);
    assert_eq!(world.runtime.stops(), vec![routed.session_id.clone()]);
    assert_eq!(status_of(&mut host, &routed.session_id), "stopped");
    assert!(
        world.runtime.kills().is_empty(),
        "an idle stop is a stop, not a kill"
    );
}

#[test]
fn delivered_output_postpones_the_idle_stop() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("hi", None)).unwrap();
    let agent = Agent::of(&world.env, &host.session(&routed.session_id).unwrap());
    agent.ack(&routed.message_id, "completed");
    world.env.advance_ms(20 * MINUTE_MS);
    agent.reply(&routed.message_id, "a late thought");
    deliver(&mut host, &routed.session_id, accept);
    world.env.advance_ms(20 * MINUTE_MS);
    assert!(!host.sweep_session(&routed.session_id).unwrap().stopped_idle);
    world.env.advance_ms(10 * MINUTE_MS);
    assert!(host.sweep_session(&routed.session_id).unwrap().stopped_idle);
}

#[test]
fn a_container_with_claimed_work_is_not_stopped_as_idle() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("think hard", None)).unwrap();
    let agent = Agent::of(&world.env, &host.session(&routed.session_id).unwrap());
    agent.ack(&routed.message_id, "processing");
    for _ in 0..8 {
        agent.touch_heartbeat();
        let report = host.sweep_session(&routed.session_id).unwrap();
        assert!(!report.stopped_idle && !report.presumed_dead);
        assert_eq!(status_of(&mut host, &routed.session_id), "running");
        world.env.advance_ms(5 * MINUTE_MS);
    }
}

#[test]
fn wakes_beyond_the_limit_wait_their_turn() {
    let mut world = World::new();
    world.config.max_concurrent_containers = 1;
    let mut host = world.open_wired(SessionMode::PerThread);
    let a = host.route(&chat("a", Some("thread-a"))).unwrap();
    let b = host.route(&chat("b", Some("thread-b"))).unwrap();
    assert_eq!(world.runtime.starts(), vec![a.session_id.clone()]);
    assert_eq!(host.waiting_for_container(), vec![b.session_id.clone()]);
    assert_eq!(host.container_state(&b.session_id), ContainerState::Stopped);

    assert!(
        !host.wake(&b.session_id).unwrap(),
        "waking again does not jump the queue"
    );
    assert_eq!(host.waiting_for_container().len(), 1);

    let agent_a = Agent::of(&world.env, &host.session(&a.session_id).unwrap());
    agent_a.ack(&a.message_id, "completed");
    world.runtime.exit(&a.session_id);
    host.sweep_all().unwrap();
    assert_eq!(world.runtime.starts()[1], b.session_id);
    assert!(host.waiting_for_container().is_empty());

    // New work for A now waits behind B.
    host.route(&chat("a again", Some("thread-a"))).unwrap();
    assert_eq!(host.waiting_for_container(), vec![a.session_id.clone()]);
}

#[test]
fn a_restarted_host_counts_containers_still_running_against_the_limit() {
    let mut world = World::new();
    world.config.max_concurrent_containers = 1;
    let mut host = world.open_wired(SessionMode::PerThread);
    host.route(&chat("a", Some("thread-a"))).unwrap();
    drop(host);
    let mut host = world.open();
    let b = host.route(&chat("b", Some("thread-b"))).unwrap();
    assert_eq!(world.runtime.starts().len(), 1);
    assert_eq!(host.waiting_for_container(), vec![b.session_id]);
}

#[test]
fn waking_a_running_container_starts_nothing() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("one", None)).unwrap();
    host.route(&chat("two", None)).unwrap();
    assert!(host.wake(&routed.session_id).unwrap());
    assert_eq!(world.runtime.starts().len(), 1);
}

#[test]
fn a_failed_start_keeps_the_message_and_the_sweep_wakes_again() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    world.runtime.0.borrow_mut().start_error = Some("no such image".into());
    let routed = host.route(&chat("still here?", None)).unwrap();
    let session = host.session(&routed.session_id).unwrap();
    assert_eq!(
        inbound_row(&world.env, &session.paths, &routed.message_id).status,
        "pending"
    );
    assert_eq!(
        host.container_state(&routed.session_id),
        ContainerState::Stopped
    );
    assert_eq!(session.container_status, "stopped");

    world.runtime.0.borrow_mut().start_error = None;
    assert!(host.sweep_session(&routed.session_id).unwrap().woke);
    assert_eq!(
        host.container_state(&routed.session_id),
        ContainerState::Running
    );
    assert_eq!(status_of(&mut host, &routed.session_id), "running");
}

#[test]
fn a_container_that_exited_is_recorded_stopped() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("hi", None)).unwrap();
    let agent = Agent::of(&world.env, &host.session(&routed.session_id).unwrap());
    agent.ack(&routed.message_id, "completed");
    world.runtime.exit(&routed.session_id);
    let report = host.sweep_session(&routed.session_id).unwrap();
    assert!(!report.woke, "nothing due: no reason to start one");
    assert_eq!(status_of(&mut host, &routed.session_id), "stopped");
}
