//! Scenarios: the unmodified core, run in the simulated world, ends with the expected ledger.
//!
//! Without faults, under every mount profile: every user message is routed once, processed
//! (`completed`), answered exactly once, and every reply reaches the channel exactly once and
//! is recorded as delivered; every DB passes `integrity_check`; nobody opened the other side's
//! DB for writing. Then each fault kind in turn, over several seeds and every profile: after
//! the quiet period the core has converged — nothing due is left unprocessed or undelivered,
//! nothing was delivered twice except across a host crash, every DB is sound. A run that does
//! not converge is a finding about the core (or the world) and fails with its seed, profile
//! and fault plan, so it can be replayed.

use clawsim_core::inspect::SessionSnapshot;
use clawsim_sim::faults::{FaultPlan, FAULT_KINDS};
use clawsim_sim::fs::MountProfile;
use clawsim_sim::ledger::SendOutcome;
use clawsim_sim::rng::SimRng;
use clawsim_sim::tape::SeededChoices;
use clawsim_sim::workload::{UserMessage, Workload};
use clawsim_sim::world::{run_world, RunOutcome, WorldConfig};
use std::collections::{BTreeMap, BTreeSet};

const PROFILES: [MountProfile; 3] = [
    MountProfile::Bind,
    MountProfile::Virtiofs,
    MountProfile::PowerLoss,
];

/// Messages far enough apart in each chat that each is its own turn (no batching), so every
/// message gets its own reply quoting its token.
fn spaced_workload(seed: u64) -> Workload {
    let mut choices = SeededChoices::new(SimRng::new(seed));
    let mut workload = Workload::generate(&mut choices, 3, 0, 1);
    for chat in &mut workload.chats {
        chat.per_thread = false;
    }
    workload.messages = (0..9)
        .map(|index| UserMessage {
            at_ms: 5_000 + index as i64 * 37_000,
            chat: index % 3,
            thread_id: None,
            sender: format!("u{}", index % 2),
            sender_id: format!("id{}", index % 2),
            text: format!("m{index} hello"),
            form: Default::default(),
        })
        .collect();
    workload
}

fn snapshots(outcome: &RunOutcome) -> Vec<&SessionSnapshot> {
    outcome
        .ledger
        .final_state
        .sessions
        .iter()
        .filter_map(|s| s.snapshot.as_ref())
        .collect()
}

/// Why a run has not converged; empty when it has.
/// Work that comes due in the last moments of a run (a recurring task firing as it ends) may
/// still be under way; convergence is judged on what came due before this margin.
const END_MARGIN_MS: i64 = 2 * 60_000;

fn convergence_problems(outcome: &RunOutcome) -> Vec<String> {
    let mut problems: Vec<String> = outcome.errors.clone();
    let state = &outcome.ledger.final_state;
    for sent in &outcome.ledger.sent {
        if sent.routed_at_ms.is_none() {
            problems.push(format!("m{} never accepted by the host", sent.index));
        }
    }
    for session in &state.sessions {
        match &session.snapshot {
            None => problems.push(format!("{}: unreadable: {:?}", session.dir, session.error)),
            Some(snapshot) if !snapshot.is_settled(state.host_now_ms - END_MARGIN_MS) => {
                problems.push(format!("{}: not settled: {snapshot:#?}", session.dir))
            }
            Some(_) => {}
        }
    }
    for check in state.integrity.iter().chain(&outcome.ledger.crash_checks) {
        if !check.is_ok() {
            problems.push(format!(
                "integrity of {} at {}: {:?}",
                check.file, check.at_ms, check.result
            ));
        }
    }
    problems.extend(
        state
            .maybe_durable
            .iter()
            .filter(|m| m.is_lost_commit())
            .map(|m| format!("lost commit: {m:?}")),
    );
    problems.extend(
        state
            .single_writer_violations
            .iter()
            .map(|v| format!("single writer: {v}")),
    );
    // A row may reach the platform twice only across a host crash (PROTOCOL §7).
    let mut incarnations: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for send in outcome.ledger.received() {
        incarnations
            .entry(&send.message_out_id)
            .or_default()
            .push(send.host_incarnation);
    }
    for (id, seen) in incarnations {
        let distinct: BTreeSet<u64> = seen.iter().copied().collect();
        if distinct.len() != seen.len() {
            problems.push(format!("{id} received twice by one host: {seen:?}"));
        }
    }
    problems
}

fn describe(outcome: &RunOutcome, config: &WorldConfig) -> String {
    format!(
        "seed {} profile {} faults {}\ncounts {:?}",
        config.seed,
        config.profile,
        serde_json::to_string(&config.faults).unwrap(),
        outcome.fault_counts
    )
}

#[test]
fn without_faults_every_message_is_answered_once_and_delivered_once() {
    for profile in PROFILES {
        let config = WorldConfig::new(
            11,
            profile,
            spaced_workload(11),
            FaultPlan::none(),
            6 * 60_000,
        );
        let outcome = run_world(config.clone());
        let problems = convergence_problems(&outcome);
        assert!(
            problems.is_empty(),
            "{}\n{problems:#?}",
            describe(&outcome, &config)
        );

        // Routed once each, into three sessions.
        assert!(outcome.ledger.sent.iter().all(|s| s.offers == 1));
        let sessions: BTreeSet<_> = outcome.ledger.sent.iter().map(|s| &s.session_id).collect();
        assert_eq!(sessions.len(), 3, "{profile}");

        // Every inbound message completed; every outbound row delivered, none undeliverable.
        let snapshots = snapshots(&outcome);
        for snapshot in &snapshots {
            for row in &snapshot.inbound {
                assert_eq!(
                    snapshot.outcome_of(&row.id),
                    Some("completed"),
                    "{profile} {row:?}"
                );
            }
            assert_eq!(
                snapshot.delivered.len(),
                snapshot.outbound.len(),
                "{profile}"
            );
            assert!(snapshot.delivered.iter().all(|d| d.status == "delivered"));
        }

        // The platform got each outbound row exactly once, and nothing else.
        let outbound: BTreeSet<&str> = snapshots
            .iter()
            .flat_map(|s| s.outbound.iter().map(|r| r.id.as_str()))
            .collect();
        let received: Vec<&str> = outcome
            .ledger
            .received()
            .map(|r| r.message_out_id.as_str())
            .collect();
        let received_set: BTreeSet<&str> = received.iter().copied().collect();
        assert_eq!(
            received.len(),
            received_set.len(),
            "{profile}: a row sent twice"
        );
        assert_eq!(received_set, outbound, "{profile}");
        assert!(outcome
            .ledger
            .channel
            .iter()
            .all(|s| s.outcome == SendOutcome::Received));

        // One answer per message: its token is quoted by exactly one reply.
        for sent in &outcome.ledger.sent {
            let token = format!("m{} hello", sent.index);
            let replies = outcome
                .ledger
                .received()
                .filter(|r| r.content["text"].as_str().unwrap_or("").contains(&token))
                .count();
            assert_eq!(
                replies, 1,
                "{profile}: m{} answered {replies} times",
                sent.index
            );
        }
    }
}

#[test]
fn the_default_scenario_converges_under_every_profile() {
    // Seeds whose plan holds a known finding's fault are skipped (see KNOWN_FINDINGS).
    let known: BTreeSet<&str> = KNOWN_FINDINGS.iter().map(|(kind, _)| *kind).collect();
    for profile in PROFILES {
        let configs = (0..)
            .map(|seed| WorldConfig::default_scenario(seed, profile))
            .filter(|config| {
                let kinds = config.faults.faults.iter().map(|f| f.fault.kind());
                !kinds.into_iter().any(|kind| known.contains(kind))
            })
            .take(6);
        for config in configs {
            let outcome = run_world(config.clone());
            let problems = convergence_problems(&outcome);
            assert!(
                problems.is_empty(),
                "{}\n{problems:#?}",
                describe(&outcome, &config)
            );
            assert!(outcome.steps > 100);
        }
    }
}

/// Fault kinds under which the core is known not to converge: `(kind, the finding)`. Each
/// entry is a finding about the core, skipped by the convergence tests and pinned by a test of
/// its own until the core is fixed. (The first, a crash-looping message retried forever, found
/// by `provider-exit`, is fixed.)
const KNOWN_FINDINGS: &[(&str, &str)] = &[];

/// A run of the spaced workload, two of whose messages send a file and one schedules a task
/// (so faults aimed at the outbox and at system actions meet one), with three faults of `kind` in its first five minutes.
fn run_with_fault_kind(kind: &str, profile: MountProfile, seed: u64) -> (WorldConfig, RunOutcome) {
    let mut choices = SeededChoices::new(SimRng::new(seed).fork(kind));
    let faults = FaultPlan::generate(&mut choices, &[kind], 3, 5 * 60_000);
    let mut workload = spaced_workload(seed);
    for index in [1, 4] {
        workload.messages[index].text = format!(
            r#"m{index} file @mock tool send_file {{"path":".heartbeat","filename":"hb.txt","text":"here"}}"#
        );
    }
    let due = clawsim_core::time::format_instant(clawsim_sim::world::start_ms(seed) + 400_000);
    workload.messages[7].text = format!(
        r#"m7 plan @mock tool schedule_task {{"prompt":"k7 tick","processAfter":"{due}"}}"#
    );
    let config = WorldConfig::new(seed, profile, workload, faults, 6 * 60_000);
    (config.clone(), run_world(config))
}

#[test]
fn the_core_converges_after_each_fault_kind() {
    let mut findings = Vec::new();
    let mut struck: BTreeMap<&str, u64> = BTreeMap::new();
    let known: BTreeSet<&str> = KNOWN_FINDINGS.iter().map(|(kind, _)| *kind).collect();
    for (kind_index, kind) in FAULT_KINDS.iter().enumerate() {
        if known.contains(kind) {
            continue;
        }
        for (profile_index, profile) in PROFILES.into_iter().enumerate() {
            let seed = (profile_index * 100 + kind_index) as u64;
            let (config, outcome) = run_with_fault_kind(kind, profile, seed);
            *struck.entry(kind).or_default() +=
                outcome.fault_counts.get(*kind).copied().unwrap_or(0);
            let problems = convergence_problems(&outcome);
            if !problems.is_empty() {
                findings.push(format!(
                    "{kind}: {}\n{problems:#?}",
                    describe(&outcome, &config)
                ));
            }
        }
    }
    assert!(
        findings.is_empty(),
        "{} runs did not converge:\n{}",
        findings.len(),
        findings.join("\n\n")
    );
    for kind in FAULT_KINDS.iter().filter(|k| !known.contains(*k)) {
        assert!(
            struck.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never struck"
        );
    }
}

/// Was a finding: a message whose turn exits the agent process was retried forever (each new
/// container cleared the claim and exited again with a fresh heartbeat, so the host never
/// counted a try). Replay: kind `provider-exit`, profile `bind`, seed 16. Now it must end
/// `failed` after at most five tries, and the session's other messages must be answered.
#[test]
fn a_message_that_exits_the_agent_ends_failed_within_five_tries() {
    let (config, outcome) = run_with_fault_kind("provider-exit", MountProfile::Bind, 16);
    assert!(
        outcome
            .fault_counts
            .get("provider-exit")
            .copied()
            .unwrap_or(0)
            > 0
    );
    let problems = convergence_problems(&outcome);
    assert!(
        problems.is_empty(),
        "{}\n{problems:#?}",
        describe(&outcome, &config)
    );
    for snapshot in snapshots(&outcome) {
        for row in snapshot
            .inbound
            .iter()
            .filter(|r| r.content.contains("@mock exit"))
        {
            assert_eq!(snapshot.outcome_of(&row.id), Some("failed"), "{row:?}");
            assert!(row.tries <= 5, "{row:?}");
        }
    }
}

#[test]
fn a_question_card_is_answered_by_its_user_and_the_turn_completes() {
    let mut workload = spaced_workload(12);
    workload.messages.truncate(1);
    workload.messages[0].text =
        r#"m0 hello @mock tool ask_user_question {"question":"go on?","options":["yes","no"]}"#
            .into();
    workload.answer_delay_ms_max = 20_000;
    for profile in PROFILES {
        let config = WorldConfig::new(12, profile, workload.clone(), FaultPlan::none(), 3 * 60_000);
        let outcome = run_world(config.clone());
        let problems = convergence_problems(&outcome);
        assert!(
            problems.is_empty(),
            "{}\n{problems:#?}",
            describe(&outcome, &config)
        );
        let cards: Vec<_> = outcome
            .ledger
            .received()
            .filter(|r| r.content["type"] == "ask_question")
            .collect();
        assert_eq!(cards.len(), 1, "{profile}");
        assert_eq!(outcome.ledger.answers.len(), 1, "{profile}");
        let answer = &outcome.ledger.answers[0];
        assert_eq!(
            answer.question_id, cards[0].content["questionId"],
            "{profile}"
        );
        assert_eq!(answer.option, "yes");
        assert!(answer.message_id.is_some());
        for snapshot in snapshots(&outcome) {
            for row in &snapshot.inbound {
                assert_eq!(
                    snapshot.outcome_of(&row.id),
                    Some("completed"),
                    "{profile} {row:?}"
                );
            }
        }
        assert!(
            outcome
                .ledger
                .received()
                .any(|r| r.content["text"].as_str().is_some()),
            "{profile}: no reply after the answer"
        );
    }
}
