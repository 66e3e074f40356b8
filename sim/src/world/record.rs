//! The record a world keeps as it runs: the trace, the ledger, faults counted by kind, steps
//! counted by actor, what the provider boundary saw during the current runner step, and the
//! world's own errors. It only remembers; nothing in it changes what happens next.

use crate::ledger::Ledger;
use crate::provider::ProviderLog;
use crate::trace::{Trace, TraceMode};
use clawsim_oracle::event::{Actor, Event as TypedEvent};
use std::collections::BTreeMap;

pub(super) struct Record {
    pub(super) trace: Trace,
    pub(super) ledger: Ledger,
    /// Faults that struck, by kind.
    pub(super) fault_counts: BTreeMap<String, u64>,
    /// Steps so far by actor (the `steps.*` counters at the end).
    steps_by_actor: BTreeMap<Actor, u64>,
    /// What the provider boundary saw during the current runner step.
    pub(super) provider_log: ProviderLog,
    /// Problems of the world itself (setup failed, step bound hit).
    pub(super) errors: Vec<String>,
    /// The trace step the current dispatch started at, and the last step of either side's
    /// actors recorded since: the step a fault that fires now struck in.
    dispatch_first_step: u64,
    last_side_step: Option<u64>,
}

impl Record {
    pub(super) fn new(trace_mode: TraceMode) -> Self {
        Self {
            trace: Trace::new(trace_mode),
            ledger: Ledger::default(),
            fault_counts: BTreeMap::new(),
            steps_by_actor: BTreeMap::new(),
            provider_log: Default::default(),
            errors: Vec::new(),
            dispatch_first_step: 0,
            last_side_step: None,
        }
    }

    /// Records one typed event at true time `now_ms` and counts it for its actor.
    pub(super) fn event(
        &mut self,
        now_ms: i64,
        actor: Actor,
        session: Option<&str>,
        event: TypedEvent,
    ) {
        *self.steps_by_actor.entry(actor).or_default() += 1;
        if actor.side().is_some() {
            self.last_side_step = Some(self.trace.steps());
        }
        self.trace.record(now_ms, actor, session, event);
    }

    /// Counts one fault of `kind` that struck.
    pub(super) fn count_fault(&mut self, kind: &str) {
        *self.fault_counts.entry(kind.to_string()).or_default() += 1;
    }

    /// A dispatch begins: steps recorded from now on are the ones a fault may strike in.
    pub(super) fn begin_dispatch(&mut self) {
        self.dispatch_first_step = self.trace.steps();
    }

    /// The step a fault firing now struck in: the last step either side recorded during this
    /// dispatch.
    pub(super) fn struck_step(&self) -> Option<u64> {
        self.last_side_step
            .filter(|step| *step >= self.dispatch_first_step)
    }

    /// What the provider boundary saw since the last call, oldest first.
    pub(super) fn take_provider_facts(&self) -> Vec<TypedEvent> {
        std::mem::take(&mut *self.provider_log.borrow_mut())
    }

    /// The run's counters: steps by actor (`steps.*`) and SimFs's `fs_counters` (`fs.*`).
    pub(super) fn counters(&self, fs_counters: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        let steps = self
            .steps_by_actor
            .iter()
            .map(|(actor, steps)| (format!("steps.{}", actor.name()), *steps));
        let fs = fs_counters
            .into_iter()
            .map(|(name, value)| (format!("fs.{name}"), value));
        steps.chain(fs).collect()
    }
}
