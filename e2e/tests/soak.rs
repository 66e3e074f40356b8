//! A bounded soak: a seeded random mix of messages (some thinking for seconds), `docker kill`,
//! `docker pause` and host restarts at random moments, then a quiet period in which faults stop
//! and containers may run, then the oracle's verdict on the run and an exact count of answers:
//! each message answered once, however often its container died under it.
//!
//! The seed is printed first; `CLAWSIM_E2E_SEED=<n>` runs another plan, or replays one (the
//! same actions in the same order; real timing still differs). Without it the soak runs one
//! fixed plan, so CI repeats the same test. `CLAWSIM_E2E_SOAK_STEPS` sets the length.
//!
//! Messages are sent only when every row is finished, so each starts its own batch and its
//! answer quotes its marker (a message pushed into a running query may share a quote). Faults
//! land at any moment of a turn, from its claim to its answer; a pause only once the turn has
//! claimed its message (see `faults.rs` for a container hung before it claims).

use clawsim_core::model::status;
use clawsim_e2e::engine::OutsideFault;
use clawsim_e2e::files::SessionFiles;
use clawsim_e2e::world::{carries, say, World};
use clawsim_oracle::Property;
use std::time::Duration;

const STEPS_DEFAULT: u64 = 24;
/// The plan CI runs every time (real timing still varies); other seeds explore.
const SEED_DEFAULT: u64 = 1_795_567_723_118;
const QUIET_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// splitmix64: a tiny seeded generator, so a plan replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[test]
fn random_kills_pauses_and_host_restarts_lose_nothing_and_answer_each_message_once() {
    let seed = env_u64("CLAWSIM_E2E_SEED").unwrap_or(SEED_DEFAULT);
    let steps = env_u64("CLAWSIM_E2E_SOAK_STEPS").unwrap_or(STEPS_DEFAULT);
    let Some(mut world) = World::start("soak") else {
        return;
    };
    say(&format!(
        "soak: seed {seed}, {steps} steps (CLAWSIM_E2E_SEED={seed} replays the plan)"
    ));
    let mut rng = Rng(seed);
    let mut markers = Vec::new();
    for _ in 0..steps {
        world.wait_all_finished(QUIET_TIMEOUT);
        if rng.below(100) < 40 {
            markers.push(world.send("soak"));
        } else {
            let think_ms = 1_500 + rng.below(2_000);
            let marker = world.send(&format!("@mock active; think {think_ms}ms"));
            markers.push(marker.clone());
            let session = world.session_id();
            // Anywhere in the turn: during a cold start, the claim, the think or the answer.
            std::thread::sleep(Duration::from_millis(rng.below(think_ms + 300)));
            match rng.below(100) {
                0..=39 => {
                    world.try_inject(&session, OutsideFault::Kill);
                }
                40..=59 => {
                    // Only a claimed turn, so each pause exercises the retry path (a container
                    // hung before it claims is faults::a_container_hung_before_claiming_...).
                    world.wait_until("the turn claimed or done", QUIET_TIMEOUT, |sessions| {
                        claimed(sessions, &marker) || finished(sessions, &marker)
                    });
                    if claimed(&world.sessions(), &marker) {
                        world.try_inject(&session, OutsideFault::Pause);
                        // Frozen now; if the turn ended just before, a hung idle container
                        // would hit that gap: kill it instead.
                        if !claimed(&world.sessions(), &marker) {
                            world.try_inject(&session, OutsideFault::Kill);
                        }
                    }
                }
                60..=84 => world.restart_host(),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(800)));
    }
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    for property in [
        Property::NoLoss,
        Property::NoDuplicate,
        Property::OneAnswer,
        Property::Retries,
    ] {
        assert!(judged.verdict.judged(property), "{property} not judged");
    }
    for marker in &markers {
        let answers = world.answers_to(marker);
        if answers != 1 {
            world.fail(&format!(
                "{marker} was answered {answers} times (seed {seed})"
            ));
        }
    }
    say(&format!(
        "soak: seed {seed}: {} messages, faults {:?}",
        markers.len(),
        world.fault_counts()
    ));
}

/// True while the message carrying `marker` is claimed by a turn and not finished.
fn claimed(sessions: &[SessionFiles], marker: &str) -> bool {
    let snapshot = &sessions[0].snapshot;
    snapshot.inbound.iter().any(|row| {
        carries(&row.content, marker)
            && row.status == status::PENDING
            && snapshot
                .acks
                .iter()
                .any(|ack| ack.message_id == row.id && ack.status == status::PROCESSING)
    })
}

/// True once the message carrying `marker` is completed or failed.
fn finished(sessions: &[SessionFiles], marker: &str) -> bool {
    sessions[0].snapshot.inbound.iter().any(|row| {
        carries(&row.content, marker)
            && (row.status == status::COMPLETED || row.status == status::FAILED)
    })
}
