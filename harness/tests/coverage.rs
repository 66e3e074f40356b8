//! The coverage catalog is honest: the default run reaches what it claims to reach, and the
//! situations it does not reach yet are named, not hidden.
//!
//! Method: run the first 900 seeds of the default (swarm) workload over all three mount
//! profiles, as `clawsim run` assigns them, and collect which catalog situations each reached.
//! Every situation must be reached by some seed, so a workload or fault change that loses one
//! fails here.

use clawsim::case::WorkloadKind;
use clawsim::coverage::CATALOG;
use clawsim::seeds::run_seed;
use clawsim_sim::fs::MountProfile;
use std::collections::BTreeSet;

const SEEDS: u64 = 900;

#[test]
fn the_default_run_reaches_every_situation() {
    let mut reached = BTreeSet::new();
    for seed in 0..SEEDS {
        let profile = MountProfile::ALL[seed as usize % MountProfile::ALL.len()];
        let result = run_seed(seed, profile, WorkloadKind::Swarm, false);
        reached.extend(result.reached);
    }
    let never: Vec<&str> = CATALOG
        .iter()
        .map(|situation| situation.name)
        .filter(|name| !reached.contains(*name))
        .collect();
    assert!(
        never.is_empty(),
        "never reached in the first {SEEDS} seeds: {never:?}"
    );
}
