//! What a world could observe of a run.
//!
//! The simulator sees everything: it owns the VFS, the storage's durability, every actor's step.
//! A real-Docker run sees only its edges: what the test sent, what its channel adapter received,
//! the faults it injected, the files at the end. Each property reads the evidence it needs; when
//! a world did not observe that evidence, the property (or the part of it that needs the
//! evidence) is counted as not judged, with why, in [`crate::Verdict::unjudged`] — never passed
//! silently.

use serde::{Deserialize, Serialize};

/// Which kinds of evidence a world recorded. The default is everything (the simulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Every open of every DB file and its mode, as the VFS saw it (§9.5 single writer).
    pub vfs_opens: bool,
    /// Syncs that failed and commits a power loss undid, as the storage logged them (§9.9 "no
    /// committed row lost" under power loss; such a failed sync also excuses what it cost).
    pub maybe_durable_log: bool,
    /// Every poll of every agent-runner: when each agent was last seen alive (§9.8).
    pub runner_polls: bool,
    /// What each sweep did to each session, notably the containers it presumed dead (§9.8 "a
    /// live agent is never reset").
    pub sweep_reports: bool,
    /// Integrity of every DB right after each crash and restart, not only at the end (§9.9).
    pub crash_integrity: bool,
    /// What crossed the provider boundary inside each container: every prompt and follow-up
    /// the agent-runner gave the provider, and what the provider returned (§9.11, §9.13).
    #[serde(default = "observed")]
    pub provider_boundary: bool,
    /// Every plain file (not a database) each side read or wrote, as the VFS saw it (§9.13).
    #[serde(default = "observed")]
    pub file_accesses: bool,
}

/// A kind of evidence an older record does not mention was observed.
fn observed() -> bool {
    true
}

impl Observed {
    /// A world that observed everything the checkers read: the simulator.
    pub const EVERYTHING: Observed = Observed {
        vfs_opens: true,
        maybe_durable_log: true,
        runner_polls: true,
        sweep_reports: true,
        crash_integrity: true,
        provider_boundary: true,
        file_accesses: true,
    };

    /// True when nothing is missing.
    pub fn is_everything(&self) -> bool {
        *self == Observed::EVERYTHING
    }
}

impl Default for Observed {
    fn default() -> Self {
        Observed::EVERYTHING
    }
}
