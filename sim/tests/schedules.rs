//! Schedules as proptest values: any interleaving the scheduler can choose is a valid run.
//!
//! The world reads every scheduling choice (the order of simultaneous wake-ups, container start
//! and channel send latencies, whether a send in flight outlived a crashed host) from a
//! [`ChoiceSource`](clawsim_sim::tape::ChoiceSource). Handing it a `Vec<u64>` tape instead of the
//! seed lets proptest search schedules and shrink a failing one towards the all-zero tape (the
//! plainest schedule). The property: without faults, under any schedule, every message is
//! answered exactly once and delivered exactly once.

use clawsim_sim::faults::FaultPlan;
use clawsim_sim::fs::MountProfile;
use clawsim_sim::workload::{ChatSpec, UserMessage, Workload};
use clawsim_sim::world::{run_world, WorldConfig};
use proptest::prelude::*;

/// Two chats, four messages close together, so schedules interleave their sessions.
fn crowded_workload() -> Workload {
    let chat = |i: usize| ChatSpec {
        agent_group_id: format!("ag{i}"),
        messaging_group_id: format!("mg{i}"),
        platform_id: format!("chat{i}"),
        per_thread: false,
    };
    Workload {
        chats: vec![chat(0), chat(1)],
        messages: (0..4)
            .map(|i| UserMessage {
                at_ms: 2_000 + i as i64 * 700,
                chat: i % 2,
                thread_id: None,
                sender: "u1".into(),
                sender_id: "id1".into(),
                text: format!("m{i} hello"),
                form: Default::default(),
            })
            .collect(),
        answer_delay_ms_max: 0,
        ..Workload::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn any_schedule_without_faults_answers_and_delivers_every_message(
        tape in proptest::collection::vec(any::<u64>(), 0..200),
    ) {
        let mut config = WorldConfig::new(
            21,
            MountProfile::Bind,
            crowded_workload(),
            FaultPlan::none(),
            2 * 60_000,
        );
        config.quiet_ms = 10 * 60_000;
        config.tape = Some(tape);
        let outcome = run_world(config);
        prop_assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let state = &outcome.ledger.final_state;
        let mut received: Vec<&str> =
            outcome.ledger.received().map(|r| r.message_out_id.as_str()).collect();
        let before = received.len();
        received.sort_unstable();
        received.dedup();
        prop_assert_eq!(before, received.len(), "a row reached the platform twice");
        for session in &state.sessions {
            let snapshot = session.snapshot.as_ref().expect("readable DBs");
            prop_assert!(snapshot.is_settled(state.host_now_ms));
            for row in &snapshot.inbound {
                prop_assert_eq!(snapshot.outcome_of(&row.id), Some("completed"));
            }
            for row in &snapshot.outbound {
                prop_assert!(received.contains(&row.id.as_str()));
            }
        }
    }
}
