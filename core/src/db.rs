//! SQLite files of the protocol: opening them on the Env's VFS, their schemas, and versioned
//! migrations.
//!
//! Every connection uses `journal_mode=DELETE` (WAL's shared-memory index is not coherent across
//! a VM mount), `synchronous=EXTRA` and a busy timeout. A session DB may be opened under another
//! [`Design`] (journal mode, synchronous, one shared `session.db`) to compare the protocol's
//! choices: configuration, never a different path for a simulated world.
//!
//! **Decision (durability):** PROTOCOL §2 asks for `synchronous=FULL` so that a committed row
//! survives power loss. In DELETE mode FULL does not quite deliver that: a commit is the unlink
//! of the journal, and FULL does not sync the directory after it, so a power cut soon after a
//! commit can bring the journal back and the next opener rolls the committed transaction back.
//! The simulator's power-loss crash tests show exactly that (the last commit of a file lost).
//! EXTRA is FULL plus that directory sync, and keeps the promise; it costs one more fsync per
//! commit.
//! Schemas are versioned through `PRAGMA user_version`; version 1 is the reference schema
//! exactly, so files written by the reference (or an older clawsim) open and migrate in place.

use crate::config::{Design, JournalMode, SessionLayout, Synchronous};
use crate::env::Env;
use crate::error::{Result, SqliteResultExt};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};

/// Busy timeout of every connection (PROTOCOL §2).
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Prepared statements a connection keeps: more than any one file's operations use.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// Which file a connection is on; each has its own schema and migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Schema {
    Inbound,
    Outbound,
    Central,
    /// The single layout's `session.db`: the inbound then the outbound migrations, one version.
    Session,
}

/// Whether this side writes the file. A side opens the other side's file read-only, always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

const INBOUND_MIGRATIONS: &[&str] = &[
    // 1: the reference schema.
    "CREATE TABLE IF NOT EXISTS messages_in (
        id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
        status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT,
        tries INTEGER DEFAULT 0, platform_id TEXT, channel_type TEXT, thread_id TEXT,
        content TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS delivered (message_out_id TEXT PRIMARY KEY, delivered_at TEXT NOT NULL);",
    // 2: recurring series, cheap polls, undeliverable rows recorded with a reason.
    "ALTER TABLE messages_in ADD COLUMN series_id TEXT;
     UPDATE messages_in SET series_id = id WHERE kind = 'task' AND series_id IS NULL;
     CREATE INDEX IF NOT EXISTS messages_in_status_seq ON messages_in(status, seq);
     CREATE INDEX IF NOT EXISTS messages_in_series ON messages_in(series_id);
     ALTER TABLE delivered ADD COLUMN status TEXT NOT NULL DEFAULT 'delivered';
     ALTER TABLE delivered ADD COLUMN reason TEXT;
     CREATE TABLE IF NOT EXISTS delivery_attempts (message_out_id TEXT PRIMARY KEY,
        attempts INTEGER NOT NULL, next_attempt_at TEXT NOT NULL, last_error TEXT);",
    // 3: live occurrences of recurring tasks, so the sweep finds a finished occurrence whose
    // next one is not yet scheduled without scanning the history of completed rows.
    "CREATE INDEX IF NOT EXISTS messages_in_recurring ON messages_in(status)
        WHERE recurrence IS NOT NULL;",
    // 4: the dead containers' claims (message id, `status_changed` of its `processing` ack) the
    // sweep has counted as a try, so a restarted host does not count them again. A row lives
    // only while its claim is still in outbound.db.
    "CREATE TABLE IF NOT EXISTS counted_claims (message_id TEXT NOT NULL,
        claimed_at TEXT NOT NULL, PRIMARY KEY (message_id, claimed_at));",
];

const OUTBOUND_MIGRATIONS: &[&str] = &[
    // 1: the reference schema.
    "CREATE TABLE IF NOT EXISTS messages_out (
        id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
        deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL, platform_id TEXT,
        channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS processing_ack (message_id TEXT PRIMARY KEY, status TEXT NOT NULL,
        status_changed TEXT NOT NULL);",
    // 2: indexes only (the host may read an older container's file, so no new columns).
    "CREATE INDEX IF NOT EXISTS messages_out_in_reply_to ON messages_out(in_reply_to);
     CREATE INDEX IF NOT EXISTS processing_ack_status ON processing_ack(status);",
    // 3: the batch each open claim belongs to (`batch_id` = the batch's first message, the one
    // its replies cite), so output-sent protection covers every message of an answered batch,
    // not only its first. Rows live only while the claim is open. A new table, no new columns:
    // readers of older files are unaffected.
    "CREATE TABLE IF NOT EXISTS claim_batches (message_id TEXT PRIMARY KEY,
        batch_id TEXT NOT NULL);",
];

const CENTRAL_MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS agent_groups (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS messaging_groups (
        id TEXT PRIMARY KEY, channel_type TEXT NOT NULL, platform_id TEXT NOT NULL, name TEXT,
        created_at TEXT NOT NULL, UNIQUE(channel_type, platform_id));
     CREATE TABLE IF NOT EXISTS messaging_group_agents (
        messaging_group_id TEXT NOT NULL, agent_group_id TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0, session_mode TEXT NOT NULL DEFAULT 'shared',
        PRIMARY KEY (messaging_group_id, agent_group_id));
     CREATE TABLE IF NOT EXISTS agent_routes (
        from_agent_group_id TEXT NOT NULL, to_agent_group_id TEXT NOT NULL,
        PRIMARY KEY (from_agent_group_id, to_agent_group_id));
     CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, agent_group_id TEXT NOT NULL, messaging_group_id TEXT,
        thread_key TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'active',
        container_status TEXT NOT NULL DEFAULT 'stopped', last_active TEXT,
        created_at TEXT NOT NULL);
     CREATE UNIQUE INDEX IF NOT EXISTS sessions_route
        ON sessions(agent_group_id, messaging_group_id, thread_key);
     CREATE TABLE IF NOT EXISTS pending_questions (
        question_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, message_out_id TEXT NOT NULL,
        platform_id TEXT, channel_type TEXT, thread_id TEXT, created_at TEXT NOT NULL);"];

impl Schema {
    fn migrations(self) -> Vec<&'static str> {
        match self {
            Schema::Inbound => INBOUND_MIGRATIONS.to_vec(),
            Schema::Outbound => OUTBOUND_MIGRATIONS.to_vec(),
            Schema::Central => CENTRAL_MIGRATIONS.to_vec(),
            Schema::Session => [INBOUND_MIGRATIONS, OUTBOUND_MIGRATIONS].concat(),
        }
    }

    /// The schema version this build writes.
    pub fn current_version(self) -> i64 {
        self.migrations().len() as i64
    }
}

/// One connection and the file it is on, so every error can name the file.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens `path` on the Env's VFS. A read-write open creates the file and migrates it to the
    /// current schema; a read-only open requires the file to exist and never writes it.
    pub fn open(env: &dyn Env, path: &Path, schema: Schema, access: Access) -> Result<Db> {
        Db::open_as(env, path, schema, access, &Design::V2)
    }

    /// Opens one side's view of a session's `schema` file under `design`. In the single layout
    /// both sides' files are one `session.db`, which each side opens read-write with all four
    /// tables, as before v2.
    pub fn open_session(
        env: &dyn Env,
        path: &Path,
        schema: Schema,
        access: Access,
        design: &Design,
    ) -> Result<Db> {
        match design.layout {
            SessionLayout::Split => Db::open_as(env, path, schema, access, design),
            SessionLayout::Single => {
                Db::open_as(env, path, Schema::Session, Access::ReadWrite, design)
            }
        }
    }

    fn open_as(
        env: &dyn Env,
        path: &Path,
        schema: Schema,
        access: Access,
        design: &Design,
    ) -> Result<Db> {
        let flags = match access {
            Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match env.vfs_name() {
            Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs.as_str()),
            None => Connection::open_with_flags(path, flags),
        }
        .at(path)?;
        let mut db = Db {
            conn,
            path: path.to_path_buf(),
        };
        db.configure(access, design)?;
        if access == Access::ReadWrite {
            db.migrate(schema)?;
        }
        Ok(db)
    }

    fn configure(&self, access: Access, design: &Design) -> Result<()> {
        // Every statement of a busy operation stays prepared (the default keeps 16).
        self.conn
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        self.conn
            .busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
            .at(&self.path)?;
        if access == Access::ReadWrite {
            let wanted = match design.journal_mode {
                JournalMode::Delete => "delete",
                JournalMode::Wal => "wal",
            };
            // journal_mode answers with a row; query it so a corrupt file fails here, by name.
            let mode: String = self
                .conn
                .query_row(&format!("PRAGMA journal_mode={wanted}"), [], |row| {
                    row.get(0)
                })
                .at(&self.path)?;
            if mode != wanted {
                return Err(crate::Error::Invalid(format!(
                    "{}: journal_mode stayed {mode}, not {wanted}",
                    self.path.display()
                )));
            }
        }
        let synchronous = match design.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        };
        self.conn
            .execute_batch(&format!("PRAGMA synchronous={synchronous};"))
            .at(&self.path)
    }

    fn migrate(&mut self, schema: Schema) -> Result<()> {
        let path = self.path.clone();
        // Reading the version takes no write lock; a current file is left untouched, so an open
        // costs no commit (and no fsync).
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .at(&path)?;
        if version == schema.current_version() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&path)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .at(&path)?;
        let migrations = schema.migrations();
        if version > migrations.len() as i64 {
            return Err(crate::Error::Invalid(format!(
                "{}: schema version {version} is newer than this build's {}",
                path.display(),
                migrations.len()
            )));
        }
        for sql in &migrations[version as usize..] {
            tx.execute_batch(sql).at(&path)?;
        }
        tx.pragma_update(None, "user_version", migrations.len() as i64)
            .at(&path)?;
        tx.commit().at(&path)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it.
    pub fn write<T>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.in_transaction("BEGIN IMMEDIATE", f)
    }

    /// Runs `f` in one read transaction, so everything it reads is one snapshot.
    pub fn read<T>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.in_transaction("BEGIN DEFERRED", f)
    }

    /// `begin`, `f`, `COMMIT`; on any error the transaction is rolled back. `BEGIN` and
    /// `COMMIT` are kept prepared: parsed afresh (as rusqlite's `Transaction` does) they cost
    /// more than the one indexed read of an idle poll.
    fn in_transaction<T>(
        &mut self,
        begin: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = &self.conn;
        let run = |sql: &str| conn.prepare_cached(sql)?.execute([]).map(drop);
        run(begin).at(&self.path)?;
        let outcome = f(conn).and_then(|value| run("COMMIT").map(|()| value));
        if outcome.is_err() && !conn.is_autocommit() {
            // The error is what the caller needs; a failed rollback leaves nothing to add
            // (SQLite rolls back itself when it cannot).
            let _ = conn.execute_batch("ROLLBACK");
        }
        outcome.at(&self.path)
    }

    /// `PRAGMA integrity_check`, returning its rows (`["ok"]` for a sound file).
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").at(&self.path)?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .at(&self.path)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::ManualEnv;

    #[test]
    fn every_connection_gets_the_protocol_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let env = ManualEnv::new(0, 1);
        let path = dir.path().join("inbound.db");
        let db = Db::open(&env, &path, Schema::Inbound, Access::ReadWrite).unwrap();
        let pragma = |name: &str| -> String {
            db.conn()
                .query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "Text(\"delete\")");
        assert_eq!(pragma("synchronous"), "Integer(3)", "EXTRA");
        assert_eq!(pragma("busy_timeout"), "Integer(5000)");
        assert_eq!(
            pragma("user_version"),
            format!("Integer({})", INBOUND_MIGRATIONS.len())
        );
        let reader = Db::open(&env, &path, Schema::Inbound, Access::ReadOnly).unwrap();
        let written = reader.conn().execute("DELETE FROM messages_in", []);
        assert!(written.is_err(), "a read-only side cannot write");
    }

    #[test]
    fn missing_or_corrupt_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let env = ManualEnv::new(0, 1);
        let missing = dir.path().join("absent/outbound.db");
        let error = Db::open(&env, &missing, Schema::Outbound, Access::ReadOnly).unwrap_err();
        assert!(error.to_string().contains("absent/outbound.db"), "{error}");
        let corrupt = dir.path().join("inbound.db");
        env.write_file(&corrupt, &[0x5a; 8192]).unwrap();
        let error = Db::open(&env, &corrupt, Schema::Inbound, Access::ReadWrite).unwrap_err();
        assert!(error.to_string().contains("inbound.db"), "{error}");
    }
}
