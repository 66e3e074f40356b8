//! Faults as data: what goes wrong in a run, and when.
//!
//! A [`FaultPlan`] is a list of faults at offsets from the start of the run. It is plain serde
//! data so the harness can generate it with proptest, shrink it to the one or two faults that
//! matter, save it next to a failing seed and replay it. The world applies each fault when its
//! time comes and counts it by [`Fault::kind`]; a fault that finds nothing to act on (killing a
//! container when none runs) is recorded as skipped and not counted. Provider faults are not
//! injected into the provider: they arm a mock script that the next workload message carries,
//! so the unmodified core meets them the way it meets any prompt.

use crate::tape::ChoiceSource;
use serde::{Deserialize, Serialize};

pub use clawsim_oracle::fault::{Fault, FaultSide, AIMED_FAULT_KINDS, FAULT_KINDS};

/// A fault of kind `kind` (one of [`FAULT_KINDS`]) with parameters drawn from `choices`.
pub fn generate_fault(kind: &str, choices: &mut dyn ChoiceSource) -> Option<Fault> {
    let side = |c: &mut dyn ChoiceSource| {
        if c.chance(0.5) {
            FaultSide::Container
        } else {
            FaultSide::Host
        }
    };
    Some(match kind {
        "container-killed" => Fault::ContainerKilled {
            pick: choices.below(8),
        },
        "container-hung" => Fault::ContainerHung {
            pick: choices.below(8),
            duration_ms: choices.range_inclusive(5_000, 15 * 60_000),
        },
        "container-slow-start" => Fault::ContainerSlowStart {
            extra_ms: choices.range_inclusive(1_000, 60_000),
        },
        "container-start-fails" => Fault::ContainerStartFails,
        "container-killed-starting" => Fault::ContainerKilledStarting {
            at_permille: choices.below(1_000) as u32,
        },
        "host-crash" => Fault::HostCrash {
            down_ms: choices.range_inclusive(0, 120_000),
        },
        "host-crash-mid-send" => Fault::HostCrashMidSend {
            down_ms: choices.range_inclusive(0, 120_000),
        },
        "machine-crash" => Fault::MachineCrash {
            down_ms: choices.range_inclusive(1_000, 300_000),
        },
        "power-cut" => Fault::PowerCut {
            after_ops: 1 + choices.below(200) as u32,
            down_ms: choices.range_inclusive(1_000, 300_000),
            // Either side's operations are mostly the agent-runner's polls; counting one
            // side's alone lands cuts inside the host's steps too.
            counted_on: match choices.below(3) {
                0 => None,
                _ => Some(side(choices)),
            },
        },
        "fsync-error" => Fault::FsyncError {
            side: side(choices),
        },
        "disk-full" => Fault::DiskFull {
            side: side(choices),
            ops: 1 + choices.below(20) as u32,
        },
        "sqlite-busy" => Fault::SqliteBusy {
            side: side(choices),
        },
        "slow-disk" => Fault::SlowDisk {
            side: side(choices),
            delay_ms: choices.range_inclusive(1, 500),
            ops: 1 + choices.below(200) as u32,
        },
        "channel-slow" => Fault::ChannelSlow {
            extra_ms: choices.range_inclusive(1_000, 30_000),
            sends: 1 + choices.below(5) as u32,
        },
        "channel-transient" => Fault::ChannelTransient {
            sends: 1 + choices.below(8) as u32,
        },
        "channel-permanent" => Fault::ChannelPermanent {
            sends: 1 + choices.below(2) as u32,
        },
        "provider-slow" => Fault::ProviderSlow {
            think_ms: choices.range_inclusive(1_000, 120_000),
        },
        "provider-silent" => Fault::ProviderSilent,
        "provider-error" => Fault::ProviderError {
            fatal: choices.chance(0.5),
        },
        "provider-exit" => Fault::ProviderExit {
            code: 1 + choices.below(3) as i32,
        },
        "clock-skew" => Fault::ClockSkew {
            side: side(choices),
            offset_ms: choices.range_inclusive(-120_000, 120_000),
            drift_ppm: choices.range_inclusive(-500, 500),
        },
        "clock-step" => Fault::ClockStep {
            side: side(choices),
            delta_ms: choices.range_inclusive(-300_000, 300_000),
        },
        "duplicate-wake" => Fault::DuplicateWake,
        "channel-refuses-row" => Fault::ChannelRefusesRow {
            skip: choices.below(3) as u32,
        },
        "outbox-removal-fails" => Fault::OutboxRemovalFails {
            removals: 1 + choices.below(3) as u32,
        },
        // At most a few minutes of missed beats, well inside the stale limit (10 min): a
        // live agent whose every touch fails for longer cannot be told from a dead one.
        "heartbeat-touch-fails" => Fault::HeartbeatTouchFails {
            touches: 1 + choices.below(240) as u32,
        },
        "provider-silent-past-idle" => Fault::ProviderSilentPastIdle {
            beyond_ms: choices.range_inclusive(1_000, 60_000),
        },
        "crash-between-send-and-record" => Fault::CrashBetweenSendAndRecord {
            down_ms: choices.range_inclusive(0, 120_000),
        },
        "crash-between-answer-and-ack" => Fault::CrashBetweenAnswerAndAck,
        "crash-between-action-and-record" => Fault::CrashBetweenActionAndRecord {
            down_ms: choices.range_inclusive(0, 120_000),
        },
        "crash-between-central-row-and-folder" => Fault::CrashBetweenCentralRowAndFolder {
            down_ms: choices.range_inclusive(0, 120_000),
        },
        _ => return None,
    })
}

/// A fault and when it strikes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// Offset from the start of the run, ms.
    pub at_ms: i64,
    pub fault: Fault,
}

/// Everything that goes wrong in one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    pub faults: Vec<PlannedFault>,
}

impl FaultPlan {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// `count` faults of kinds drawn from `kinds` (names from [`FAULT_KINDS`]), at times drawn
    /// in `0..window_ms`, sorted by time.
    pub fn generate(
        choices: &mut dyn ChoiceSource,
        kinds: &[&str],
        count: usize,
        window_ms: i64,
    ) -> Self {
        let mut faults: Vec<PlannedFault> = (0..count)
            .filter_map(|_| {
                let kind = kinds.get(choices.below(kinds.len() as u64) as usize)?;
                let at_ms = choices.range_inclusive(0, window_ms.max(1) - 1);
                generate_fault(kind, choices).map(|fault| PlannedFault { at_ms, fault })
            })
            .collect();
        faults.sort_by_key(|f| f.at_ms);
        Self { faults }
    }

    /// A plan with one fault of `kind` at `at_ms`, parameters drawn from `choices`.
    pub fn single(kind: &str, at_ms: i64, choices: &mut dyn ChoiceSource) -> Option<Self> {
        let fault = generate_fault(kind, choices)?;
        Some(Self {
            faults: vec![PlannedFault { at_ms, fault }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;
    use crate::tape::{ChoiceTape, SeededChoices};

    #[test]
    fn every_kind_generates_a_fault_of_that_kind() {
        let mut choices = SeededChoices::new(SimRng::new(3));
        for kind in FAULT_KINDS {
            let fault = generate_fault(kind, &mut choices).expect(kind);
            assert_eq!(fault.kind(), *kind);
        }
        assert!(generate_fault("meteor-strike", &mut choices).is_none());
    }

    #[test]
    fn plans_round_trip_through_json() {
        let mut choices = SeededChoices::new(SimRng::new(8));
        let plan = FaultPlan::generate(&mut choices, FAULT_KINDS, 30, 600_000);
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<FaultPlan>(&json).unwrap(), plan);
        assert!(plan.faults.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }

    #[test]
    fn a_zero_tape_generates_the_mildest_plan() {
        let plan = FaultPlan::generate(&mut ChoiceTape::new(vec![]), FAULT_KINDS, 1, 1_000);
        assert_eq!(
            plan.faults,
            vec![PlannedFault {
                at_ms: 0,
                fault: Fault::ContainerKilled { pick: 0 }
            }]
        );
    }

    #[test]
    fn fault_json_names_its_kind() {
        let json = serde_json::to_string(&Fault::HostCrash { down_ms: 5 }).unwrap();
        assert_eq!(json, r#"{"kind":"host-crash","down_ms":5}"#);
    }
}
