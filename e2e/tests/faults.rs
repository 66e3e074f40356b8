//! Real container faults, injected from outside through the engine:
//!
//! - `docker kill` mid-turn: the agent dies holding a claim. The host sees the container
//!   stopped with a claim, judges it dead at once (one try, so a message whose turn kills its
//!   agent cannot loop forever), and a new container clears the dead claim and processes the
//!   message again: answered exactly once.
//! - `docker pause` mid-turn: the agent is alive but silent, its heartbeat stops. After
//!   `stale_after_ms` the host presumes it dead, counts a try, backs off, kills the frozen
//!   container and a new one answers: exactly once, with `tries = 1`. The turn thinks long
//!   (15 s) so the pause lands inside it even when the test is starved for seconds between
//!   seeing the claim and pausing; a pause after the answer would leave nothing to retry.
//!
//! Every think here is `active` (an event each second): a query quiet for the 2 s idle timeout
//! is ended, and one still busy 2 s after that is aborted with no answer, so a silent think
//! near 4 s races the abort, and a slow machine decides the race.
//!
//! - `docker pause` of an idle container, then a message: the agent never claims it, so no
//!   claim ever goes stale. The host must still find the hung container (its heartbeat stopped
//!   while due work waits), kill it and start one that answers.
//!
//! Each test ends with the oracle's verdict on the run (§9.1 no loss and §9.3a one answer are
//! the point, and must have been judged; §9.8 judges the counted try against `max_tries` and
//! its backoff).

use clawsim_core::model::status;
use clawsim_e2e::world::World;
use clawsim_oracle::Property;
use std::time::Duration;

// Upper bounds only: a passing test never waits them out.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_container_killed_mid_turn_is_replaced_and_the_message_answered_once() {
    let Some(mut world) = World::start("fault-kill") else {
        return;
    };
    let marker = world.send("@mock active; think 4s");
    let session_id = world.session_id();
    world.wait_claimed(&marker, ANSWER_TIMEOUT);
    // Inside the think, not inside a write (see recovery.rs for a kill inside one).
    std::thread::sleep(Duration::from_millis(1_000));
    world.kill_container(&session_id);
    world.wait_answer(&marker, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    for property in [Property::NoLoss, Property::OneAnswer, Property::Retries] {
        assert!(judged.verdict.judged(property), "{property} not judged");
    }
    assert_eq!(world.answers_to(&marker), 1);
    let row = &judged.sessions[0].snapshot.inbound[0];
    assert_eq!(row.status, status::COMPLETED);
    assert!(
        row.tries <= 1,
        "a kill costs the claim at most one try: {}",
        row.tries
    );
}

#[test]
fn a_paused_container_is_presumed_dead_killed_and_the_message_retried_once() {
    let Some(mut world) = World::start("fault-pause") else {
        return;
    };
    let marker = world.send("@mock active; think 15s");
    let session_id = world.session_id();
    world.wait_claimed(&marker, ANSWER_TIMEOUT);
    world.pause_container(&session_id);
    // stale_after 10 s, then a backoff of 1 s, then a new container that thinks 15 s again.
    world.wait_answer(&marker, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    for property in [Property::NoLoss, Property::OneAnswer, Property::Retries] {
        assert!(judged.verdict.judged(property), "{property} not judged");
    }
    assert_eq!(world.answers_to(&marker), 1);
    let row = &judged.sessions[0].snapshot.inbound[0];
    assert_eq!(row.status, status::COMPLETED);
    assert_eq!(row.tries, 1, "one stale claim reset");
    assert!(row.process_after.is_some(), "the retry was backed off");
}

#[test]
fn a_container_hung_before_claiming_is_replaced_and_the_message_answered() {
    let Some(mut world) = World::start("fault-pause-idle") else {
        return;
    };
    let hello = world.send("hello");
    world.wait_answer(&hello, ANSWER_TIMEOUT);
    world.wait_all_finished(ANSWER_TIMEOUT);
    let session_id = world.session_id();
    world.pause_container(&session_id);
    let marker = world.send("are you there?");
    world.wait_answer(&marker, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    assert!(judged.verdict.judged(Property::NoLoss));
}
