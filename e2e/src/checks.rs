//! The properties of PROTOCOL §9, judged from an e2e run's ledger: what the test sent, what the
//! channel received, and the rows both DBs of every session hold at the end (read read-only).
//! Plain data in, violations out, so the harness's checkers can take these over.
//!
//! The ledger is independent of the core's bookkeeping where it can be: "sent" comes from the
//! test, "received" from the channel adapter, and each sent message carries a unique marker that
//! the mock provider's default answer quotes (`Mock response to: <first 100 chars>`), so an
//! answer is attributed to a message by its text, not by the core's `in_reply_to`.
//!
//! What a real-Docker run cannot judge (it needs the simulator's knowledge) is said per check:
//! §9.5 single writer (needs the VFS's record of opens), the latency half of §9.6, the backoff
//! timing of §9.8, "no committed row lost" of §9.9 under power loss, and §9.10 beyond the escaping
//! probe an e2e test makes.

use clawsim_core::channel::OutboundDelivery;
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::env::{Millis, SessionPaths};
use clawsim_core::inspect::{snapshot_session, SessionSnapshot};
use clawsim_core::live::LiveEnv;
use clawsim_core::model::{kind, status, text_of, AGENT_CHANNEL};
use clawsim_core::time::{is_due, parse_instant};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The prefix of the mock provider's default answer.
pub const DEFAULT_ANSWER_PREFIX: &str = "Mock response to: ";

/// A message the test sent, known by a marker unique to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// A string that occurs in this message's text (and in a task's prompt) and nowhere else.
    pub marker: String,
    /// Default answers each row carrying the marker may get (1 for a plain message; `reply N`
    /// makes it N, `silent` or an error 0).
    pub answers_per_row_max: u32,
}

/// Faults the test injected; they decide which properties hold strictly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub container_kills: u32,
    pub container_pauses: u32,
    /// Clean host restarts (shutdown, then start on the same data).
    pub host_restarts: u32,
    /// Host deaths between a channel send and its `delivered` row: each may duplicate one send.
    pub host_crashes: u32,
}

impl FaultCounts {
    /// True when no agent could have been presumed dead or lost a claim.
    pub fn none(&self) -> bool {
        *self == FaultCounts::default()
    }
}

/// One session's files at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct SessionEvidence {
    pub session_id: String,
    pub snapshot: SessionSnapshot,
    /// `messages_in.seq` in insertion (rowid) order.
    pub inbound_seqs_in_insert_order: Vec<Option<i64>>,
    /// `messages_out.seq` in insertion (rowid) order.
    pub outbound_seqs_in_insert_order: Vec<Option<i64>>,
    /// `(file, PRAGMA integrity_check rows)` of each DB.
    pub integrity: Vec<(String, Vec<String>)>,
}

/// Everything a run's checks look at.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub sent: Vec<SentMessage>,
    /// What the channel adapter was handed, in order.
    pub received: Vec<OutboundDelivery>,
    pub sessions: Vec<SessionEvidence>,
    /// `PRAGMA integrity_check` of the central DB.
    pub central_integrity: Vec<String>,
    pub faults: FaultCounts,
    /// The host's `max_tries`.
    pub max_tries: i64,
    /// When the evidence was read (for "due").
    pub now_ms: Millis,
}

/// A property that did not hold, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `§9.N name`.
    pub property: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

/// The properties [`check_all`] judges, as `(property, what part of it)`.
pub const PROPERTIES_CHECKED: &[(&str, &str)] = &[
    ("§9.1 no loss", "every sent message reached inbound.db; every due, unpaused row is completed or failed"),
    ("§9.2 no duplicate", "no message_out id reached the channel twice (beyond host crashes); no schedule_task made more series than requests"),
    ("§9.3 no lost output", "every due messages_out row is recorded; delivered channel rows were received; undeliverable ones say why"),
    ("§9.3a one answer", "no row is answered more often than its script allows, across kills and restarts"),
    ("§9.4 seq", "unique across both tables, even in, odd out, increasing in insertion order"),
    ("§9.6 time", "no answer or claim before process_after (the latency bound needs the simulator)"),
    ("§9.7 series", "one row per occurrence; nothing of a cancelled or paused series claimed after the action"),
    ("§9.8 retries", "tries <= max_tries; no try counted in a run without faults (backoff timing needs the simulator)"),
    ("§9.9 durability", "integrity_check ok on every DB; every received row is still in outbound.db"),
];

/// Reads one session's evidence from its folder, opening both DBs read-only.
pub fn read_session(session_id: &str, paths: &SessionPaths) -> Result<SessionEvidence, String> {
    let env = LiveEnv::new();
    let snapshot = snapshot_session(&env, paths).map_err(|e| e.to_string())?;
    let mut evidence = SessionEvidence {
        session_id: session_id.to_string(),
        snapshot,
        ..Default::default()
    };
    let inbound = open_read_only(&paths.inbound_db(), Schema::Inbound)?;
    evidence.inbound_seqs_in_insert_order = seqs_in_rowid_order(&inbound, "messages_in")?;
    evidence.integrity.push(integrity_of(&inbound)?);
    if paths.outbound_db().exists() {
        let outbound = open_read_only(&paths.outbound_db(), Schema::Outbound)?;
        evidence.outbound_seqs_in_insert_order = seqs_in_rowid_order(&outbound, "messages_out")?;
        evidence.integrity.push(integrity_of(&outbound)?);
    }
    Ok(evidence)
}

/// Evidence of every session folder under `<data_dir>/sessions/<agent group>/<session>/`,
/// found on disk (not from the central DB), in path order.
pub fn read_sessions(data_dir: &Path) -> Result<Vec<SessionEvidence>, String> {
    let mut sessions = Vec::new();
    for group in sorted_dirs(&data_dir.join("sessions"))? {
        for session in sorted_dirs(&group)? {
            if !session.join("inbound.db").exists() {
                continue;
            }
            let id = session
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            sessions.push(read_session(&id, &SessionPaths::new(&session))?);
        }
    }
    Ok(sessions)
}

/// `PRAGMA integrity_check` of a DB file, opened read-only.
pub fn integrity_of_file(path: &Path, schema: Schema) -> Result<Vec<String>, String> {
    Ok(integrity_of(&open_read_only(path, schema)?)?.1)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn open_read_only(path: &Path, schema: Schema) -> Result<Db, String> {
    Db::open(&LiveEnv::new(), path, schema, Access::ReadOnly).map_err(|e| e.to_string())
}

fn seqs_in_rowid_order(db: &Db, table: &str) -> Result<Vec<Option<i64>>, String> {
    let sql = format!("SELECT seq FROM {table} ORDER BY rowid");
    let mut stmt = db.conn().prepare(&sql).map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |row| row.get::<_, Option<i64>>(0))
        .map_err(|e| e.to_string())?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| format!("{}: {e}", db.path().display()))
}

fn integrity_of(db: &Db) -> Result<(String, Vec<String>), String> {
    let rows = db.integrity_check().map_err(|e| e.to_string())?;
    Ok((db.path().display().to_string(), rows))
}

/// Every check below, in property order.
pub fn check_all(ledger: &Ledger) -> Vec<Violation> {
    [
        no_loss(ledger),
        no_duplicate(ledger),
        system_actions_once(ledger),
        no_lost_output(ledger),
        one_answer(ledger),
        seq_discipline(ledger),
        nothing_early(ledger),
        series(ledger),
        retries(ledger),
        durability(ledger),
    ]
    .concat()
}

fn violation(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

/// The text of a delivery, if it is a plain message.
pub fn delivery_text(delivery: &OutboundDelivery) -> Option<&str> {
    delivery.content.get("text").and_then(Value::as_str)
}

/// §9.1: every sent message has a row; every due, unpaused row ended completed or failed (its
/// own status, i.e. after the host synced the acks).
pub fn no_loss(ledger: &Ledger) -> Vec<Violation> {
    let mut found = Vec::new();
    for sent in &ledger.sent {
        let has_row = ledger.sessions.iter().any(|s| {
            s.snapshot
                .inbound
                .iter()
                .any(|row| row.content.contains(&sent.marker))
        });
        if !has_row {
            found.push(violation(
                "§9.1 no loss",
                format!("message {} never reached an inbound.db", sent.marker),
            ));
        }
    }
    for session in &ledger.sessions {
        for row in &session.snapshot.inbound {
            let terminal = row.status == status::COMPLETED || row.status == status::FAILED;
            let waiting = row.status == status::PAUSED
                || !is_due(row.process_after.as_deref(), ledger.now_ms);
            if !terminal && !waiting {
                found.push(violation(
                    "§9.1 no loss",
                    format!(
                        "session {}: {} row {} (seq {:?}) is still {} (tries {})",
                        session.session_id, row.kind, row.id, row.seq, row.status, row.tries
                    ),
                ));
            }
        }
    }
    found
}

/// §9.2: a message_out id reaches the channel at most once; each host crash may add one.
pub fn no_duplicate(ledger: &Ledger) -> Vec<Violation> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for delivery in &ledger.received {
        *counts.entry(&delivery.message_out_id).or_default() += 1;
    }
    let extra: u32 = counts.values().map(|n| n - 1).sum();
    if extra <= ledger.faults.host_crashes {
        return Vec::new();
    }
    counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| {
            violation(
                "§9.2 no duplicate",
                format!(
                    "{id} reached the channel {n} times ({} host crashes)",
                    ledger.faults.host_crashes
                ),
            )
        })
        .collect()
}

/// §9.2 for system actions (§7 Decision: effect and `delivered` row in one transaction): no
/// prompt has more task series than `schedule_task` requests carrying it, so a request read
/// again by a restarted host never schedules twice.
pub fn system_actions_once(ledger: &Ledger) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in &ledger.sessions {
        let snapshot = &session.snapshot;
        let mut requests: BTreeMap<String, usize> = BTreeMap::new();
        for row in snapshot.outbound.iter().filter(|r| r.kind == kind::SYSTEM) {
            let content = row.content_json();
            if content.get("action").and_then(Value::as_str) == Some("schedule_task") {
                let prompt = content.get("prompt").and_then(Value::as_str).unwrap_or("");
                *requests.entry(prompt.to_string()).or_default() += 1;
            }
        }
        let mut series: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for row in snapshot.inbound.iter().filter(|r| r.kind == kind::TASK) {
            let prompt = row.content_json()["prompt"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let series_id = row.series_id.as_deref().unwrap_or(&row.id);
            series.entry(prompt).or_default().insert(series_id);
        }
        for (prompt, ids) in series {
            let asked = requests.get(&prompt).copied().unwrap_or(0);
            if ids.len() > asked {
                found.push(violation(
                    "§9.2 no duplicate",
                    format!(
                        "session {}: {} task series for {prompt:?}, {asked} schedule_task request(s)",
                        session.session_id,
                        ids.len()
                    ),
                ));
            }
        }
    }
    found
}

/// §9.3: every due messages_out row has a `delivered` row; a row recorded as delivered to a
/// channel was really received; an undeliverable row carries its reason.
pub fn no_lost_output(ledger: &Ledger) -> Vec<Violation> {
    let received: BTreeSet<&str> = ledger
        .received
        .iter()
        .map(|d| d.message_out_id.as_str())
        .collect();
    let mut found = Vec::new();
    for session in &ledger.sessions {
        let recorded: BTreeMap<&str, _> = session
            .snapshot
            .delivered
            .iter()
            .map(|d| (d.message_out_id.as_str(), d))
            .collect();
        for row in &session.snapshot.outbound {
            let name = format!(
                "session {}: messages_out {} (seq {:?})",
                session.session_id, row.id, row.seq
            );
            match recorded.get(row.id.as_str()) {
                None if is_due(row.deliver_after.as_deref(), ledger.now_ms) => found.push(
                    violation("§9.3 no lost output", format!("{name} was never delivered")),
                ),
                None => {}
                Some(d) if d.status == status::UNDELIVERABLE => {
                    let reason = d.reason.as_deref().unwrap_or("");
                    if reason.is_empty() {
                        found.push(violation(
                            "§9.3 no lost output",
                            format!("{name} is undeliverable without a reason"),
                        ));
                    }
                }
                Some(_) => {
                    let to_channel = row.kind != kind::SYSTEM
                        && row.route.channel_type.as_deref() != Some(AGENT_CHANNEL);
                    if to_channel && !received.contains(row.id.as_str()) {
                        found.push(violation(
                            "§9.3 no lost output",
                            format!("{name} is recorded delivered but the channel never got it"),
                        ));
                    }
                }
            }
        }
    }
    found
}

/// §9.3a (and §9.7's "each occurrence fires once"): a marker is quoted by at most as many
/// default answers as rows carry it times the answers each may get. A turn replayed after a
/// kill or restart would quote it once more.
pub fn one_answer(ledger: &Ledger) -> Vec<Violation> {
    let answers: Vec<&str> = ledger
        .received
        .iter()
        .filter_map(delivery_text)
        .filter(|text| text.starts_with(DEFAULT_ANSWER_PREFIX))
        .collect();
    let mut found = Vec::new();
    for sent in &ledger.sent {
        let rows = ledger
            .sessions
            .iter()
            .flat_map(|s| &s.snapshot.inbound)
            .filter(|row| row.kind != kind::SYSTEM && row.content.contains(&sent.marker))
            .count() as u32;
        let quoted = answers.iter().filter(|t| t.contains(&sent.marker)).count() as u32;
        if quoted > rows * sent.answers_per_row_max {
            found.push(violation(
                "§9.3a one answer",
                format!(
                    "{} was answered {quoted} times; {rows} row(s) allow {}",
                    sent.marker,
                    rows * sent.answers_per_row_max
                ),
            ));
        }
    }
    found
}

/// §9.4: seq unique across both tables of a session, even on the host side, odd on the
/// container side, increasing in each writer's insertion order.
pub fn seq_discipline(ledger: &Ledger) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in &ledger.sessions {
        let sides = [
            ("messages_in", &session.inbound_seqs_in_insert_order, 0),
            ("messages_out", &session.outbound_seqs_in_insert_order, 1),
        ];
        let mut seen = BTreeSet::new();
        for (table, seqs, parity) in sides {
            let mut last = None;
            for seq in seqs.iter().flatten() {
                let problem = if seq.rem_euclid(2) != parity {
                    Some(format!("seq {seq} has the wrong parity"))
                } else if !seen.insert(*seq) {
                    Some(format!("seq {seq} is used twice"))
                } else if last.is_some_and(|last| *seq <= last) {
                    Some(format!(
                        "seq {seq} follows {} in insertion order",
                        last.unwrap()
                    ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    found.push(violation(
                        "§9.4 seq",
                        format!("session {}: {table}: {problem}", session.session_id),
                    ));
                }
                last = Some(*seq);
            }
        }
    }
    found
}

/// §9.6 (first half): no answer to a row, and no claim of it, is stamped before its
/// `process_after`. Host and containers share one kernel clock here, so stamps compare.
///
/// Only rows never retried are judged: a retry replaces `process_after` with its backoff, after
/// the earlier try may already have answered (a container killed between its answer and its
/// ack: the answer predates the backoff, the next container acks it completed and answers
/// nothing). The stamps left cannot tell that earlier work from early work; backoff is judged
/// where the whole history is known, by the simulator's §9.8.
pub fn nothing_early(ledger: &Ledger) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in &ledger.sessions {
        let snapshot = &session.snapshot;
        for row in snapshot.inbound.iter().filter(|row| row.tries == 0) {
            let Some(after) = row.process_after.as_deref().and_then(parse_instant) else {
                continue;
            };
            let replies = snapshot
                .outbound
                .iter()
                .filter(|out| out.in_reply_to.as_deref() == Some(&row.id))
                .map(|out| ("answer", out.timestamp.as_str()));
            let acks = snapshot
                .acks
                .iter()
                .filter(|ack| ack.message_id == row.id)
                .map(|ack| ("claim", ack.status_changed.as_str()));
            for (what, stamp) in replies.chain(acks) {
                if parse_instant(stamp).is_some_and(|at| at < after) {
                    found.push(violation(
                        "§9.6 time",
                        format!(
                            "session {}: {what} of {} at {stamp}, before its process_after {}",
                            session.session_id,
                            row.id,
                            row.process_after.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
        }
    }
    found
}

/// §9.7: one row per occurrence of a series; after a cancel (or a pause not yet resumed) no
/// occurrence scheduled later is claimed.
pub fn series(ledger: &Ledger) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in &ledger.sessions {
        let snapshot = &session.snapshot;
        let mut occurrences: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for row in snapshot.inbound.iter().filter(|r| r.kind == kind::TASK) {
            let (Some(series), Some(after)) = (&row.series_id, &row.process_after) else {
                continue;
            };
            if !occurrences.entry(series).or_default().insert(after) {
                found.push(violation(
                    "§9.7 series",
                    format!(
                        "session {}: series {series} has two occurrences at {after}",
                        session.session_id
                    ),
                ));
            }
        }
        for (series_id, stopped_ms, until_ms, action) in stops(snapshot) {
            let claimed_later = snapshot.inbound.iter().filter(|row| {
                row.series_id.as_deref() == Some(&series_id)
                    && row
                        .process_after
                        .as_deref()
                        .and_then(parse_instant)
                        .is_some_and(|at| at > stopped_ms && at < until_ms)
                    && snapshot.acks.iter().any(|ack| ack.message_id == row.id)
            });
            for row in claimed_later {
                found.push(violation(
                    "§9.7 series",
                    format!(
                        "session {}: occurrence {} of series {series_id} was claimed after {action}",
                        session.session_id, row.id
                    ),
                ));
            }
        }
    }
    found
}

/// `(series, applied at, until, action)` for every applied cancel, and every pause until the
/// series' next resume (or forever).
fn stops(snapshot: &SessionSnapshot) -> Vec<(String, Millis, Millis, &'static str)> {
    let applied_at: BTreeMap<&str, Millis> = snapshot
        .delivered
        .iter()
        .filter(|d| d.status == status::DELIVERED)
        .filter_map(|d| Some((d.message_out_id.as_str(), parse_instant(&d.delivered_at)?)))
        .collect();
    let series_of = |task_id: &str| {
        snapshot
            .inbound
            .iter()
            .find(|row| row.id == task_id)
            .map(|row| row.series_id.clone().unwrap_or_else(|| row.id.clone()))
    };
    let mut actions = Vec::new();
    for row in snapshot.outbound.iter().filter(|r| r.kind == kind::SYSTEM) {
        let content = row.content_json();
        let action = content.get("action").and_then(Value::as_str).unwrap_or("");
        let task_id = content.get("taskId").and_then(Value::as_str).unwrap_or("");
        let (Some(at), Some(series)) = (applied_at.get(row.id.as_str()), series_of(task_id)) else {
            continue;
        };
        actions.push((series, *at, action.to_string()));
    }
    actions.sort_by_key(|(_, at, _)| *at);
    let mut stops = Vec::new();
    for (index, (series, at, action)) in actions.iter().enumerate() {
        let kind = match action.as_str() {
            "cancel_task" => "cancel",
            "pause_task" => "pause",
            _ => continue,
        };
        let resumed_ms = actions[index + 1..]
            .iter()
            .find(|(s, _, a)| s == series && a == "resume_task" && kind == "pause")
            .map_or(Millis::MAX, |(_, resumed, _)| *resumed);
        stops.push((series.clone(), *at, resumed_ms, kind));
    }
    stops
}

/// §9.8: at most `max_tries` tries; and with no fault injected, no try counted at all (a live
/// agent is never reset).
pub fn retries(ledger: &Ledger) -> Vec<Violation> {
    let mut found = Vec::new();
    for session in &ledger.sessions {
        for row in &session.snapshot.inbound {
            let problem = if row.tries > ledger.max_tries {
                Some(format!(
                    "{} tries, more than {}",
                    row.tries, ledger.max_tries
                ))
            } else if ledger.faults.none() && row.tries > 0 {
                Some(format!(
                    "{} tries in a run without faults: a live agent was reset",
                    row.tries
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                found.push(violation(
                    "§9.8 retries",
                    format!(
                        "session {}: {} {}: {problem}",
                        session.session_id, row.kind, row.id
                    ),
                ));
            }
        }
    }
    found
}

/// §9.9: every DB passes `integrity_check`; every row the channel received is still in its
/// session's outbound.db (no committed row lost).
pub fn durability(ledger: &Ledger) -> Vec<Violation> {
    let mut found = Vec::new();
    let files = ledger
        .sessions
        .iter()
        .flat_map(|s| s.integrity.iter().cloned())
        .chain([("central.db".to_string(), ledger.central_integrity.clone())]);
    for (file, rows) in files {
        if rows != ["ok"] {
            found.push(violation(
                "§9.9 durability",
                format!("{file}: integrity_check says {rows:?}"),
            ));
        }
    }
    let stored: BTreeSet<&str> = ledger
        .sessions
        .iter()
        .flat_map(|s| s.snapshot.outbound.iter().map(|r| r.id.as_str()))
        .collect();
    for delivery in &ledger.received {
        if !stored.contains(delivery.message_out_id.as_str()) {
            found.push(violation(
                "§9.9 durability",
                format!(
                    "{} reached the channel but is not in any outbound.db",
                    delivery.message_out_id
                ),
            ));
        }
    }
    found
}

/// The text of a chat row's content (for reports).
pub fn row_text(content: &str) -> String {
    text_of(&clawsim_core::model::parse_content(content)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawsim_core::inspect::{AckRow, DeliveredRow};
    use clawsim_core::model::{InboundRow, OutboundRow, Route};
    use serde_json::json;

    const NOW: Millis = 1_800_000_000_000;

    fn at(ms: Millis) -> String {
        clawsim_core::time::format_instant(ms)
    }

    fn inbound(id: &str, seq: i64, text: &str, status: &str) -> InboundRow {
        InboundRow {
            id: id.into(),
            seq: Some(seq),
            kind: kind::CHAT.into(),
            timestamp: at(NOW - 10_000),
            status: status.into(),
            process_after: None,
            recurrence: None,
            tries: 0,
            route: Route::default(),
            content: json!({"sender": "a", "text": text}).to_string(),
            series_id: None,
        }
    }

    fn outbound(id: &str, seq: i64, reply_to: &str, text: &str) -> OutboundRow {
        OutboundRow {
            id: id.into(),
            seq: Some(seq),
            in_reply_to: Some(reply_to.into()),
            timestamp: at(NOW - 5_000),
            deliver_after: None,
            recurrence: None,
            kind: kind::CHAT.into(),
            route: Route {
                channel_type: Some("test".into()),
                ..Route::default()
            },
            content: json!({ "text": text }).to_string(),
        }
    }

    fn delivered(id: &str) -> DeliveredRow {
        DeliveredRow {
            message_out_id: id.into(),
            delivered_at: at(NOW - 4_000),
            status: status::DELIVERED.into(),
            reason: None,
        }
    }

    fn received(row: &OutboundRow) -> OutboundDelivery {
        OutboundDelivery {
            message_out_id: row.id.clone(),
            seq: row.seq,
            session_id: "s1".into(),
            route: row.route.clone(),
            kind: row.kind.clone(),
            content: row.content_json(),
            files: Vec::new(),
        }
    }

    /// One message in, one answer out, everything recorded: a clean run.
    fn clean_ledger() -> Ledger {
        let reply = outbound(
            "out-1",
            3,
            "in-1",
            "Mock response to: <message>m0001x hi</message>",
        );
        let snapshot = SessionSnapshot {
            inbound: vec![inbound("in-1", 2, "m0001x hi", status::COMPLETED)],
            delivered: vec![delivered("out-1")],
            outbound: vec![reply.clone()],
            acks: vec![AckRow {
                message_id: "in-1".into(),
                status: status::COMPLETED.into(),
                status_changed: at(NOW - 5_000),
            }],
        };
        Ledger {
            sent: vec![SentMessage {
                marker: "m0001x".into(),
                answers_per_row_max: 1,
            }],
            received: vec![received(&reply)],
            sessions: vec![SessionEvidence {
                session_id: "s1".into(),
                snapshot,
                inbound_seqs_in_insert_order: vec![Some(2)],
                outbound_seqs_in_insert_order: vec![Some(3)],
                integrity: vec![("inbound.db".into(), vec!["ok".into()])],
            }],
            central_integrity: vec!["ok".into()],
            faults: FaultCounts::default(),
            max_tries: 5,
            now_ms: NOW,
        }
    }

    fn properties(ledger: &Ledger) -> Vec<&'static str> {
        check_all(ledger).into_iter().map(|v| v.property).collect()
    }

    #[test]
    fn a_clean_run_has_no_violation() {
        assert_eq!(check_all(&clean_ledger()), vec![]);
    }

    #[test]
    fn a_message_left_pending_is_a_loss() {
        let mut ledger = clean_ledger();
        ledger.sessions[0].snapshot.inbound[0].status = status::PENDING.into();
        assert_eq!(properties(&ledger), vec!["§9.1 no loss"]);
    }

    #[test]
    fn a_message_that_never_arrived_is_a_loss() {
        let mut ledger = clean_ledger();
        ledger.sent.push(SentMessage {
            marker: "m0002x".into(),
            answers_per_row_max: 1,
        });
        assert_eq!(properties(&ledger), vec!["§9.1 no loss"]);
    }

    #[test]
    fn a_future_or_paused_row_is_not_yet_due() {
        let mut ledger = clean_ledger();
        let mut later = inbound("in-2", 4, "later", status::PENDING);
        later.process_after = Some(at(NOW + 60_000));
        let paused = inbound("in-3", 6, "paused", status::PAUSED);
        ledger.sessions[0].snapshot.inbound.extend([later, paused]);
        ledger.sessions[0]
            .inbound_seqs_in_insert_order
            .extend([Some(4), Some(6)]);
        assert_eq!(check_all(&ledger), vec![]);
    }

    #[test]
    fn a_second_send_of_one_row_is_a_duplicate_unless_a_host_crashed() {
        let mut ledger = clean_ledger();
        let again = ledger.received[0].clone();
        ledger.received.push(again);
        // The same answer twice also quotes the marker twice.
        assert_eq!(
            properties(&ledger),
            vec!["§9.2 no duplicate", "§9.3a one answer"]
        );
        ledger.faults.host_crashes = 1;
        assert_eq!(properties(&ledger), vec!["§9.3a one answer"]);
    }

    #[test]
    fn an_unrecorded_row_and_a_recorded_but_unreceived_row_are_lost_output() {
        let mut ledger = clean_ledger();
        ledger.sessions[0].snapshot.delivered.clear();
        assert_eq!(properties(&ledger), vec!["§9.3 no lost output"]);
        let mut ledger = clean_ledger();
        ledger.received.clear();
        assert_eq!(properties(&ledger), vec!["§9.3 no lost output"]);
    }

    #[test]
    fn an_undeliverable_row_needs_a_reason() {
        let mut ledger = clean_ledger();
        ledger.received.clear();
        let record = &mut ledger.sessions[0].snapshot.delivered[0];
        record.status = status::UNDELIVERABLE.into();
        assert_eq!(properties(&ledger), vec!["§9.3 no lost output"]);
        ledger.sessions[0].snapshot.delivered[0].reason = Some("no adapter".into());
        assert_eq!(check_all(&ledger), vec![]);
    }

    #[test]
    fn a_replayed_turn_is_a_second_answer() {
        let mut ledger = clean_ledger();
        let second = outbound(
            "out-2",
            5,
            "in-1",
            "Mock response to: <message>m0001x hi</message>",
        );
        ledger.received.push(received(&second));
        ledger.sessions[0].snapshot.outbound.push(second);
        ledger.sessions[0]
            .snapshot
            .delivered
            .push(delivered("out-2"));
        ledger.sessions[0]
            .outbound_seqs_in_insert_order
            .push(Some(5));
        assert_eq!(properties(&ledger), vec!["§9.3a one answer"]);
        ledger.sent[0].answers_per_row_max = 2;
        assert_eq!(check_all(&ledger), vec![]);
    }

    #[test]
    fn seq_parity_uniqueness_and_order_are_checked() {
        let mut ledger = clean_ledger();
        ledger.sessions[0].inbound_seqs_in_insert_order = vec![Some(2), Some(3)];
        assert_eq!(properties(&ledger), vec!["§9.4 seq"]);
        ledger.sessions[0].inbound_seqs_in_insert_order = vec![Some(4), Some(2)];
        assert_eq!(properties(&ledger), vec!["§9.4 seq"]);
        ledger.sessions[0].inbound_seqs_in_insert_order = vec![Some(2)];
        ledger.sessions[0].outbound_seqs_in_insert_order = vec![Some(3), Some(3)];
        assert_eq!(properties(&ledger), vec!["§9.4 seq"]);
    }

    #[test]
    fn an_answer_before_process_after_is_early() {
        let mut ledger = clean_ledger();
        ledger.sessions[0].snapshot.inbound[0].process_after = Some(at(NOW - 4_000));
        // The answer (NOW - 5 s) and the claim (NOW - 5 s) both predate it.
        let found = check_all(&ledger);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|v| v.property == "§9.6 time"));
    }

    /// The soak's case: killed after its answer, before its ack; the sweep retried it with a
    /// backoff that ends after the answer.
    #[test]
    fn an_answer_of_an_earlier_try_is_not_early_against_the_retry_backoff() {
        let mut ledger = clean_ledger();
        let row = &mut ledger.sessions[0].snapshot.inbound[0];
        row.process_after = Some(at(NOW - 4_000));
        row.tries = 1;
        assert_eq!(nothing_early(&ledger), vec![]);
    }

    fn task(id: &str, seq: i64, series: &str, after_ms: Millis, status: &str) -> InboundRow {
        InboundRow {
            kind: kind::TASK.into(),
            process_after: Some(at(after_ms)),
            series_id: Some(series.into()),
            content: json!({"prompt": "t0001x"}).to_string(),
            ..inbound(id, seq, "", status)
        }
    }

    /// The agent's `schedule_task` request for the prompt `task` rows carry.
    fn add_schedule_request(ledger: &mut Ledger, seq: i64) {
        let session = &mut ledger.sessions[0];
        let id = format!("out-req-{seq}");
        let mut request = outbound(&id, seq, "in-1", "");
        request.kind = kind::SYSTEM.into();
        request.content = json!({"action": "schedule_task", "prompt": "t0001x"}).to_string();
        session.snapshot.outbound.push(request);
        session.outbound_seqs_in_insert_order.push(Some(seq));
        session.snapshot.delivered.push(delivered(&id));
    }

    #[test]
    fn an_occurrence_claimed_after_its_series_was_cancelled_is_a_violation() {
        let mut ledger = clean_ledger();
        add_schedule_request(&mut ledger, 5);
        let session = &mut ledger.sessions[0];
        session
            .snapshot
            .inbound
            .push(task("task-1", 4, "task-1", NOW - 9_000, status::COMPLETED));
        session
            .snapshot
            .inbound
            .push(task("task-2", 6, "task-1", NOW - 1_000, status::COMPLETED));
        session
            .inbound_seqs_in_insert_order
            .extend([Some(4), Some(6)]);
        let mut cancel = outbound("out-9", 7, "in-1", "");
        cancel.kind = kind::SYSTEM.into();
        cancel.content = json!({"action": "cancel_task", "taskId": "task-1"}).to_string();
        session.snapshot.outbound.push(cancel);
        session.outbound_seqs_in_insert_order.push(Some(7));
        session.snapshot.delivered.push(DeliveredRow {
            delivered_at: at(NOW - 3_000),
            ..delivered("out-9")
        });
        assert_eq!(check_all(&ledger), vec![]);
        ledger.sessions[0].snapshot.acks.push(AckRow {
            message_id: "task-2".into(),
            status: status::COMPLETED.into(),
            status_changed: at(NOW),
        });
        assert_eq!(properties(&ledger), vec!["§9.7 series"]);
    }

    #[test]
    fn two_rows_for_one_occurrence_are_a_violation() {
        let mut ledger = clean_ledger();
        add_schedule_request(&mut ledger, 5);
        let session = &mut ledger.sessions[0];
        session
            .snapshot
            .inbound
            .push(task("task-1", 4, "task-1", NOW - 9_000, status::COMPLETED));
        session
            .snapshot
            .inbound
            .push(task("task-2", 6, "task-1", NOW - 9_000, status::COMPLETED));
        session
            .inbound_seqs_in_insert_order
            .extend([Some(4), Some(6)]);
        assert_eq!(properties(&ledger), vec!["§9.7 series"]);
    }

    #[test]
    fn a_schedule_request_applied_twice_is_a_duplicate() {
        let mut ledger = clean_ledger();
        let session = &mut ledger.sessions[0];
        let mut request = outbound("out-9", 5, "in-1", "");
        request.kind = kind::SYSTEM.into();
        request.content = json!({"action": "schedule_task", "prompt": "t0001x"}).to_string();
        session.snapshot.outbound.push(request);
        session.outbound_seqs_in_insert_order.push(Some(5));
        session.snapshot.delivered.push(delivered("out-9"));
        session
            .snapshot
            .inbound
            .push(task("task-1", 4, "task-1", NOW - 9_000, status::COMPLETED));
        session.inbound_seqs_in_insert_order.push(Some(4));
        assert_eq!(check_all(&ledger), vec![]);
        let session = &mut ledger.sessions[0];
        session
            .snapshot
            .inbound
            .push(task("task-2", 6, "task-2", NOW - 8_000, status::COMPLETED));
        session.inbound_seqs_in_insert_order.push(Some(6));
        assert_eq!(properties(&ledger), vec!["§9.2 no duplicate"]);
    }

    #[test]
    fn tries_are_bounded_and_zero_without_faults() {
        let mut ledger = clean_ledger();
        ledger.sessions[0].snapshot.inbound[0].tries = 1;
        assert_eq!(properties(&ledger), vec!["§9.8 retries"]);
        ledger.faults.container_pauses = 1;
        assert_eq!(check_all(&ledger), vec![]);
        ledger.sessions[0].snapshot.inbound[0].tries = 6;
        assert_eq!(properties(&ledger), vec!["§9.8 retries"]);
    }

    #[test]
    fn a_corrupt_file_or_a_vanished_row_breaks_durability() {
        let mut ledger = clean_ledger();
        ledger.central_integrity = vec!["*** in database main ***".into()];
        assert_eq!(properties(&ledger), vec!["§9.9 durability"]);
        let mut ledger = clean_ledger();
        let mut ghost = ledger.received[0].clone();
        ghost.message_out_id = "out-ghost".into();
        ghost.content = json!({ "text": "not an answer" });
        ledger.received.push(ghost);
        assert_eq!(properties(&ledger), vec!["§9.9 durability"]);
    }
}
