//! Faults, one at a time, at chosen moments: what the world does to the core, and that the core
//! comes through.
//!
//! Each test places one fault where it hurts (a kill in the middle of a turn, a host crash while
//! a send is in flight, a hang longer than the stale limit, a skewed container clock during a
//! long turn) in a one-chat world, then reads the trace and the ledger: the fault did what it
//! models, and the message still ends answered once and delivered. A failure here is either the
//! world modelling the fault wrongly or a finding about the core.

use clawsim_oracle::event::Event;
use clawsim_sim::faults::{Fault, FaultPlan, FaultSide, PlannedFault};
use clawsim_sim::fs::MountProfile;
use clawsim_sim::ledger::SendOutcome;
use clawsim_sim::workload::{ChatSpec, UserMessage, Workload};
use clawsim_sim::world::{run_world, RunOutcome, WorldConfig};

/// One chat, one message at 5 s whose text is `text`.
fn one_message(text: &str) -> Workload {
    Workload {
        chats: vec![ChatSpec {
            agent_group_id: "ag0".into(),
            messaging_group_id: "mg0".into(),
            platform_id: "chat0".into(),
            per_thread: false,
        }],
        messages: vec![UserMessage {
            at_ms: 5_000,
            chat: 0,
            thread_id: None,
            sender: "u1".into(),
            sender_id: "id1".into(),
            text: text.into(),
            form: Default::default(),
        }],
        answer_delay_ms_max: 0,
        ..Workload::default()
    }
}

fn run(seed: u64, text: &str, faults: Vec<PlannedFault>, active_ms: i64) -> RunOutcome {
    let config = WorldConfig::new(
        seed,
        MountProfile::Bind,
        one_message(text),
        FaultPlan { faults },
        active_ms,
    );
    run_world(config)
}

fn at(at_ms: i64, fault: Fault) -> PlannedFault {
    PlannedFault { at_ms, fault }
}

/// Recorded events for which `matches` holds.
fn steps_with(outcome: &RunOutcome, matches: impl Fn(&Event) -> bool) -> usize {
    outcome
        .trace
        .events()
        .iter()
        .filter(|e| matches(&e.event))
        .count()
}

fn presumed_dead(event: &Event) -> bool {
    matches!(event, Event::Swept { facts } if facts.presumed_dead)
}

/// The only inbound row of the only session.
fn the_message(outcome: &RunOutcome) -> clawsim_core::model::InboundRow {
    let sessions = &outcome.ledger.final_state.sessions;
    assert_eq!(sessions.len(), 1);
    let snapshot = sessions[0].snapshot.as_ref().expect("readable DBs");
    assert_eq!(snapshot.inbound.len(), 1);
    snapshot.inbound[0].clone()
}

/// Replies the platform received that quote `token`.
fn replies_quoting(outcome: &RunOutcome, token: &str) -> Vec<u64> {
    outcome
        .ledger
        .received()
        .filter(|r| r.content["text"].as_str().unwrap_or("").contains(token))
        .map(|r| r.host_incarnation)
        .collect()
}

#[test]
fn a_container_killed_mid_turn_is_replaced_and_the_message_answered_once() {
    let outcome = run(
        1,
        "m0 hello @mock think 30s",
        vec![at(20_000, Fault::ContainerKilled { pick: 0 })],
        5 * 60_000,
    );
    assert_eq!(outcome.fault_counts.get("container-killed"), Some(&1));
    assert!(steps_with(&outcome, |e| *e == Event::ContainerRunning) >= 2);
    let message = the_message(&outcome);
    assert_eq!(message.status, "completed");
    assert_eq!(replies_quoting(&outcome, "m0 hello").len(), 1);
}

#[test]
fn a_hung_container_is_presumed_dead_killed_and_its_message_retried() {
    let outcome = run(
        2,
        "m0 hello @mock think 5s",
        // The container is up by 8 s (start latency at most 3 s); the turn would answer at ~13 s.
        vec![at(
            9_000,
            Fault::ContainerHung {
                pick: 0,
                duration_ms: 20 * 60_000,
            },
        )],
        25 * 60_000,
    );
    assert!(steps_with(&outcome, presumed_dead) >= 1);
    assert!(steps_with(&outcome, |e| *e == Event::ContainerKilled) >= 1);
    let message = the_message(&outcome);
    assert_eq!(message.status, "completed");
    assert_eq!(message.tries, 1);
    assert_eq!(replies_quoting(&outcome, "m0 hello").len(), 1);
}

#[test]
fn a_send_in_flight_when_the_host_crashes_reaches_the_platform_at_most_once_per_host() {
    // The reply's send takes 20 s more than usual; the host dies 10 s into it and is back a
    // second later. Whether the platform got the first send is the seed's choice; the new host
    // sends again (nothing recorded it as delivered), which is the one duplicate PROTOCOL §7
    // allows.
    let mut counts = std::collections::BTreeSet::new();
    for seed in 0..8 {
        let outcome = run(
            seed,
            "m0 hello",
            vec![
                at(
                    1_000,
                    Fault::ChannelSlow {
                        extra_ms: 20_000,
                        sends: 1,
                    },
                ),
                at(20_000, Fault::HostCrash { down_ms: 1_000 }),
            ],
            5 * 60_000,
        );
        assert_eq!(
            outcome.fault_counts.get("host-crash"),
            Some(&1),
            "seed {seed}"
        );
        let incarnations = replies_quoting(&outcome, "m0 hello");
        let distinct: std::collections::BTreeSet<u64> = incarnations.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            incarnations.len(),
            "seed {seed}: {incarnations:?}"
        );
        assert!(
            (1..=2).contains(&incarnations.len()),
            "seed {seed}: {incarnations:?}"
        );
        counts.insert(incarnations.len());
        assert_eq!(the_message(&outcome).status, "completed");
    }
    assert_eq!(counts.len(), 2, "both outcomes of the in-flight send occur");
}

#[test]
fn a_refused_send_is_recorded_undeliverable_not_delivered() {
    let outcome = run(
        3,
        "m0 hello",
        vec![at(1_000, Fault::ChannelPermanent { sends: 1 })],
        5 * 60_000,
    );
    let sends: Vec<_> = outcome.ledger.channel.iter().map(|s| s.outcome).collect();
    assert_eq!(sends, vec![SendOutcome::Permanent]);
    let snapshot = outcome.ledger.final_state.sessions[0]
        .snapshot
        .clone()
        .unwrap();
    assert_eq!(snapshot.delivered.len(), 1);
    assert_eq!(snapshot.delivered[0].status, "undeliverable");
    assert!(snapshot.delivered[0].reason.is_some());
}

#[test]
fn a_skewed_container_clock_does_not_make_a_long_turn_look_dead() {
    // The turn thinks for 12 minutes (emitting activity, so the runner keeps it), longer than
    // the 10-minute stale limit; the container's
    // clock is half an hour behind and drifting. The heartbeat keeps changing, so the host,
    // judging by its own clock when it last saw a change, must leave the agent alone.
    for profile in [MountProfile::Bind, MountProfile::Virtiofs] {
        let config = WorldConfig::new(
            4,
            profile,
            one_message("m0 hello @mock active; think 720s"),
            FaultPlan {
                faults: vec![at(
                    1_000,
                    Fault::ClockSkew {
                        side: FaultSide::Container,
                        offset_ms: -30 * 60_000,
                        drift_ppm: 300,
                    },
                )],
            },
            20 * 60_000,
        );
        let outcome = run_world(config);
        assert_eq!(steps_with(&outcome, presumed_dead), 0, "{profile}");
        let message = the_message(&outcome);
        assert_eq!(
            (message.status.as_str(), message.tries),
            ("completed", 0),
            "{profile}"
        );
        assert_eq!(replies_quoting(&outcome, "m0 hello").len(), 1, "{profile}");
    }
}

#[test]
fn a_duplicate_wake_steps_the_runner_once_more_without_doubling_its_schedule() {
    let plain = run(5, "m0 hello @mock think 20s", vec![], 3 * 60_000);
    let doubled = run(
        5,
        "m0 hello @mock think 20s",
        vec![at(10_000, Fault::DuplicateWake)],
        3 * 60_000,
    );
    let duplicate = |e: &Event| {
        matches!(
            e,
            Event::Polled {
                duplicate: true,
                ..
            } | Event::PollFailed {
                duplicate: true,
                ..
            }
        )
    };
    assert_eq!(steps_with(&doubled, duplicate), 1);
    let polls = |o: &RunOutcome| {
        steps_with(o, |e| {
            matches!(e, Event::Polled { .. } | Event::PollFailed { .. })
        })
    };
    // One extra poll, give or take the schedule shifting by the extra step's timing.
    assert!(polls(&doubled).abs_diff(polls(&plain)) <= 2);
    assert_eq!(replies_quoting(&doubled, "m0 hello").len(), 1);
}

#[test]
fn a_machine_crash_restarts_everything_and_every_db_checks_sound() {
    let outcome = run(
        6,
        "m0 hello @mock think 30s",
        vec![at(20_000, Fault::MachineCrash { down_ms: 10_000 })],
        5 * 60_000,
    );
    assert_eq!(outcome.fault_counts.get("machine-crash"), Some(&1));
    assert!(!outcome.ledger.crash_checks.is_empty());
    assert!(outcome.ledger.crash_checks.iter().all(|c| c.is_ok()));
    assert!(outcome
        .ledger
        .final_state
        .integrity
        .iter()
        .all(|c| c.is_ok()));
    assert_eq!(the_message(&outcome).status, "completed");
    assert_eq!(replies_quoting(&outcome, "m0 hello").len(), 1);
}

#[test]
fn a_power_cut_at_any_disk_operation_leaves_every_db_sound_and_the_message_answered() {
    // The cut falls on the k-th mutating disk operation after 4 s: across k it lands inside
    // session creation, the router's insert, the runner's claim and reply commits, the host's
    // delivered record.
    for after_ops in (1..60).step_by(4) {
        let outcome = run(
            7,
            "m0 hello",
            vec![at(
                4_000,
                Fault::PowerCut {
                    after_ops,
                    down_ms: 5_000,
                    counted_on: None,
                },
            )],
            5 * 60_000,
        );
        assert!(
            outcome.errors.is_empty(),
            "k={after_ops}: {:?}",
            outcome.errors
        );
        assert_eq!(
            outcome.fault_counts.get("power-cut"),
            Some(&1),
            "k={after_ops}"
        );
        let checks = outcome.ledger.crash_checks.iter();
        let finals = outcome.ledger.final_state.integrity.iter();
        for check in checks.chain(finals) {
            assert!(check.is_ok(), "k={after_ops}: {check:?}");
        }
        assert!(
            !outcome
                .ledger
                .final_state
                .maybe_durable
                .iter()
                .any(|m| m.is_lost_commit()),
            "k={after_ops}: {:?}",
            outcome.ledger.final_state.maybe_durable
        );
        assert_eq!(the_message(&outcome).status, "completed", "k={after_ops}");
        let incarnations = replies_quoting(&outcome, "m0 hello");
        let distinct: std::collections::BTreeSet<u64> = incarnations.iter().copied().collect();
        assert!(!incarnations.is_empty(), "k={after_ops}: never delivered");
        assert_eq!(
            distinct.len(),
            incarnations.len(),
            "k={after_ops}: {incarnations:?}"
        );
    }
}
