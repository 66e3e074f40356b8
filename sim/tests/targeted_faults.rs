//! Targeted faults strike where they are aimed, and the protocol holds there.
//!
//! Random faults rarely land on the narrow places where a message goes wrong: a row the
//! platform refuses for good while its neighbours pass, an outbox folder the host cannot
//! remove, a heartbeat that cannot be touched, a provider silent past the idle timeout, and a
//! crash exactly at a step boundary — after the platform accepted a send and before its
//! record, after an answer and before its ack, in the commit of a system action, after a new
//! session's central row and before its folder. Each test aims one such fault at a one- or
//! two-message world and reads the record: the fault struck (a `FaultFired` event of its kind,
//! in the step it aimed at), the oracle's §9 properties still hold, and the same seed gives
//! the same trace. A failing property here is a finding about the core.

use clawsim_oracle::event::{Actor, Event};
use clawsim_oracle::properties::check;
use clawsim_sim::faults::{Fault, FaultPlan, PlannedFault};
use clawsim_sim::fs::MountProfile;
use clawsim_sim::ledger::SendOutcome;
use clawsim_sim::workload::{ChatSpec, UserMessage, Workload};
use clawsim_sim::world::{run_world, start_ms, RunOutcome, WorldConfig};

/// One chat; one message per `(at_ms, text)`.
fn messages(texts: &[(i64, &str)]) -> Workload {
    Workload {
        chats: vec![ChatSpec {
            agent_group_id: "ag0".into(),
            messaging_group_id: "mg0".into(),
            platform_id: "chat0".into(),
            per_thread: false,
        }],
        messages: texts
            .iter()
            .map(|(at_ms, text)| UserMessage {
                at_ms: *at_ms,
                chat: 0,
                thread_id: None,
                sender: "u1".into(),
                sender_id: "id1".into(),
                text: text.to_string(),
                form: Default::default(),
            })
            .collect(),
        answer_delay_ms_max: 0,
        ..Workload::default()
    }
}

fn config(seed: u64, workload: Workload, faults: Vec<(i64, Fault)>) -> WorldConfig {
    let faults = faults
        .into_iter()
        .map(|(at_ms, fault)| PlannedFault { at_ms, fault })
        .collect();
    WorldConfig::new(
        seed,
        MountProfile::Bind,
        workload,
        FaultPlan { faults },
        5 * 60_000,
    )
}

/// Runs the world twice: the traces must be the same, and every property must hold.
fn run_checked(config: WorldConfig) -> RunOutcome {
    let outcome = run_world(config.clone());
    let again = run_world(config);
    assert_eq!(
        outcome.trace_hash, again.trace_hash,
        "same seed, same trace"
    );
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let verdict = check(&outcome.record());
    assert!(verdict.held(), "{}", verdict.summary());
    outcome
}

/// The actor of the step each `FaultFired` of `kind` names as the one it struck in.
fn struck_in(outcome: &RunOutcome, kind: &str) -> Vec<Actor> {
    let events = outcome.trace.events();
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::FaultFired { kind: k, struck_in } if k == kind => *struck_in,
            _ => None,
        })
        .map(|step| events[step as usize].actor)
        .collect()
}

fn count(outcome: &RunOutcome, kind: &str) -> u64 {
    outcome.fault_counts.get(kind).copied().unwrap_or(0)
}

/// Replies the platform received that quote `token`, by outcome.
fn sends_quoting(outcome: &RunOutcome, token: &str) -> Vec<SendOutcome> {
    outcome
        .ledger
        .channel
        .iter()
        .filter(|s| s.content["text"].as_str().unwrap_or("").contains(token))
        .map(|s| s.outcome)
        .collect()
}

#[test]
fn one_row_is_refused_for_good_while_the_others_pass() {
    let outcome = run_checked(config(
        11,
        messages(&[
            (5_000, "m0 hello"),
            (60_000, "m1 there"),
            (120_000, "m2 again"),
        ]),
        vec![(1_000, Fault::ChannelRefusesRow { skip: 1 })],
    ));
    assert_eq!(count(&outcome, "channel-refuses-row"), 1);
    assert_eq!(sends_quoting(&outcome, "m0 hello"), [SendOutcome::Received]);
    assert_eq!(
        sends_quoting(&outcome, "m1 there"),
        [SendOutcome::Permanent]
    );
    assert_eq!(sends_quoting(&outcome, "m2 again"), [SendOutcome::Received]);
    assert!(struck_in(&outcome, "channel-refuses-row")
        .iter()
        .all(|a| matches!(a, Actor::DeliveryFast | Actor::DeliverySlow)));
}

#[test]
fn an_outbox_folder_that_cannot_be_removed_leaves_the_host_running_and_the_file_sent_once() {
    let text =
        r#"m0 file @mock tool send_file {"path":".heartbeat","filename":"a.txt","text":"here"}"#;
    let outcome = run_checked(config(
        12,
        messages(&[(5_000, text), (90_000, "m1 after")]),
        vec![(1_000, Fault::OutboxRemovalFails { removals: 1 })],
    ));
    assert_eq!(count(&outcome, "outbox-removal-fails"), 1);
    assert!(struck_in(&outcome, "outbox-removal-fails")
        .iter()
        .all(|a| matches!(
            a,
            Actor::Channel | Actor::DeliveryFast | Actor::DeliverySlow
        )));
    let files: Vec<_> = outcome
        .ledger
        .received()
        .filter(|s| !s.files.is_empty())
        .collect();
    assert_eq!(files.len(), 1, "the file reached the platform once");
    assert_eq!(sends_quoting(&outcome, "m1 after").len(), 1);
    assert!(outcome
        .trace
        .events()
        .iter()
        .all(|e| !matches!(e.event, Event::HostStarted { incarnation } if incarnation > 1)));
}

#[test]
fn heartbeat_touches_that_fail_for_a_while_do_not_lose_the_message() {
    let outcome = run_checked(config(
        13,
        messages(&[(5_000, "m0 hello @mock think 30s")]),
        vec![(6_000, Fault::HeartbeatTouchFails { touches: 60 })],
    ));
    assert_eq!(count(&outcome, "heartbeat-touch-fails"), 1);
    assert!(struck_in(&outcome, "heartbeat-touch-fails")
        .iter()
        .all(|a| *a == Actor::Runner || *a == Actor::Runtime));
    assert_eq!(sends_quoting(&outcome, "m0 hello"), [SendOutcome::Received]);
}

#[test]
fn a_provider_silent_past_the_idle_timeout_is_ended_and_its_message_not_lost() {
    for beyond_ms in [5_000, 40_000] {
        let outcome = run_checked(config(
            14,
            messages(&[(5_000, "m0 hello")]),
            vec![(1_000, Fault::ProviderSilentPastIdle { beyond_ms })],
        ));
        assert_eq!(
            count(&outcome, "provider-silent-past-idle"),
            1,
            "{beyond_ms}"
        );
        let ended = outcome
            .trace
            .events()
            .iter()
            .filter(|e| e.event == Event::TurnEnded)
            .count();
        assert!(ended >= 1, "the runner ended the silent turn");
        // Answered late (before the abort) or failed with an error reply; never both, never
        // neither.
        let replies = outcome.ledger.received().count();
        assert_eq!(replies, 1, "{beyond_ms}: {:?}", outcome.ledger.channel);
    }
}

#[test]
fn a_host_crash_between_send_and_record_resends_once_after_restart() {
    let outcome = run_checked(config(
        15,
        messages(&[(5_000, "m0 hello")]),
        vec![(1_000, Fault::CrashBetweenSendAndRecord { down_ms: 2_000 })],
    ));
    assert_eq!(count(&outcome, "crash-between-send-and-record"), 1);
    // The crash struck in the step that records the send: its record failed.
    assert_eq!(
        struck_in(&outcome, "crash-between-send-and-record"),
        [Actor::Delivery]
    );
    let events = outcome.trace.events();
    assert!(events
        .iter()
        .any(|e| matches!(e.event, Event::RecordFailed { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e.event, Event::HostStarted { incarnation: 2 })));
    // Accepted before the crash, sent again by the new host: the one duplicate §7 allows.
    assert_eq!(
        sends_quoting(&outcome, "m0 hello"),
        [SendOutcome::Received, SendOutcome::Received]
    );
}

#[test]
fn a_container_crash_between_answer_and_ack_does_not_answer_twice() {
    let outcome = run_checked(config(
        16,
        messages(&[(5_000, "m0 hello @mock think 2s")]),
        vec![(1_000, Fault::CrashBetweenAnswerAndAck)],
    ));
    assert_eq!(count(&outcome, "crash-between-answer-and-ack"), 1);
    assert!(struck_in(&outcome, "crash-between-answer-and-ack")
        .iter()
        .all(|a| *a == Actor::Runner || *a == Actor::Provider));
    assert!(outcome
        .trace
        .events()
        .iter()
        .any(|e| e.event == Event::ContainerKilled));
    assert_eq!(sends_quoting(&outcome, "m0 hello"), [SendOutcome::Received]);
    let session = &outcome.ledger.final_state.sessions[0];
    let inbound = &session.snapshot.as_ref().expect("readable DBs").inbound;
    assert_eq!(inbound[0].status, "completed");
}

#[test]
fn a_host_crash_in_the_commit_of_a_system_action_applies_it_once() {
    let seed = 17;
    let first = clawsim_core::time::format_instant(start_ms(seed) + 3 * 60_000);
    let text = format!(
        "m0 plan @mock tool schedule_task {{\"prompt\":\"k0 tick\",\"processAfter\":\"{first}\"}}"
    );
    let outcome = run_checked(config(
        seed,
        messages(&[(5_000, &text)]),
        vec![(1_000, Fault::CrashBetweenActionAndRecord { down_ms: 2_000 })],
    ));
    assert_eq!(count(&outcome, "crash-between-action-and-record"), 1);
    assert!(struck_in(&outcome, "crash-between-action-and-record")
        .iter()
        .all(|a| matches!(
            a,
            Actor::DeliveryFast | Actor::DeliverySlow | Actor::Channel
        )));
    let session = &outcome.ledger.final_state.sessions[0];
    let inbound = &session.snapshot.as_ref().expect("readable DBs").inbound;
    let tasks = inbound.iter().filter(|r| r.kind == "task").count();
    assert_eq!(tasks, 1, "the task was scheduled once: {inbound:?}");
}

#[test]
fn a_host_crash_between_central_row_and_folder_is_finished_by_the_next_route() {
    let outcome = run_checked(config(
        18,
        messages(&[(5_000, "m0 hello"), (30_000, "m1 there")]),
        vec![(
            1_000,
            Fault::CrashBetweenCentralRowAndFolder { down_ms: 2_000 },
        )],
    ));
    assert_eq!(count(&outcome, "crash-between-central-row-and-folder"), 1);
    assert!(
        struck_in(&outcome, "crash-between-central-row-and-folder").is_empty()
            || struck_in(&outcome, "crash-between-central-row-and-folder")
                .iter()
                .all(|a| *a == Actor::Router)
    );
    assert_eq!(sends_quoting(&outcome, "m0 hello"), [SendOutcome::Received]);
    assert_eq!(sends_quoting(&outcome, "m1 there"), [SendOutcome::Received]);
    assert_eq!(outcome.ledger.final_state.sessions.len(), 1);
}

#[test]
fn every_targeted_kind_is_drawn_by_a_generator_and_keeps_the_default_run_sound() {
    // The swarm run draws from FAULT_KINDS (power losses aside): each aimed kind, placed by the
    // seed, on every profile, leaves the properties holding.
    for &kind in clawsim_sim::faults::AIMED_FAULT_KINDS {
        assert!(clawsim_sim::faults::FAULT_KINDS.contains(&kind), "{kind}");
        for (seed, profile) in [(1, MountProfile::Bind), (2, MountProfile::Virtiofs)] {
            let mut config = WorldConfig::default_scenario(seed, profile);
            let mut choices = clawsim_sim::tape::SeededChoices::new(
                clawsim_sim::rng::SimRng::new(seed).fork("targeted"),
            );
            let plan = FaultPlan::single(kind, 1_000, &mut choices).expect(kind);
            config.faults = plan;
            let outcome = run_world(config);
            let verdict = check(&outcome.record());
            assert!(
                verdict.held(),
                "{kind} seed {seed} {profile}: {}",
                verdict.summary()
            );
        }
    }
}
