//! What a run produced, as the harness keeps it: trace and hash, ledger, fault and step
//! counters, errors of the world itself, and the settings the checkers judge it against.

use super::config::{sim_host_config, Timing};
use crate::ledger::Ledger;
use crate::trace::Trace;
use clawsim_core::config::{HostConfig, RunnerConfig};
use clawsim_core::SessionPaths;
use clawsim_oracle::properties::{Bounds, RunRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub seed: u64,
    pub profile: String,
    pub trace: Trace,
    pub trace_hash: u64,
    pub ledger: Ledger,
    /// Faults that struck, by kind.
    pub fault_counts: BTreeMap<String, u64>,
    /// Steps by actor and SimFs counters (`fs.*`).
    pub counters: BTreeMap<String, u64>,
    pub steps: u64,
    /// Simulated time the run covered, ms.
    pub sim_ms: i64,
    /// Problems of the world itself (setup failed, step bound hit); empty for a sound run.
    pub errors: Vec<String>,
    /// The host's settings the world ran with.
    #[serde(skip, default = "sim_host_config")]
    pub host_config: HostConfig,
    /// The world's timings.
    pub timing: Timing,
}

impl RunOutcome {
    /// The run as the checkers read it.
    pub fn record(&self) -> RunRecord<'_> {
        let runner = RunnerConfig::new(SessionPaths::new("/"));
        RunRecord {
            events: self.trace.events(),
            ledger: &self.ledger,
            sim_ms: self.sim_ms,
            errors: &self.errors,
            host: self.host_config.clone(),
            bounds: Bounds {
                poll_interval_idle_ms: runner.poll_interval_idle_ms,
                query_idle_timeout_ms: runner.query_idle_timeout_ms,
                container_start_ms_max: self.timing.container_start_ms_max,
                channel_latency_ms_max: self.timing.channel.latency_ms_max,
            },
        }
    }
}
