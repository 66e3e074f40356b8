//! Cases the harness found, shrunk, and kept: each replays the unmodified core in the world and
//! checks the property it once broke.
//!
//! `record-fails-after-send` (seed 292, virtiofs): the channel accepted a reply, then writing its
//! `delivered` row failed (the host's disk was full), so the next pass sent it again — a
//! duplicate with no host crash to excuse it (§9.2). The host now remembers a send it could not
//! record and records it at the next pass instead of resending.

use clawsim_sim::faults::FaultPlan;
use clawsim_sim::workload::Workload;
use clawsim_sim::world::{run_world, WorldConfig};
use std::collections::BTreeMap;

fn case(json: &str) -> WorldConfig {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let workload: Workload = serde_json::from_value(value["workload"].clone()).unwrap();
    let faults: FaultPlan = serde_json::from_value(value["faults"].clone()).unwrap();
    let profile = value["profile"].as_str().unwrap().parse().unwrap();
    let seed = value["seed"].as_u64().unwrap();
    let active_ms = value["active_ms"].as_i64().unwrap();
    WorldConfig::new(seed, profile, workload, faults, active_ms)
}

#[test]
fn a_send_whose_record_failed_is_recorded_not_sent_again() {
    let config = case(include_str!(
        "../../fixtures/regressions/record-fails-after-send.json"
    ));
    let outcome = run_world(config);
    let mut sends: BTreeMap<&str, usize> = BTreeMap::new();
    for send in outcome.ledger.received() {
        *sends.entry(send.message_out_id.as_str()).or_default() += 1;
    }
    assert!(!sends.is_empty(), "the case delivers something");
    let twice: Vec<_> = sends.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}
