//! The design variants on a real Linux bind mount: the host and its agent-runners in Docker
//! containers configured with one named design each (the host takes it from its settings and
//! hands it to every container it starts as `CLAWSIM_DESIGN`), a short chat and a `docker kill`
//! mid-turn, judged by the same oracle as every run.
//!
//! Under the simulator these designs break properties only where the mount or the storage does
//! something a bind mount on one Linux host does not: per-side `-shm` and locks over a VM mount
//! (`virtiofs`), or a power cut (`power-loss`). Here both sides share one kernel's page cache,
//! locks and shared memory, and a killed container is a process crash, not a power loss, so
//! every property must hold under each design — which separates "unsafe across a VM mount or a
//! power cut" from "unsafe everywhere" in docs/designs.md. (§9.5 single writer is not
//! observed in this world; under the single layout it is not judged by design either.)
//!
//! Each design is one test, so the suite may run them side by side.

use clawsim_core::config::Design;
use clawsim_core::model::status;
use clawsim_e2e::world::{tune_for_tests, World};
use clawsim_oracle::Property;
use std::time::Duration;

// Upper bounds only: a passing test never waits them out.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One message answered, a second whose container is killed mid-turn answered by the next, a
/// third answered after it; every property judged by the oracle.
fn chat_and_kill_under(design_name: &str) {
    let design = Design::by_name(design_name).unwrap();
    let name = format!("design-{design_name}");
    let Some(mut world) = World::start_with(&name, |config| {
        tune_for_tests(config);
        config.design = design;
    }) else {
        return;
    };
    let first = world.send("hello");
    world.wait_answer(&first, ANSWER_TIMEOUT);
    let session_id = world.session_id();
    world.wait_no_query_running(SETTLE_TIMEOUT);
    let killed = world.send("@mock active; think 3s");
    world.wait_claimed(&killed, ANSWER_TIMEOUT);
    // Inside the think, not inside a write.
    std::thread::sleep(Duration::from_millis(800));
    world.kill_container(&session_id);
    world.wait_answer(&killed, ANSWER_TIMEOUT);
    let last = world.send("and after the kill");
    world.wait_answer(&last, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    for property in [
        Property::NoLoss,
        Property::NoDuplicate,
        Property::OneAnswer,
        Property::Seq,
        Property::Durability,
    ] {
        assert!(
            judged.verdict.judged(property),
            "{name}: {property} not judged"
        );
    }
    for marker in [&first, &killed, &last] {
        assert_eq!(world.answers_to(marker), 1, "{name}: answers to {marker}");
    }
    let rows = &judged.sessions[0].snapshot.inbound;
    assert!(
        rows.iter().all(|row| row.status == status::COMPLETED),
        "{name}: {rows:?}"
    );
}

#[test]
fn v2_holds_on_a_bind_mount() {
    chat_and_kill_under("v2");
}

#[test]
fn split_wal_holds_on_a_bind_mount() {
    chat_and_kill_under("split-wal");
}

#[test]
fn full_sync_holds_on_a_bind_mount() {
    chat_and_kill_under("full-sync");
}

#[test]
fn normal_sync_holds_on_a_bind_mount() {
    chat_and_kill_under("normal-sync");
}

#[test]
fn db_heartbeat_holds_on_a_bind_mount() {
    chat_and_kill_under("db-heartbeat");
}

#[test]
fn single_delete_holds_on_a_bind_mount() {
    chat_and_kill_under("single-delete");
}

#[test]
fn v1_single_wal_holds_on_a_bind_mount() {
    chat_and_kill_under("v1-single-wal");
}

/// Every named design has its test above.
#[test]
fn every_named_design_runs_here() {
    let source = include_str!("designs.rs");
    for (design, _) in Design::NAMED {
        let test = format!(
            "fn {}_holds_on_a_bind_mount()",
            design.name.replace('-', "_")
        );
        assert!(source.contains(&test), "no test for design {}", design.name);
    }
}
