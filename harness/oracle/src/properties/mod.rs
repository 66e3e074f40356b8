//! The properties of PROTOCOL §9, judged from a run's independent evidence.
//!
//! A checker never asks the core what it did: it reads the world's [`Ledger`] (what the users
//! sent and when the host accepted it, what the channel received, every fault with its time,
//! integrity checks after crashes, SimFs's single-writer record and its maybe-durable syncs),
//! the typed events (which actor did what, when), and the DBs as a read-only connection found them after the
//! quiet period. The core's own memory (its watermarks, its counters) is never consulted.
//!
//! Two kinds of check: the **online** ones ([`online`]) replay the run's evidence in time order
//! and stop at the first moment a rule broke (seq parity and uniqueness as messages are routed
//! and sent, single writer, nothing answered before it arrived or before its `process_after`);
//! the **final** ones judge the state after the quiet period, so "eventually" is checked, not
//! assumed. Each check counts how often it was applied ([`Verdict::checks`]), so a summary can
//! say a property was exercised, not only that it never failed.
//!
//! Two things the protocol allows are never reported: a second send of a row whose first send
//! finished after its host had died (the trace shows that crash), and the loss of rows written
//! by a transaction whose fsync failed (SimFs records those as maybe durable).

mod answered;
mod confinement;
mod delivery;
mod evidence;
mod format;
mod head_of_line;
pub mod online;
mod processing;
mod routing;
mod storage;
mod tasks;

pub use evidence::{
    contains_word, quoted_prompt, token_of, Evidence, RunningContainers, ANSWER_PREFIX,
};

use crate::ledger::Ledger;
use crate::trace::TraceEvent;
use clawsim_core::config::HostConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One run as the checkers see it: its typed events, its ledger, and the settings the world
/// ran the protocol with. Both worlds build one of these; nothing else reaches a checker.
pub struct RunRecord<'a> {
    /// Every typed event, in the order the world recorded them.
    pub events: &'a [TraceEvent],
    pub ledger: &'a Ledger,
    /// How long the run covered, ms.
    pub sim_ms: i64,
    /// Problems of the world itself (setup failed, a step bound hit); empty for a sound run.
    pub errors: &'a [String],
    /// The host's settings as the world ran it.
    pub host: HostConfig,
    /// The world's own timings that bound how promptly things can happen.
    pub bounds: Bounds,
}

/// Timings of a world that bound how long a due message may wait: the agent-runner's idle
/// poll and its turn's idle end, the slowest container start and channel send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    pub poll_interval_idle_ms: i64,
    pub query_idle_timeout_ms: i64,
    pub container_start_ms_max: i64,
    pub channel_latency_ms_max: i64,
}

/// One property of PROTOCOL §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Property {
    /// §9.1: every inbound message eventually ends completed or failed.
    NoLoss,
    /// §9.2: a row reaches the channel at most once, except across a host crash mid-send.
    NoDuplicate,
    /// §9.3: every due outbound row is delivered or recorded undeliverable with a reason.
    NoLostOutput,
    /// §9.3a: an inbound message is answered by one turn.
    OneAnswer,
    /// §9.4: seq unique, even on the host side, odd on the container side, increasing.
    Seq,
    /// §9.5: no side opens the other side's DB for writing.
    SingleWriter,
    /// §9.6: nothing processed before its `process_after`; healthy sessions answer promptly.
    Time,
    /// §9.7: each occurrence fires once; a cancelled or paused series fires no more.
    Series,
    /// §9.8: at most 5 tries with backoff; a live agent is never reset.
    Retries,
    /// §9.9: every DB passes integrity_check after crashes; no committed row is lost.
    Durability,
    /// §9.10: the prompt is well-formed and escaped for any content.
    Formatting,
    /// §9.11: every message that reaches the agent is answered once in its own conversation,
    /// or fails with an `Error: …` reply there; a command gets its documented reply.
    Answered,
    /// §9.12: each reply reaches the conversation of what it answers.
    Routing,
    /// §9.13: no file outside the session's outbox is written, read for delivery or sent; an
    /// admin command from a non-admin never takes effect.
    Confinement,
    /// §9.14: a row that cannot be delivered delays no other row and ends undeliverable.
    HeadOfLine,
}

impl Property {
    /// Every property, in §9 order.
    pub const ALL: [Property; 15] = [
        Property::NoLoss,
        Property::NoDuplicate,
        Property::NoLostOutput,
        Property::OneAnswer,
        Property::Seq,
        Property::SingleWriter,
        Property::Time,
        Property::Series,
        Property::Retries,
        Property::Durability,
        Property::Formatting,
        Property::Answered,
        Property::Routing,
        Property::Confinement,
        Property::HeadOfLine,
    ];

    /// The property's short name, as summaries and artifacts print it.
    pub fn name(self) -> &'static str {
        match self {
            Property::NoLoss => "no-loss",
            Property::NoDuplicate => "no-duplicate",
            Property::NoLostOutput => "no-lost-output",
            Property::OneAnswer => "one-answer",
            Property::Seq => "seq",
            Property::SingleWriter => "single-writer",
            Property::Time => "time",
            Property::Series => "series",
            Property::Retries => "retries",
            Property::Durability => "durability",
            Property::Formatting => "formatting",
            Property::Answered => "answered",
            Property::Routing => "routing",
            Property::Confinement => "confinement",
            Property::HeadOfLine => "head-of-line",
        }
    }

    /// Where the protocol states it.
    pub fn section(self) -> &'static str {
        match self {
            Property::NoLoss => "§9.1",
            Property::NoDuplicate => "§9.2",
            Property::NoLostOutput => "§9.3",
            Property::OneAnswer => "§9.3a",
            Property::Seq => "§9.4",
            Property::SingleWriter => "§9.5",
            Property::Time => "§9.6",
            Property::Series => "§9.7",
            Property::Retries => "§9.8",
            Property::Durability => "§9.9",
            Property::Formatting => "§9.10",
            Property::Answered => "§9.11",
            Property::Routing => "§9.12",
            Property::Confinement => "§9.13",
            Property::HeadOfLine => "§9.14",
        }
    }
}

impl std::fmt::Display for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.section(), self.name())
    }
}

/// A property that did not hold, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub property: Property,
    /// What broke, naming the session, message and times involved.
    pub detail: String,
    /// When it became visible (true time, ms), for checks that know.
    pub at_ms: Option<i64>,
    /// The session concerned, when there is one.
    pub session: Option<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

/// What the checkers found in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// How many times each property was applied (to a message, a row, a file, a send).
    pub checks: BTreeMap<Property, u64>,
    pub violations: Vec<Violation>,
    /// What of each property this run could not judge, and why: the evidence it needs is
    /// something the world did not observe ([`crate::Observed`]). A property with no checks and
    /// an entry here was not judged at all; one with both was judged in part.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unjudged: BTreeMap<Property, Vec<String>>,
    /// How many times each property met a row, message or send it is about and could not judge
    /// it (the evidence for that one case is missing: a prompt cut short in the record, a
    /// conversation the world did not note). Each kind of reason is also named in
    /// [`Verdict::unjudged`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<Property, u64>,
}

impl Verdict {
    /// True when every property held.
    pub fn held(&self) -> bool {
        self.violations.is_empty()
    }

    /// True when `property` held in this run.
    pub fn property_held(&self, property: Property) -> bool {
        self.violations.iter().all(|v| v.property != property)
    }

    /// The properties that failed, each once, in §9 order.
    pub fn failed(&self) -> Vec<Property> {
        let failed: std::collections::BTreeSet<Property> =
            self.violations.iter().map(|v| v.property).collect();
        failed.into_iter().collect()
    }

    /// True when `property` was applied at least once in this run.
    pub fn judged(&self, property: Property) -> bool {
        self.checks.get(&property).is_some_and(|n| *n > 0)
    }

    /// Records that a part of `property` was not judged, and why (each reason once).
    pub(crate) fn not_judged(&mut self, property: Property, why: &str) {
        let reasons = self.unjudged.entry(property).or_default();
        if !reasons.iter().any(|r| r == why) {
            reasons.push(why.to_string());
        }
    }

    /// Counts one case of `property` that could not be judged, and why.
    pub(crate) fn skip(&mut self, property: Property, why: &str) {
        *self.skipped.entry(property).or_default() += 1;
        self.not_judged(property, why);
    }

    /// One line per property: held or failed with its count of checks, and what was not
    /// judged, with why.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for property in Property::ALL {
            let checks = self.checks.get(&property).copied().unwrap_or(0);
            let failed = self
                .violations
                .iter()
                .filter(|v| v.property == property)
                .count();
            let unjudged = self.unjudged.get(&property);
            let judged = match (failed, checks, unjudged) {
                (0, 0, Some(_)) => String::new(),
                (0, 0, None) => "held, nothing to check in this run".to_string(),
                (0, n, _) => format!("held, {n} checks"),
                (f, n, _) => format!("FAILED, {f} violations in {n} checks"),
            };
            let judged = match self.skipped.get(&property) {
                Some(skipped) if judged.is_empty() => format!("{skipped} cases not judged"),
                Some(skipped) => format!("{judged}, {skipped} cases not judged"),
                None => judged,
            };
            let not_judged = unjudged.map(|why| format!("not judged: {}", why.join("; ")));
            let line = [Some(judged).filter(|j| !j.is_empty()), not_judged]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            out.push_str(&format!("{property}: {line}\n"));
        }
        out
    }

    /// Counts one application of `property` that held by construction of the case (the agent
    /// chose silence, say), so the count shows the case was met.
    pub(crate) fn passed(&mut self, property: Property) {
        *self.checks.entry(property).or_default() += 1;
    }

    /// Counts one application of `property`; records a violation when `held` is false.
    pub(crate) fn check(&mut self, property: Property, held: bool, why: impl FnOnce() -> Found) {
        *self.checks.entry(property).or_default() += 1;
        if !held {
            let found = why();
            self.violations.push(Violation {
                property,
                detail: found.detail,
                at_ms: found.at_ms,
                session: found.session,
            });
        }
    }
}

/// The particulars of a violation, built only when one is found.
pub(crate) struct Found {
    pub detail: String,
    pub at_ms: Option<i64>,
    pub session: Option<String>,
}

impl Found {
    /// A violation described by `detail` alone.
    pub fn new(detail: String) -> Self {
        Self {
            detail,
            at_ms: None,
            session: None,
        }
    }

    /// Adds the session concerned.
    pub fn in_session(mut self, session: &str) -> Self {
        self.session = Some(session.to_string());
        self
    }

    /// Adds when it became visible.
    pub fn at(mut self, at_ms: i64) -> Self {
        self.at_ms = Some(at_ms);
        self
    }
}

/// When the platform first received an answer quoting each workload message, by index.
pub fn first_answers(outcome: &RunRecord) -> BTreeMap<usize, i64> {
    let evidence = Evidence::new(outcome);
    (0..outcome.ledger.sent.len())
        .filter_map(|index| {
            let token = evidence.token(index);
            let first = evidence
                .answers_quoting(&token)
                .filter_map(|a| a.received_at_ms)
                .min()?;
            Some((index, first))
        })
        .collect()
}

/// Judges every property of §9 over one run.
pub fn check(outcome: &RunRecord) -> Verdict {
    let evidence = Evidence::new(outcome);
    let mut verdict = Verdict::default();
    for property in Property::ALL {
        verdict.checks.insert(property, 0);
    }
    online::check(&evidence, &mut verdict);
    processing::no_loss(&evidence, &mut verdict);
    delivery::no_duplicate(&evidence, &mut verdict);
    delivery::system_actions_once(&evidence, &mut verdict);
    delivery::no_lost_output(&evidence, &mut verdict);
    processing::one_answer(&evidence, &mut verdict);
    storage::seq_at_rest(&evidence, &mut verdict);
    tasks::time(&evidence, &mut verdict);
    tasks::series(&evidence, &mut verdict);
    processing::retries(&evidence, &mut verdict);
    storage::durability(&evidence, &mut verdict);
    format::formatting(&evidence, &mut verdict);
    answered::answered(&evidence, &mut verdict);
    routing::routing(&evidence, &mut verdict);
    confinement::confinement(&evidence, &mut verdict);
    head_of_line::head_of_line(&evidence, &mut verdict);
    if !outcome.errors.is_empty() {
        // A world that could not run to its end proves nothing about "eventually".
        verdict.check(Property::NoLoss, false, || {
            Found::new(format!(
                "the run did not finish: {}",
                outcome.errors.join("; ")
            ))
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::Observed;

    fn judge(observed: Observed) -> Verdict {
        let ledger = Ledger {
            observed,
            ..Ledger::default()
        };
        let record = RunRecord {
            events: &[],
            ledger: &ledger,
            sim_ms: 0,
            errors: &[],
            host: HostConfig::new("/data"),
            bounds: Bounds {
                poll_interval_idle_ms: 0,
                query_idle_timeout_ms: 0,
                container_start_ms_max: 0,
                channel_latency_ms_max: 0,
            },
        };
        check(&record)
    }

    #[test]
    fn what_a_world_did_not_observe_is_counted_not_judged_and_summarised() {
        let everything = judge(Observed::EVERYTHING);
        assert!(everything.unjudged.is_empty());
        assert!(everything.judged(Property::SingleWriter));
        let blind = judge(Observed {
            vfs_opens: false,
            maybe_durable_log: false,
            runner_polls: false,
            sweep_reports: false,
            crash_integrity: false,
            provider_boundary: false,
            file_accesses: false,
        });
        assert!(blind.held());
        assert!(!blind.judged(Property::SingleWriter));
        let unjudged: Vec<Property> = blind.unjudged.keys().copied().collect();
        assert_eq!(
            unjudged,
            [
                Property::SingleWriter,
                Property::Retries,
                Property::Durability,
                Property::Routing,
                Property::Confinement,
            ]
        );
        let summary = blind.summary();
        assert!(
            summary.contains("§9.5 single-writer: not judged: "),
            "{summary}"
        );
        assert!(summary.contains("§9.9 durability: "), "{summary}");
        assert_eq!(summary.lines().count(), Property::ALL.len());
    }

    #[test]
    fn cases_not_judged_are_counted_in_the_summary() {
        let mut verdict = Verdict::default();
        verdict.check(Property::Answered, true, || Found::new(String::new()));
        verdict.skip(Property::Answered, "a prompt cut short");
        verdict.skip(Property::Answered, "a prompt cut short");
        assert_eq!(verdict.skipped[&Property::Answered], 2);
        assert_eq!(verdict.unjudged[&Property::Answered].len(), 1);
        let summary = verdict.summary();
        assert!(
            summary.contains(
                "§9.11 answered: held, 1 checks, 2 cases not judged; not judged: a prompt cut short"
            ),
            "{summary}"
        );
    }
}
