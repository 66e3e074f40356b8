//! The central DB (`<data>/central.db`): agent groups, messaging groups, their wiring, which
//! agent group may address which, sessions with their container state, and questions waiting
//! for an answer.
//!
//! Only the host opens this file. Every write is one short transaction; nothing here reads the
//! clock: callers pass "now" as stored text.
//!
//! Because the host is the file's only writer (PROTOCOL §1), a read gives the same answer as
//! the last identical read until the host itself writes: the lookups that run on every
//! delivery tick and every routed message (a session by id, the active sessions, a route's
//! messaging group and wiring, an existing session of a route) are answered from a
//! [`ReadCache`] that every write empties, whether it succeeds or not.

use super::{PendingQuestion, SessionInfo, SessionMode};
use crate::config::HostConfig;
use crate::db::{Access, Db, Schema};
use crate::env::Env;
use crate::model::Route;
use crate::{Error, Result};
use rusqlite::{params, OptionalExtension};
use std::collections::BTreeMap;

/// `sessions.container_status` values.
pub mod container_status {
    pub const RUNNING: &str = "running";
    pub const IDLE: &str = "idle";
    pub const STOPPED: &str = "stopped";
}

/// A session row with the paths of its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRow {
    pub id: String,
    pub agent_group_id: String,
    pub container_status: String,
}

impl SessionRow {
    const COLUMNS: &'static str = "id, agent_group_id, container_status";

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            agent_group_id: row.get(1)?,
            container_status: row.get(2)?,
        })
    }

    pub fn info(&self, config: &HostConfig) -> SessionInfo {
        SessionInfo {
            id: self.id.clone(),
            agent_group_id: self.agent_group_id.clone(),
            paths: config.session_paths(&self.agent_group_id, &self.id),
            container_status: self.container_status.clone(),
        }
    }
}

impl SessionMode {
    fn as_str(self) -> &'static str {
        match self {
            SessionMode::Shared => "shared",
            SessionMode::PerThread => "per-thread",
        }
    }

    /// Unknown text reads as shared: one session is the safe default for a row we cannot read.
    fn parse(text: &str) -> SessionMode {
        match text {
            "per-thread" => SessionMode::PerThread,
            _ => SessionMode::Shared,
        }
    }
}

/// The connection to the central DB.
pub(crate) struct Central {
    db: Db,
    cache: ReadCache,
}

/// Answers of the hot lookups since the host's last write to the central DB.
#[derive(Default)]
struct ReadCache {
    sessions: BTreeMap<String, Option<SessionRow>>,
    active_sessions: Option<Vec<SessionRow>>,
    /// `(channel type, platform id)` → messaging group.
    routes: BTreeMap<(String, String), Option<String>>,
    /// Messaging group → its top wiring.
    wiring: BTreeMap<String, Option<(String, SessionMode)>>,
    /// `[agent group, messaging group, thread key]` → the session found there.
    route_sessions: BTreeMap<[String; 3], SessionRow>,
}

/// The cached answer under `key`, or `read`'s answer, kept when it succeeds.
fn cached<K: Ord, V: Clone>(
    map: &mut BTreeMap<K, V>,
    key: K,
    read: impl FnOnce() -> Result<V>,
) -> Result<V> {
    if let Some(value) = map.get(&key) {
        return Ok(value.clone());
    }
    let value = read()?;
    map.insert(key, value.clone());
    Ok(value)
}

impl Central {
    pub fn open(env: &dyn Env, config: &HostConfig) -> Result<Central> {
        let db = Db::open(
            env,
            &config.central_db(),
            Schema::Central,
            Access::ReadWrite,
        )?;
        Ok(Central {
            db,
            cache: ReadCache::default(),
        })
    }

    /// A write transaction; it empties the read cache first, so even a write that fails
    /// half-way (and may or may not have reached the file) is read back from the file.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.cache = ReadCache::default();
        self.db.write(f)
    }

    pub fn add_agent_group(&mut self, id: &str, name: &str, now: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO agent_groups (id, name, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            )?
            .execute(params![id, name, now])
            .map(drop)
        })
    }

    pub fn agent_group_name(&mut self, id: &str) -> Result<Option<String>> {
        self.db.read(|tx| {
            tx.prepare_cached("SELECT name FROM agent_groups WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()
        })
    }

    /// Adds or re-points a messaging group. A route already owned by another group is an error.
    pub fn add_messaging_group(
        &mut self,
        id: &str,
        channel_type: &str,
        platform_id: &str,
        now: &str,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO messaging_groups (id, channel_type, platform_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET channel_type = excluded.channel_type,
                    platform_id = excluded.platform_id",
            )?
            .execute(params![id, channel_type, platform_id, now])
            .map(drop)
        })
    }

    /// The messaging group of `(channel_type, platform_id)`, created under `id` when missing.
    pub fn ensure_messaging_group(
        &mut self,
        id: &str,
        channel_type: &str,
        platform_id: &str,
        now: &str,
    ) -> Result<String> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO messaging_groups (id, channel_type, platform_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, channel_type, platform_id, now])?;
            tx.prepare_cached(
                "SELECT id FROM messaging_groups WHERE channel_type = ?1 AND platform_id = ?2",
            )?
            .query_row([channel_type, platform_id], |r| r.get(0))
        })
    }

    pub fn messaging_group_by_route(
        &mut self,
        channel_type: &str,
        platform_id: &str,
    ) -> Result<Option<String>> {
        let Central { db, cache } = self;
        let key = (channel_type.to_string(), platform_id.to_string());
        cached(&mut cache.routes, key, || {
            db.read(|tx| {
                tx.prepare_cached(
                    "SELECT id FROM messaging_groups WHERE channel_type = ?1 AND platform_id = ?2",
                )?
                .query_row([channel_type, platform_id], |r| r.get(0))
                .optional()
            })
        })
    }

    /// Wires an agent group to a messaging group; wiring again updates priority and mode.
    pub fn wire(
        &mut self,
        messaging_group_id: &str,
        agent_group_id: &str,
        priority: i64,
        mode: SessionMode,
    ) -> Result<()> {
        self.require("messaging_groups", messaging_group_id, "messaging group")?;
        self.require("agent_groups", agent_group_id, "agent group")?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO messaging_group_agents
                    (messaging_group_id, agent_group_id, priority, session_mode)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(messaging_group_id, agent_group_id) DO UPDATE
                    SET priority = excluded.priority, session_mode = excluded.session_mode",
            )?
            .execute(params![
                messaging_group_id,
                agent_group_id,
                priority,
                mode.as_str()
            ])
            .map(drop)
        })
    }

    /// The highest-priority agent group wired to a messaging group (ties broken by id, so the
    /// choice never depends on insertion order).
    pub fn top_wiring(
        &mut self,
        messaging_group_id: &str,
    ) -> Result<Option<(String, SessionMode)>> {
        let Central { db, cache } = self;
        cached(&mut cache.wiring, messaging_group_id.to_string(), || {
            db.read(|tx| {
                tx.prepare_cached(
                    "SELECT agent_group_id, session_mode FROM messaging_group_agents
                     WHERE messaging_group_id = ?1
                     ORDER BY priority DESC, agent_group_id ASC LIMIT 1",
                )?
                .query_row([messaging_group_id], |r| {
                    Ok((r.get(0)?, SessionMode::parse(&r.get::<_, String>(1)?)))
                })
                .optional()
            })
        })
    }

    pub fn allow_agent_route(&mut self, from: &str, to: &str) -> Result<()> {
        self.require("agent_groups", from, "agent group")?;
        self.require("agent_groups", to, "agent group")?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO agent_routes (from_agent_group_id, to_agent_group_id)
                 VALUES (?1, ?2)",
            )?
            .execute([from, to])
            .map(drop)
        })
    }

    pub fn agent_route_allowed(&mut self, from: &str, to: &str) -> Result<bool> {
        self.db.read(|tx| {
            tx.prepare_cached(
                "SELECT COUNT(*) FROM agent_routes
                 WHERE from_agent_group_id = ?1 AND to_agent_group_id = ?2",
            )?
            .query_row([from, to], |r| r.get::<_, i64>(0))
            .map(|n| n > 0)
        })
    }

    /// The session of `(agent group, messaging group, thread key)`, created with `new_id` when
    /// missing. Creation is one insert, so a crash leaves either no row or a whole one.
    pub fn ensure_session(
        &mut self,
        new_id: &str,
        agent_group_id: &str,
        messaging_group_id: &str,
        thread_key: &str,
        now: &str,
    ) -> Result<SessionRow> {
        let key = [agent_group_id, messaging_group_id, thread_key];
        let cache_key = key.map(str::to_string);
        if let Some(session) = self.cache.route_sessions.get(&cache_key) {
            return Ok(session.clone());
        }
        let sql = format!(
            "SELECT {} FROM sessions
             WHERE agent_group_id = ?1 AND messaging_group_id = ?2 AND thread_key = ?3",
            SessionRow::COLUMNS
        );
        // Most routes find their session: read first, so they cost the central DB no write.
        let found = self.db.read(|tx| {
            tx.prepare_cached(&sql)?
                .query_row(key, SessionRow::from_row)
                .optional()
        })?;
        if let Some(session) = found {
            self.cache.route_sessions.insert(cache_key, session.clone());
            return Ok(session);
        }
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO sessions
                    (id, agent_group_id, messaging_group_id, thread_key, last_active, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?
            .execute(params![
                new_id,
                agent_group_id,
                messaging_group_id,
                thread_key,
                now
            ])?;
            tx.prepare_cached(&sql)?
                .query_row(key, SessionRow::from_row)
        })
    }

    pub fn session(&mut self, id: &str) -> Result<Option<SessionRow>> {
        let Central { db, cache } = self;
        cached(&mut cache.sessions, id.to_string(), || {
            let sql = format!("SELECT {} FROM sessions WHERE id = ?1", SessionRow::COLUMNS);
            db.read(|tx| {
                tx.prepare_cached(&sql)?
                    .query_row([id], SessionRow::from_row)
                    .optional()
            })
        })
    }

    /// Like [`Central::session`], with an error naming a session the central DB does not know.
    pub fn require_session(&mut self, id: &str) -> Result<SessionRow> {
        self.session(id)?
            .ok_or_else(|| Error::Invalid(format!("unknown session {id:?}")))
    }

    /// Active sessions, sorted by id.
    pub fn active_sessions(&mut self) -> Result<Vec<SessionRow>> {
        if let Some(sessions) = &self.cache.active_sessions {
            return Ok(sessions.clone());
        }
        let sql = format!(
            "SELECT {} FROM sessions WHERE status = 'active' ORDER BY id",
            SessionRow::COLUMNS
        );
        let sessions: Vec<SessionRow> = self.db.read(|tx| {
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map([], SessionRow::from_row)?;
            rows.collect()
        })?;
        self.cache.active_sessions = Some(sessions.clone());
        Ok(sessions)
    }

    pub fn set_container_status(&mut self, session_id: &str, status: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE sessions SET container_status = ?2
                 WHERE id = ?1 AND container_status <> ?2",
            )?
            .execute([session_id, status])
            .map(drop)
        })
    }

    pub fn touch_session(&mut self, session_id: &str, now: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE sessions SET last_active = ?2 WHERE id = ?1")?
                .execute([session_id, now])
                .map(drop)
        })
    }

    /// Records a question; recording it twice is harmless (PROTOCOL §7).
    pub fn record_question(&mut self, question: &PendingQuestion) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO pending_questions (question_id, session_id, message_out_id,
                    platform_id, channel_type, thread_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                question.question_id,
                question.session_id,
                question.message_out_id,
                question.route.platform_id,
                question.route.channel_type,
                question.route.thread_id,
                question.created_at,
            ])
            .map(drop)
        })
    }

    pub fn pending_question(&mut self, question_id: &str) -> Result<Option<PendingQuestion>> {
        let sql = format!(
            "SELECT {} FROM pending_questions WHERE question_id = ?1",
            PendingQuestion::COLUMNS
        );
        self.db.read(|tx| {
            tx.prepare_cached(&sql)?
                .query_row([question_id], PendingQuestion::from_row)
                .optional()
        })
    }

    /// Every unanswered question, sorted by question id.
    pub fn pending_questions(&mut self) -> Result<Vec<PendingQuestion>> {
        let sql = format!(
            "SELECT {} FROM pending_questions ORDER BY question_id",
            PendingQuestion::COLUMNS
        );
        self.db.read(|tx| {
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map([], PendingQuestion::from_row)?;
            rows.collect()
        })
    }

    pub fn remove_question(&mut self, question_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM pending_questions WHERE question_id = ?1")?
                .execute([question_id])
                .map(drop)
        })
    }

    fn require(&mut self, table: &str, id: &str, what: &str) -> Result<()> {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE id = ?1");
        let count: i64 = self
            .db
            .read(|tx| tx.prepare_cached(&sql)?.query_row([id], |r| r.get(0)))?;
        if count == 0 {
            return Err(Error::Invalid(format!("unknown {what} {id:?}")));
        }
        Ok(())
    }
}

impl PendingQuestion {
    const COLUMNS: &'static str = "question_id, session_id, message_out_id, platform_id, \
        channel_type, thread_id, created_at";

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            question_id: row.get(0)?,
            session_id: row.get(1)?,
            message_out_id: row.get(2)?,
            route: Route {
                platform_id: row.get(3)?,
                channel_type: row.get(4)?,
                thread_id: row.get(5)?,
            },
            created_at: row.get(6)?,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The read cache answers like the file: every write is seen by the next read.
    use super::*;
    use crate::live::ManualEnv;

    fn central(dir: &std::path::Path) -> Central {
        let env = ManualEnv::new(0, 1);
        Central::open(&env, &HostConfig::new(dir)).unwrap()
    }

    fn wired(central: &mut Central) -> SessionRow {
        central.add_agent_group("ag1", "agent", "t0").unwrap();
        central
            .add_messaging_group("mg1", "chat", "p1", "t0")
            .unwrap();
        central.wire("mg1", "ag1", 0, SessionMode::Shared).unwrap();
        central
            .ensure_session("s1", "ag1", "mg1", "", "t0")
            .unwrap()
    }

    #[test]
    fn a_write_is_seen_by_every_cached_lookup_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut central = central(dir.path());
        assert_eq!(
            central.messaging_group_by_route("chat", "p1").unwrap(),
            None
        );
        assert_eq!(central.top_wiring("mg1").unwrap(), None);
        assert!(central.active_sessions().unwrap().is_empty());
        let session = wired(&mut central);
        assert_eq!(
            central.messaging_group_by_route("chat", "p1").unwrap(),
            Some("mg1".into())
        );
        assert_eq!(
            central.top_wiring("mg1").unwrap(),
            Some(("ag1".into(), SessionMode::Shared))
        );
        assert_eq!(central.active_sessions().unwrap(), vec![session.clone()]);
        assert_eq!(central.session("s1").unwrap(), Some(session));
        central
            .set_container_status("s1", container_status::RUNNING)
            .unwrap();
        let running = central.require_session("s1").unwrap();
        assert_eq!(running.container_status, container_status::RUNNING);
        assert_eq!(central.active_sessions().unwrap(), vec![running.clone()]);
        let again = central
            .ensure_session("s2", "ag1", "mg1", "", "t1")
            .unwrap();
        assert_eq!(again, running, "an existing session is found, not created");
    }

    #[test]
    fn cached_answers_are_those_of_a_fresh_reader() {
        let dir = tempfile::tempdir().unwrap();
        let mut central = central(dir.path());
        wired(&mut central);
        central
            .set_container_status("s1", container_status::IDLE)
            .unwrap();
        let cached = (
            central.active_sessions().unwrap(),
            central.session("s1").unwrap(),
            central.top_wiring("mg1").unwrap(),
        );
        let mut fresh = super::tests::central(dir.path());
        let from_file = (
            fresh.active_sessions().unwrap(),
            fresh.session("s1").unwrap(),
            fresh.top_wiring("mg1").unwrap(),
        );
        assert_eq!(cached, from_file);
    }
}
