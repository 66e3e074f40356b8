//! The scheduler's events: what can happen next in a world, each one bounded step of one actor.
//!
//! Events of a process that has since died (a send started by a host that crashed, a wake-up of
//! a container that was killed) carry the incarnation or generation they were scheduled for,
//! and are recognised as stale when they fire.

use clawsim_core::channel::{OutboundDelivery, SendError};
use clawsim_core::runtime::ContainerSpec;

/// What the scheduler runs.
#[derive(Debug)]
pub(crate) enum Event {
    /// A user sends workload message `index` (or the platform offers it again).
    Arrival { index: usize },
    /// A user answers a question card.
    Answer {
        question_id: String,
        option: String,
        attempt: u32,
    },
    /// One of the host's timers fires. A timer belongs to one host incarnation and dies with
    /// it; a `once` tick (a duplicate wake-up) does not re-arm.
    Tick {
        timer: Timer,
        incarnation: u64,
        once: bool,
    },
    /// A channel send completes.
    SendDone {
        pass_id: u64,
        incarnation: u64,
        delivery: OutboundDelivery,
        outcome: Result<(), SendError>,
    },
    /// A requested container comes up (or fails to).
    ContainerUp {
        spec: ContainerSpec,
        generation: u64,
        fails: bool,
    },
    /// An agent-runner's poll wakes; a duplicate wake steps without rescheduling.
    RunnerWake {
        session_id: String,
        generation: u64,
        token: u64,
        duplicate: bool,
    },
    /// A host crash armed for a send in flight strikes.
    CrashMidSend {
        incarnation: u64,
        session_id: String,
        down_ms: i64,
    },
    /// A container armed to die while starting is killed.
    KillStarting { session_id: String, generation: u64 },
    /// A hung container resumes.
    HangEnd { session_id: String, generation: u64 },
    /// The host process starts again after a crash.
    HostRestart,
    /// Fault `index` of the plan strikes.
    Fault { index: usize },
    /// Faults stop; everything is let run.
    QuietStart,
    /// The run ends.
    End,
}

/// The host's periodic loops (PROTOCOL §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Delivery pass over sessions whose container runs.
    DeliveryFast,
    /// Delivery pass over every active session.
    DeliverySlow,
    Sweep,
}
