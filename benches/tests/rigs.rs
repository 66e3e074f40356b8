//! The bench rigs measure what they claim to: a template really is a settled history of the
//! asked size (every message completed, acked, answered once and delivered, seqs unique with the
//! right parity); a poll cycle really ends with the 10 new messages acked and answered; a delivery
//! pass hands out exactly the new replies; a rig that grew starts over from its template. A rig
//! that silently measured less work (nothing pending, nothing to deliver) would make every figure
//! a lie, so these run on small histories in the crate's test run.

use clawsim_benches::history::HostTemplate;
use clawsim_benches::place::Place;
use clawsim_benches::rigs::{DeliveryRig, PollRig, RunnerWriteRig, SweepRig, NEW_PER_CYCLE};
use clawsim_core::inspect::snapshot_session;
use clawsim_core::live::LiveEnv;
use clawsim_core::model::status;
use clawsim_core::Env;
use std::collections::BTreeSet;
use std::rc::Rc;

const HISTORY: usize = 40;

fn place() -> Place {
    if Place::Tmpfs.is_available() {
        Place::Tmpfs
    } else {
        Place::Disk
    }
}

fn template(sessions: usize, history: usize) -> Rc<HostTemplate> {
    Rc::new(HostTemplate::build(place(), sessions, history).expect("template"))
}

#[test]
fn template_holds_a_settled_history_of_the_asked_size() {
    let template = template(1, HISTORY);
    let copy = template.instantiate().expect("copy");
    let snapshot = snapshot_session(&LiveEnv::new(), &copy.session_paths(0)).expect("snapshot");

    assert_eq!(snapshot.inbound.len(), HISTORY);
    assert!(snapshot
        .inbound
        .iter()
        .all(|m| m.status == status::COMPLETED));
    assert_eq!(snapshot.acks.len(), HISTORY);
    assert!(snapshot.acks.iter().all(|a| a.status == status::COMPLETED));
    assert_eq!(snapshot.outbound.len(), HISTORY);
    let answered: BTreeSet<_> = snapshot
        .outbound
        .iter()
        .map(|o| o.in_reply_to.clone())
        .collect();
    assert_eq!(answered.len(), HISTORY, "one reply per message");
    assert_eq!(snapshot.delivered.len(), HISTORY);
    assert!(snapshot.is_settled(LiveEnv::new().now_ms()));

    let even = snapshot.inbound.iter().filter_map(|m| m.seq);
    let odd = snapshot.outbound.iter().filter_map(|o| o.seq);
    assert!(even.clone().all(|s| s % 2 == 0) && odd.clone().all(|s| s % 2 == 1));
    let seqs: BTreeSet<i64> = even.chain(odd).collect();
    assert_eq!(seqs.len(), 2 * HISTORY, "seqs unique across both tables");
}

#[test]
fn poll_cycle_ends_with_the_new_messages_acked_and_answered() {
    let rig_template = template(1, 200);
    let mut rig = PollRig::new(rig_template).expect("poll rig");
    rig.cycle().expect("cycle");
    let paths = rig.session_paths();
    let snapshot = snapshot_session(&LiveEnv::new(), &paths).expect("snapshot");

    let new: Vec<_> = snapshot
        .inbound
        .iter()
        .filter(|m| m.id.starts_with("bench-in-"))
        .collect();
    assert_eq!(new.len(), NEW_PER_CYCLE);
    for message in new {
        assert_eq!(snapshot.outcome_of(&message.id), Some(status::COMPLETED));
    }
    assert_eq!(
        snapshot.outbound.len(),
        200 + 1,
        "one reply for the batch of 10"
    );
    assert_eq!(rig.cycles, 1);
    assert!(rig.steps >= 1);
}

#[test]
fn idle_poll_takes_nothing() {
    let mut rig = PollRig::new(template(1, HISTORY)).expect("poll rig");
    rig.idle_step().expect("idle step");
    rig.idle_step().expect("idle step");
    assert_eq!(rig.cycles, 0);
}

#[test]
fn delivery_pass_hands_out_exactly_the_new_replies() {
    let mut rig = DeliveryRig::new(template(1, HISTORY)).expect("delivery rig");
    // `pass` panics unless exactly the new replies were handed to the channel.
    rig.pass(NEW_PER_CYCLE).expect("pass with 10 new");
    rig.pass(0).expect("idle pass");
    rig.pass(3).expect("pass with 3 new");
}

#[test]
fn a_grown_history_starts_over_from_its_template() {
    // 40 rows: the rig starts over after 10 new rows, i.e. after every cycle.
    let mut rig = PollRig::new(template(1, HISTORY)).expect("poll rig");
    let first_dir = rig.data_dir().to_path_buf();
    rig.cycle().expect("cycle");
    assert_ne!(
        rig.data_dir(),
        first_dir,
        "a fresh copy after growing a tenth"
    );
    assert!(!first_dir.exists(), "the grown copy is removed");
    rig.cycle().expect("cycle on the fresh copy");
    assert_eq!(rig.cycles, 2);
}

#[test]
fn sweep_tick_visits_every_idle_session() {
    let template = template(5, 3);
    let mut rig = SweepRig::new(&template).expect("sweep rig");
    // `sweep_all` panics unless the host lists every session of the template.
    rig.sweep_all().expect("sweep tick");
    rig.sweep_one().expect("sweep one");
}

#[test]
fn runner_write_out_allocates_increasing_odd_seqs() {
    let mut rig = RunnerWriteRig::new(place()).expect("write rig");
    let seqs: Vec<i64> = (0..5).map(|_| rig.write_out().expect("write")).collect();
    assert_eq!(seqs, vec![1, 3, 5, 7, 9]);
}
