//! The named scenarios of `fixtures/scenarios/` meet their expectations, and their traces are
//! pinned as golden snapshots.
//!
//! A scenario is a plain data file (TOML or JSON): a case and what its run must show. Each runs
//! here exactly as `clawsim scenarios` runs it; its trace (hash, step count, and every step but
//! idle polls) is compared with the snapshot in `tests/snapshots/`, so any change to what the
//! core or the world does in a named situation shows up as a reviewable diff (`cargo insta
//! review`, or `INSTA_UPDATE=always` to accept).

use clawsim::scenarios::{files, golden_trace, run, SCENARIO_DIR};
use clawsim_oracle::event::Event;
use std::path::PathBuf;

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(SCENARIO_DIR)
}

#[test]
fn every_scenario_meets_its_expectation_and_its_trace_is_pinned() {
    let files = files(&scenario_dir()).unwrap();
    assert!(files.len() >= 5, "{files:?}");
    let mut problems = Vec::new();
    for file in files {
        let run = run(&file).unwrap();
        if !run.problems.is_empty() {
            problems.push(format!("{}: {:#?}", run.scenario.name, run.problems));
        }
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, golden_trace(&run.outcome));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_host_crash_scenario_really_sends_twice_across_the_crash() {
    let run = run(&scenario_dir().join("host-crash-mid-send.toml")).unwrap();
    let answer = run
        .outcome
        .ledger
        .received()
        .next()
        .expect("the answer reached the platform")
        .message_out_id
        .clone();
    let receipts = run
        .outcome
        .ledger
        .received()
        .filter(|s| s.message_out_id == answer)
        .count();
    let orphaned = run.outcome.trace.events().iter().any(|e| {
        matches!(
            e.event,
            Event::SendFinished {
                host_alive: false,
                ..
            }
        )
    });
    assert!(orphaned, "the crash must hit the send in flight");
    assert!(receipts <= 2, "{receipts}");
    assert!(run.problems.is_empty(), "{:?}", run.problems);
}

#[test]
fn the_poison_message_fails_and_the_next_one_is_answered() {
    let run = run(&scenario_dir().join("poison-message.toml")).unwrap();
    let snapshot = run.outcome.ledger.final_state.sessions[0]
        .snapshot
        .clone()
        .unwrap();
    let poison = run.outcome.ledger.sent[0].message_id.clone().unwrap();
    assert_eq!(snapshot.outcome_of(&poison), Some("failed"));
    let answered = run.outcome.ledger.received().any(|s| {
        s.content["text"]
            .as_str()
            .is_some_and(|t| t.contains("m1 hello"))
    });
    assert!(answered, "m1 was never answered");
}
