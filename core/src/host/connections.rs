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

    /// Closes every kept connection of `session_id`.
    pub fn close_session(&mut self, session_id: &str) {
        self.idle.retain(|(session, _), _| session != session_id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Access;
    use crate::live::ManualEnv;

    fn db(dir: &std::path::Path, name: &str) -> Db {
        let env = ManualEnv::new(0, 1);
        Db::open(&env, &dir.join(name), Schema::Inbound, Access::ReadWrite).unwrap()
    }

    #[test]
    fn a_checked_in_connection_is_checked_out_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = ConnectionPool::default();
        pool.check_in("s1", Schema::Inbound, db(dir.path(), "a.db"));
        assert!(pool.check_out("s1", Schema::Outbound).is_none());
        assert!(pool.check_out("s2", Schema::Inbound).is_none());
        assert!(pool.check_out("s1", Schema::Inbound).is_some());
        assert!(pool.check_out("s1", Schema::Inbound).is_none());
    }

    #[test]
    fn beyond_the_cap_the_least_recently_checked_in_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = ConnectionPool::default();
        for i in 0..=CONNECTIONS_MAX {
            pool.check_in(&format!("s{i}"), Schema::Inbound, db(dir.path(), "a.db"));
        }
        assert_eq!(pool.idle.len(), CONNECTIONS_MAX);
        assert!(pool.check_out("s0", Schema::Inbound).is_none());
        assert!(pool.check_out("s1", Schema::Inbound).is_some());
        assert!(pool
            .check_out(&format!("s{CONNECTIONS_MAX}"), Schema::Inbound)
            .is_some());
    }

    #[test]
    fn closing_a_session_closes_both_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = ConnectionPool::default();
        pool.check_in("s1", Schema::Inbound, db(dir.path(), "a.db"));
        pool.check_in("s1", Schema::Outbound, db(dir.path(), "b.db"));
        pool.check_in("s2", Schema::Inbound, db(dir.path(), "c.db"));
        pool.close_session("s1");
        assert_eq!(pool.idle.len(), 1);
        assert!(pool.check_out("s2", Schema::Inbound).is_some());
    }
}
