//! Settled session histories, written straight into a host's data directory.
//!
//! A template is a real host data directory: the host itself creates its central DB and its
//! sessions (through [`Host::route`]), then each session's two DBs are filled with `history`
//! settled messages in one transaction per file — each inbound message `completed`, acked
//! `completed`, answered by one reply, and that reply recorded in `delivered` — with the same
//! seq allocation core uses ([`seq::insert_inbound`], [`seq::insert_outbound`]). Benches copy a
//! template into a fresh directory, so 100,000-row histories are built once per place and run.
//!
//! Setup connections run with `synchronous=OFF`: the history's durability is not what is
//! measured, and on disk it saves minutes of fsyncs.

use crate::fakes::FakeRuntime;
use crate::place::{copy_dir_all, Place};
use clawsim_core::config::HostConfig;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::host::{Host, InboundEvent, SessionMode};
use clawsim_core::live::LiveEnv;
use clawsim_core::model::{kind, status, InboundRow, OutboundRow, Route};
use clawsim_core::time::format_instant;
use clawsim_core::{seq, Env, Result, SessionPaths};
use rusqlite::{params, Transaction, TransactionBehavior};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;
use tempfile::TempDir;

/// The one agent group of every bench host.
pub const AGENT_GROUP_ID: &str = "ag-bench";
/// The one messaging group of every bench host.
pub const MESSAGING_GROUP_ID: &str = "mg-bench";
/// The channel type every bench message comes from and goes to.
pub const CHANNEL_TYPE: &str = "bench";
/// The platform id of the bench chat.
pub const PLATFORM_ID: &str = "chat-1";

/// The route of bench messages in session `thread_id` (`None` for the shared session).
pub fn bench_route(thread_id: Option<&str>) -> Route {
    Route {
        platform_id: Some(PLATFORM_ID.into()),
        channel_type: Some(CHANNEL_TYPE.into()),
        thread_id: thread_id.map(str::to_string),
    }
}

/// A chat message from the bench chat, as a channel would hand it to the router.
pub fn chat_event(thread_id: Option<&str>, text: &str) -> InboundEvent {
    InboundEvent {
        channel_type: CHANNEL_TYPE.into(),
        platform_id: PLATFORM_ID.into(),
        thread_id: thread_id.map(str::to_string),
        kind: kind::CHAT.into(),
        content: chat_content(text),
    }
}

/// `chat` content (PROTOCOL §4) from the bench's one user.
pub fn chat_content(text: &str) -> String {
    serde_json::json!({ "sender": "Ada", "senderId": "u-ada", "text": text }).to_string()
}

/// Opens a host on the live Env with a [`FakeRuntime`].
pub fn open_host(data_dir: &Path) -> Result<Host> {
    Host::open(
        Rc::new(LiveEnv::new()),
        HostConfig::new(data_dir),
        Box::new(FakeRuntime::default()),
    )
}

/// A host data directory whose sessions hold settled histories; see the module comment.
#[derive(Debug)]
pub struct HostTemplate {
    dir: TempDir,
    place: Place,
    session_ids: Vec<String>,
    history: usize,
}

/// A working copy of a [`HostTemplate`], removed when dropped.
#[derive(Debug)]
pub struct HostCopy {
    dir: TempDir,
    session_ids: Vec<String>,
}

impl HostTemplate {
    /// Builds a host with `sessions` sessions (one shared session when 1, else one per thread
    /// `t-<i>`), each holding `history` settled messages.
    pub fn build(place: Place, sessions: usize, history: usize) -> Result<HostTemplate> {
        let dir = place.scratch_dir("template");
        let session_ids = create_sessions(dir.path(), sessions)?;
        for session_id in &session_ids {
            settle_history(&session_paths(dir.path(), session_id), history)?;
        }
        Ok(HostTemplate {
            dir,
            place,
            session_ids,
            history,
        })
    }

    pub fn place(&self) -> Place {
        self.place
    }

    pub fn history(&self) -> usize {
        self.history
    }

    /// Copies the template into a fresh directory of the same place.
    pub fn instantiate(&self) -> Result<HostCopy> {
        let dir = self.place.scratch_dir("work");
        copy_dir_all(self.dir.path(), dir.path()).map_err(|source| clawsim_core::Error::Io {
            path: self.dir.path().to_path_buf(),
            source,
        })?;
        Ok(HostCopy {
            dir,
            session_ids: self.session_ids.clone(),
        })
    }
}

impl HostCopy {
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn session_ids(&self) -> &[String] {
        &self.session_ids
    }

    /// Paths of session `index` in this copy.
    pub fn session_paths(&self, index: usize) -> SessionPaths {
        session_paths(self.dir.path(), &self.session_ids[index])
    }

    /// Opens the host on this copy.
    pub fn open_host(&self) -> Result<Host> {
        open_host(self.dir.path())
    }
}

fn session_paths(data_dir: &Path, session_id: &str) -> SessionPaths {
    HostConfig::new(data_dir).session_paths(AGENT_GROUP_ID, session_id)
}

/// Wires the bench groups and routes one message per session, so the host creates each session
/// (central row, folder, both DBs) itself. Returns the session ids in creation order.
fn create_sessions(data_dir: &Path, sessions: usize) -> Result<Vec<String>> {
    let mut host = open_host(data_dir)?;
    host.add_agent_group(AGENT_GROUP_ID, "bench agent")?;
    host.add_messaging_group(MESSAGING_GROUP_ID, CHANNEL_TYPE, PLATFORM_ID)?;
    let mode = if sessions == 1 {
        SessionMode::Shared
    } else {
        SessionMode::PerThread
    };
    host.wire(MESSAGING_GROUP_ID, AGENT_GROUP_ID, 0, mode)?;
    (0..sessions)
        .map(|i| {
            let thread = (sessions > 1).then(|| format!("t-{i}"));
            let routed = host.route(&chat_event(thread.as_deref(), "hello"))?;
            Ok(routed.session_id)
        })
        .collect()
}

/// Settles every message already in the session and adds settled ones up to `history` in all.
fn settle_history(paths: &SessionPaths, history: usize) -> Result<()> {
    let env = LiveEnv::new();
    let inbound = open_for_setup(&env, &paths.inbound_db(), Schema::Inbound)?;
    let outbound = open_for_setup(&env, &paths.outbound_db(), Schema::Outbound)?;
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| clawsim_core::Error::Sqlite { file: path, source }
    };
    let in_tx = Transaction::new_unchecked(inbound.conn(), TransactionBehavior::Immediate)
        .map_err(at(inbound.path()))?;
    let out_tx = Transaction::new_unchecked(outbound.conn(), TransactionBehavior::Immediate)
        .map_err(at(outbound.path()))?;
    settle_rows(&in_tx, &out_tx, history, env.now_ms()).map_err(at(inbound.path()))?;
    out_tx.commit().map_err(at(outbound.path()))?;
    in_tx.commit().map_err(at(inbound.path()))?;
    Ok(())
}

fn open_for_setup(env: &dyn Env, path: &Path, schema: Schema) -> Result<Db> {
    let db = Db::open(env, path, schema, Access::ReadWrite)?;
    db.conn()
        .execute_batch("PRAGMA synchronous=OFF")
        .map_err(|source| clawsim_core::Error::Sqlite {
            file: path.to_path_buf(),
            source,
        })?;
    Ok(db)
}

fn settle_rows(
    in_tx: &Transaction,
    out_tx: &Transaction,
    history: usize,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let existing: Vec<(String, i64)> = in_tx
        .prepare("SELECT id, seq FROM messages_in ORDER BY seq")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    in_tx.execute("UPDATE messages_in SET status = 'completed'", [])?;
    let start_ms = now_ms - history as i64 * 1_000;
    for (id, seq) in &existing {
        answer_and_deliver(in_tx, out_tx, id, *seq, start_ms)?;
    }
    for i in existing.len()..history {
        let at_ms = start_ms + i as i64 * 1_000;
        let row = settled_inbound_row(i, at_ms);
        let seq = seq::insert_inbound(in_tx, &row)?;
        answer_and_deliver(in_tx, out_tx, &row.id, seq, at_ms)?;
    }
    Ok(())
}

fn settled_inbound_row(i: usize, at_ms: i64) -> InboundRow {
    InboundRow {
        id: format!("hist-in-{i:06}"),
        seq: None,
        kind: kind::CHAT.into(),
        timestamp: format_instant(at_ms),
        status: status::COMPLETED.into(),
        process_after: None,
        recurrence: None,
        tries: 0,
        route: bench_route(None),
        content: chat_content(&format!("message {i}")),
        series_id: None,
    }
}

/// Acks inbound `id` completed, writes its reply and records the reply delivered.
fn answer_and_deliver(
    in_tx: &Transaction,
    out_tx: &Transaction,
    id: &str,
    in_seq: i64,
    at_ms: i64,
) -> rusqlite::Result<()> {
    let at = format_instant(at_ms);
    out_tx.execute(
        "INSERT INTO processing_ack (message_id, status, status_changed) VALUES (?1, ?2, ?3)",
        params![id, status::COMPLETED, at],
    )?;
    let reply = OutboundRow {
        id: format!("hist-out-{id}"),
        seq: None,
        in_reply_to: Some(id.to_string()),
        timestamp: at.clone(),
        deliver_after: None,
        recurrence: None,
        kind: kind::CHAT.into(),
        route: bench_route(None),
        content: serde_json::json!({ "text": format!("Mock response to: {id}") }).to_string(),
    };
    seq::insert_outbound(out_tx, in_seq, &reply)?;
    in_tx.execute(
        "INSERT INTO delivered (message_out_id, delivered_at, status) VALUES (?1, ?2, ?3)",
        params![reply.id, at, status::DELIVERED],
    )?;
    Ok(())
}

thread_local! {
    static TEMPLATES: RefCell<BTreeMap<(Place, usize, usize), Rc<HostTemplate>>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// The template for `(place, sessions, history)`, built on first use and kept for the rest of
/// the bench process (the poll, delivery and sweep groups share them).
pub fn shared_template(place: Place, sessions: usize, history: usize) -> Rc<HostTemplate> {
    let key = (place, sessions, history);
    if let Some(template) = TEMPLATES.with(|t| t.borrow().get(&key).cloned()) {
        return template;
    }
    let started = Instant::now();
    let template = Rc::new(
        HostTemplate::build(place, sessions, history)
            .unwrap_or_else(|e| panic!("building a {history}-row template failed: {e}")),
    );
    eprintln!(
        "built template: {} session(s) x {history} settled messages on {} in {:.1} s",
        sessions,
        place.label(),
        started.elapsed().as_secs_f64()
    );
    TEMPLATES.with(|t| t.borrow_mut().insert(key, template.clone()));
    template
}
