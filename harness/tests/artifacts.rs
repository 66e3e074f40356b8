//! A failing seed leaves a complete artifact, and its case replays exactly; shrinking makes a
//! failure small within its budget.
//!
//! The core holds its properties, so a failure is made here: the verdict of a real run is given
//! a violation (a doctored verdict, the test double), and the artifact is written from it. The
//! shrinker is driven by a stand-in predicate ("fails while fault k and message j remain") so
//! its reduction is checked without needing a broken core.

use clawsim::artifact::save_failure;
use clawsim::case::{Case, WorkloadKind};
use clawsim::properties::{Property, Violation};
use clawsim::replay_command::load_case;
use clawsim::seeds::{run_case, run_seed};
use clawsim::shrink::shrink_by;
use clawsim_sim::fs::MountProfile;
use std::time::Duration;

#[test]
fn a_failing_seed_leaves_an_artifact_whose_case_replays_its_trace_exactly() {
    let mut result = run_seed(9, MountProfile::PowerLoss, WorkloadKind::Swarm, false);
    result.verdict.violations.push(Violation {
        property: Property::NoDuplicate,
        detail: "doctored: out-1 reached the channel twice".into(),
        at_ms: None,
        session: None,
    });
    let root = tempfile::tempdir().unwrap();
    let saved = save_failure(root.path(), &result, Duration::from_secs(2)).unwrap();
    for file in [
        "README.txt",
        "case.json",
        "shrunk.json",
        "violations.json",
        "trace.jsonl",
        "shrunk-trace.jsonl",
        "timeline.html",
    ] {
        assert!(saved.dir.join(file).exists(), "{file} missing");
    }
    let readme = std::fs::read_to_string(saved.dir.join("README.txt")).unwrap();
    assert!(readme.contains("§9.2 no-duplicate"), "{readme}");
    assert!(readme.contains("replay"), "{readme}");
    assert!(readme.contains("build: clawsim"), "{readme}");
    // The saved case is the seed's case, and replaying the folder gives the saved trace.
    let case = load_case(
        saved.dir.join("case.json").to_str().unwrap(),
        None,
        WorkloadKind::Swarm,
    )
    .unwrap();
    assert_eq!(
        case,
        Case::for_seed(9, MountProfile::PowerLoss, WorkloadKind::Swarm)
    );
    let shrunk = load_case(saved.dir.to_str().unwrap(), None, WorkloadKind::Swarm).unwrap();
    let (outcome, _) = run_case(&shrunk).unwrap();
    let saved_trace = std::fs::read_to_string(saved.dir.join("shrunk-trace.jsonl")).unwrap();
    assert_eq!(outcome.trace.to_json_lines(), saved_trace);
}

#[test]
fn shrinking_keeps_only_what_the_failure_needs() {
    let case = (0..50)
        .map(|seed| Case::default_scenario(seed, MountProfile::Bind))
        .find(|c| c.faults.faults.len() >= 3 && c.workload.messages.len() >= 6)
        .expect("a seed with several faults and messages");
    let fault = case.faults.faults[1].clone();
    let message = case.workload.messages[4].text.clone();
    let shrunk = shrink_by(&case, Duration::from_secs(60), |candidate| {
        candidate.faults.faults.contains(&fault)
            && candidate
                .workload
                .messages
                .iter()
                .any(|m| m.text == message)
    });
    assert_eq!(shrunk.case.faults.faults, vec![fault]);
    assert_eq!(shrunk.case.workload.messages.len(), 1);
    assert_eq!(shrunk.case.workload.messages[0].text, message);
    assert_eq!(shrunk.case.workload.chats.len(), 1);
    assert!(!shrunk.timed_out);
}

#[test]
fn shrinking_stops_at_its_budget_with_a_case_that_still_fails() {
    let case = Case::default_scenario(4, MountProfile::Bind);
    let shrunk = shrink_by(&case, Duration::ZERO, |_| true);
    assert!(shrunk.timed_out);
    assert_eq!(shrunk.attempts, 0);
    assert_eq!(shrunk.case, case);
}
