//! The single-writer rule: each session DB has one writing side, and a write-open by the other
//! side is recorded as a violation.
//!
//! The protocol's safety rests on the host alone writing `inbound.db` and the container alone
//! writing `outbound.db` (under virtiofs their locks do not see each other). SimFs does not
//! refuse such an open, as no real filesystem would: it records it, for the checkers.

use super::counters::Counters;
use super::path::{database_of, NormalPath};
use super::Side;

#[derive(Default)]
pub(crate) struct SingleWriter {
    /// Path suffix of a database, and its only writer.
    writers: Vec<(String, Side)>,
    violations: Vec<String>,
}

impl SingleWriter {
    /// Declares `side` the only writer of databases whose path ends with `path_suffix`.
    pub(crate) fn set(&mut self, path_suffix: &str, side: Side) {
        self.writers.retain(|(suffix, _)| suffix != path_suffix);
        self.writers.push((path_suffix.to_string(), side));
    }

    /// Records a violation when `side` opens for writing a DB (or its journal) whose writer is
    /// the other side.
    pub(crate) fn check(&mut self, side: Side, path: &NormalPath, counters: &mut Counters) {
        let db = database_of(path.as_str());
        let foreign = self
            .writers
            .iter()
            .any(|(suffix, writer)| db.ends_with(suffix.as_str()) && *writer != side);
        if foreign {
            self.violations
                .push(format!("{} opened {} for writing", side.name(), path));
            counters.violations += 1;
        }
    }

    pub(crate) fn violations(&self) -> &[String] {
        &self.violations
    }
}
