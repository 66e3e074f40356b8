//! Faults as data: what can go wrong in a run, named the same way in both worlds.
//!
//! The simulator plans and injects these; the Docker suite injects the ones a real engine can
//! (kills, pauses, host restarts) and records them with the same names, so one checker reads
//! both worlds' faults.

use serde::{Deserialize, Serialize};

/// Which side a clock or storage fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultSide {
    Host,
    Container,
}

impl FaultSide {
    /// The side in words: `host` or `container`.
    pub fn name(self) -> &'static str {
        match self {
            FaultSide::Host => "host",
            FaultSide::Container => "container",
        }
    }
}

/// One thing that goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// `docker kill` of a running container (the `pick`-th running one, modulo their number).
    ContainerKilled { pick: u64 },
    /// A running container stops making progress (`docker pause`) for `duration_ms`.
    ContainerHung { pick: u64, duration_ms: i64 },
    /// The next container start takes `extra_ms` longer.
    ContainerSlowStart { extra_ms: i64 },
    /// The next container start fails.
    ContainerStartFails,
    /// The next container to start is killed while it is still coming up, `at_permille`
    /// thousandths into its start.
    ContainerKilledStarting { at_permille: u32 },
    /// The host process dies and is restarted after `down_ms`.
    HostCrash { down_ms: i64 },
    /// The host process dies while its next channel send is in flight (half-way through the
    /// send's latency), and is restarted after `down_ms`.
    HostCrashMidSend { down_ms: i64 },
    /// The machine loses power between two steps: every process dies, unsynced writes are
    /// lost or torn.
    MachineCrash { down_ms: i64 },
    /// The machine loses power in the middle of the `after_ops`-th next mutating disk operation
    /// (inside a commit, between its journal sync and its DB write, ...) of `counted_on`'s side,
    /// or of either side when it is absent.
    PowerCut {
        after_ops: u32,
        down_ms: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        counted_on: Option<FaultSide>,
    },
    /// The side's next fsync fails; what it was syncing may or may not be durable.
    FsyncError { side: FaultSide },
    /// The side's next `ops` writes that grow a file fail with "disk full".
    DiskFull { side: FaultSide, ops: u32 },
    /// The side's next lock acquisition is refused (SQLITE_BUSY; its busy handler retries).
    SqliteBusy { side: FaultSide },
    /// The side's next `ops` disk operations each cost `delay_ms` of simulated time.
    SlowDisk {
        side: FaultSide,
        delay_ms: i64,
        ops: u32,
    },
    /// The next `sends` channel sends take `extra_ms` longer.
    ChannelSlow { extra_ms: i64, sends: u32 },
    /// The next `sends` channel sends fail transiently.
    ChannelTransient { sends: u32 },
    /// The next `sends` channel sends are refused for good.
    ChannelPermanent { sends: u32 },
    /// The next workload message makes the provider think `think_ms` before answering.
    ProviderSlow { think_ms: i64 },
    /// The next workload message gets no answer at all from the provider.
    ProviderSilent,
    /// The provider errors on the next workload message (`fatal`: not retryable).
    ProviderError { fatal: bool },
    /// The provider takes the agent process down with `code` on the next workload message.
    ProviderExit { code: i32 },
    /// One side's clock is offset and drifts from now on.
    ClockSkew {
        side: FaultSide,
        offset_ms: i64,
        drift_ppm: i64,
    },
    /// One side's clock jumps by `delta_ms`.
    ClockStep { side: FaultSide, delta_ms: i64 },
    /// Every actor that waits is woken once more, now, on top of its own wake-up.
    DuplicateWake,
    /// The platform refuses one row for good, every time it is sent, while every other row
    /// passes: the `skip + 1`-th distinct row the channel is handed from now on (a message the
    /// platform rejects, say, as too long).
    ChannelRefusesRow { skip: u32 },
    /// The host's next `removals` removals of an existing `outbox/<id>/` folder fail (an I/O
    /// error from the disk) while the host keeps running.
    OutboxRemovalFails { removals: u32 },
    /// The agent-runners' next `touches` touches of `.heartbeat` fail (an I/O error from the
    /// disk) while they keep running.
    HeartbeatTouchFails { touches: u32 },
    /// The next workload message makes the provider stay silent (no event at all) for the
    /// runner's query idle timeout plus `beyond_ms`, then answer.
    ProviderSilentPastIdle { beyond_ms: i64 },
    /// The host dies after the platform accepted the next send and before its `delivered` row
    /// is written (at that record's first write); restarted after `down_ms`.
    CrashBetweenSendAndRecord { down_ms: i64 },
    /// The next agent-runner to write an answer (a provider result with text, committed to
    /// `outbound.db`) dies at its next write to `outbound.db`: after the answer, before the
    /// ack that completes its message.
    CrashBetweenAnswerAndAck,
    /// The host dies in the middle of applying the next system action an agent asks for: at
    /// the first page its delivery step writes into that session's `inbound.db` (the action's
    /// effect and its `delivered` row share that commit); restarted after `down_ms`.
    CrashBetweenActionAndRecord { down_ms: i64 },
    /// The host dies after the central DB row of the next new session is written, before the
    /// session's folder is created; restarted after `down_ms`.
    CrashBetweenCentralRowAndFolder { down_ms: i64 },
}

/// Faults aimed at one step or one boundary (armed, then struck where they aim), as opposed to
/// the faults that strike whatever runs at a random time. The world's own burst scenario keeps
/// to the random-time kinds, so its cases (and `clawsim compare`'s table) stay as they were;
/// the default swarm run draws from every kind.
pub const AIMED_FAULT_KINDS: &[&str] = &[
    "container-killed-starting",
    "host-crash-mid-send",
    "channel-refuses-row",
    "outbox-removal-fails",
    "heartbeat-touch-fails",
    "provider-silent-past-idle",
    "crash-between-send-and-record",
    "crash-between-answer-and-ack",
    "crash-between-action-and-record",
    "crash-between-central-row-and-folder",
];

/// Every fault kind, by name, in the order `FaultPlan::generate` picks from (the aimed kinds
/// are [`AIMED_FAULT_KINDS`] again; `sim/tests/targeted_faults.rs` checks they are all here).
pub const FAULT_KINDS: &[&str] = &[
    "container-killed",
    "container-hung",
    "container-slow-start",
    "container-start-fails",
    "container-killed-starting",
    "host-crash",
    "host-crash-mid-send",
    "machine-crash",
    "power-cut",
    "fsync-error",
    "disk-full",
    "sqlite-busy",
    "slow-disk",
    "channel-slow",
    "channel-transient",
    "channel-permanent",
    "provider-slow",
    "provider-silent",
    "provider-error",
    "provider-exit",
    "clock-skew",
    "clock-step",
    "duplicate-wake",
    "channel-refuses-row",
    "outbox-removal-fails",
    "heartbeat-touch-fails",
    "provider-silent-past-idle",
    "crash-between-send-and-record",
    "crash-between-answer-and-ack",
    "crash-between-action-and-record",
    "crash-between-central-row-and-folder",
];

impl Fault {
    /// The kind's name, as counted in a run's summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::ContainerKilled { .. } => "container-killed",
            Fault::ContainerHung { .. } => "container-hung",
            Fault::ContainerSlowStart { .. } => "container-slow-start",
            Fault::ContainerStartFails => "container-start-fails",
            Fault::ContainerKilledStarting { .. } => "container-killed-starting",
            Fault::HostCrash { .. } => "host-crash",
            Fault::HostCrashMidSend { .. } => "host-crash-mid-send",
            Fault::MachineCrash { .. } => "machine-crash",
            Fault::PowerCut { .. } => "power-cut",
            Fault::FsyncError { .. } => "fsync-error",
            Fault::DiskFull { .. } => "disk-full",
            Fault::SqliteBusy { .. } => "sqlite-busy",
            Fault::SlowDisk { .. } => "slow-disk",
            Fault::ChannelSlow { .. } => "channel-slow",
            Fault::ChannelTransient { .. } => "channel-transient",
            Fault::ChannelPermanent { .. } => "channel-permanent",
            Fault::ProviderSlow { .. } => "provider-slow",
            Fault::ProviderSilent => "provider-silent",
            Fault::ProviderError { .. } => "provider-error",
            Fault::ProviderExit { .. } => "provider-exit",
            Fault::ClockSkew { .. } => "clock-skew",
            Fault::ClockStep { .. } => "clock-step",
            Fault::DuplicateWake => "duplicate-wake",
            Fault::ChannelRefusesRow { .. } => "channel-refuses-row",
            Fault::OutboxRemovalFails { .. } => "outbox-removal-fails",
            Fault::HeartbeatTouchFails { .. } => "heartbeat-touch-fails",
            Fault::ProviderSilentPastIdle { .. } => "provider-silent-past-idle",
            Fault::CrashBetweenSendAndRecord { .. } => "crash-between-send-and-record",
            Fault::CrashBetweenAnswerAndAck => "crash-between-answer-and-ack",
            Fault::CrashBetweenActionAndRecord { .. } => "crash-between-action-and-record",
            Fault::CrashBetweenCentralRowAndFolder { .. } => "crash-between-central-row-and-folder",
        }
    }
}
