//! Session DB connections the host keeps open between operations.
//!
//! Opening a session DB parses its schema, which costs more than the work most operations do (an
//! idle delivery pass reads one index). So an operation checks a connection out, and checks it
//! back in only when the operation succeeded: a connection that met an error (a busy file, a
//! failed fsync, a hot journal a reader cannot roll back) is closed, and the next operation opens
//! a fresh one, exactly as if nothing were kept. While a connection is checked out (a delivery
//! pass waiting on its channel send), another operation on that session opens its own.
//!
//! Keeping a connection changes nothing a reader sees: SQLite re-reads the file's change counter
//! at the start of every transaction and drops its page cache when the writer has committed, so
//! a kept read-only `outbound.db` connection sees the agent-runner's commits as a new one would.
//! At most [`CONNECTIONS_MAX`] are kept; the least recently checked in is closed first.

use crate::db::{Db, Schema};
use std::collections::BTreeMap;

/// Connections kept open, over all sessions (two per busy session).
pub const CONNECTIONS_MAX: usize = 64;

/// Idle connections by (session id, file).
#[derive(Default)]
pub(crate) struct ConnectionPool {
    idle: BTreeMap<(String, Schema), Kept>,
    /// Check-ins so far: the recency stamp of the next one.
    check_ins: u64,
}

struct Kept {
    db: Db,
    checked_in: u64,
}

impl ConnectionPool {
    /// The kept connection to `schema`'s file of `session_id`, if one is idle.
    pub fn check_out(&mut self, session_id: &str, schema: Schema) -> Option<Db> {
        let key = (session_id.to_string(), schema);
        self.idle.remove(&key).map(|kept| kept.db)
    }

    /// Keeps `db` for the next operation, closing the least recently used one beyond the cap.
    pub fn check_in(&mut self, session_id: &str, schema: Schema, db: Db) {
        self.check_ins += 1;
        let kept = Kept {
            db,
            checked_in: self.check_ins,
        };
        self.idle.insert((session_id.to_string(), schema), kept);
        if self.idle.len() > CONNECTIONS_MAX {
            self.close_least_recent();
        }
    }

    fn close_least_recent(&mut self) {
        let oldest = self
            .idle
            .iter()
            .min_by_key(|(_, kept)| kept.checked_in)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.idle.remove(&key);
        }
    }
}
