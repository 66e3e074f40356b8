//! Determinism: a world is a pure function of its configuration.
//!
//! The harness replays a failing seed and expects the same run, byte for byte; a world that
//! read the wall clock, iterated a hash map, shared SQLite state with another world in the same
//! process or drew from ambient randomness would replay something else and the failure would
//! vanish. Method: run the default scenario (faults on) for several seeds under every mount
//! profile twice and compare trace hashes and ledgers; run worlds on parallel threads and
//! compare with the same worlds run one after another; replay a choice tape.

use clawsim_sim::fs::MountProfile;
use clawsim_sim::trace::hash_json_lines;
use clawsim_sim::world::{run_world, RunOutcome, WorldConfig};

const PROFILES: [MountProfile; 3] = [
    MountProfile::Bind,
    MountProfile::Virtiofs,
    MountProfile::PowerLoss,
];

const SEEDS: [u64; 4] = [1, 2, 3, 0xC1A5_5EED];

fn run(seed: u64, profile: MountProfile) -> RunOutcome {
    run_world(WorldConfig::default_scenario(seed, profile))
}

#[test]
fn same_seed_and_profile_give_the_same_trace_and_ledger() {
    for profile in PROFILES {
        for seed in SEEDS {
            let first = run(seed, profile);
            let second = run(seed, profile);
            assert!(
                first.errors.is_empty(),
                "seed {seed} {profile:?}: {:?}",
                first.errors
            );
            assert_eq!(
                first.trace_hash, second.trace_hash,
                "seed {seed} {profile:?} diverged"
            );
            assert_eq!(first.ledger, second.ledger, "seed {seed} {profile:?}");
            assert_eq!(first.counters, second.counters, "seed {seed} {profile:?}");
        }
    }
}

#[test]
fn trace_hash_is_the_hash_of_the_trace_json_lines() {
    let outcome = run(7, MountProfile::Bind);
    assert!(outcome.steps > 0);
    assert_eq!(outcome.steps as usize, outcome.trace.events().len());
    assert_eq!(
        outcome.trace_hash,
        hash_json_lines(&outcome.trace.to_json_lines())
    );
}

#[test]
fn different_seeds_give_different_runs() {
    let hashes: std::collections::BTreeSet<u64> = SEEDS
        .iter()
        .map(|&seed| run(seed, MountProfile::Bind).trace_hash)
        .collect();
    assert_eq!(hashes.len(), SEEDS.len());
}

#[test]
fn worlds_on_parallel_threads_match_worlds_run_one_after_another() {
    let cases: Vec<(u64, MountProfile)> = SEEDS
        .iter()
        .flat_map(|&seed| PROFILES.map(|profile| (seed, profile)))
        .collect();
    let sequential: Vec<u64> = cases.iter().map(|&(s, p)| run(s, p).trace_hash).collect();
    let parallel: Vec<u64> = std::thread::scope(|scope| {
        let halves = cases.chunks(cases.len().div_ceil(2));
        let handles: Vec<_> = halves
            .map(|half| {
                scope.spawn(move || {
                    half.iter()
                        .map(|&(s, p)| run(s, p).trace_hash)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("world thread panicked"))
            .collect()
    });
    assert_eq!(sequential, parallel);
}

#[test]
fn a_choice_tape_replays_and_changing_it_changes_the_schedule() {
    let with_tape = |tape: Vec<u64>| {
        let mut config = WorldConfig::default_scenario(5, MountProfile::Bind);
        config.tape = Some(tape);
        run_world(config)
    };
    let tape: Vec<u64> = (0..500).map(|i| i * 7 + 3).collect();
    let first = with_tape(tape.clone());
    let again = with_tape(tape);
    let zeros = with_tape(Vec::new());
    assert_eq!(first.trace_hash, again.trace_hash);
    assert_ne!(first.trace_hash, zeros.trace_hash);
}

#[test]
fn a_saved_config_replays_the_same_run() {
    let config = WorldConfig::default_scenario(9, MountProfile::Virtiofs);
    let saved = serde_json::to_string(&config).unwrap();
    assert!(saved.contains(r#""profile":"virtiofs""#));
    let restored: WorldConfig = serde_json::from_str(&saved).unwrap();
    assert_eq!(run_world(config).trace_hash, run_world(restored).trace_hash);
}
