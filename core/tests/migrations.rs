//! Migrations (PROTOCOL §2: "a schema change must open DBs written by an older version"): session
//! DBs written with the reference v1 schema (`user_version` 0) open, keep every row, and gain
//! the columns and indexes this build relies on; the host serves such a session as it is.
//!
//! The story behind these: a host upgraded in place finds session folders written by the
//! reference — no `series_id`, no `delivered.status`, no `delivery_attempts`, rows without a
//! seq — and must neither lose those rows nor refuse the session. The host never writes
//! `outbound.db`, so it must also read one that the (old) container has not migrated.

mod host_support;

use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::host::SessionMode;
use host_support::*;
use rusqlite::Connection;
use std::path::Path;

/// The reference schema, exactly (PROTOCOL §2).
const V1_INBOUND: &str = "
    CREATE TABLE messages_in (
      id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
      status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT,
      tries INTEGER DEFAULT 0, platform_id TEXT, channel_type TEXT, thread_id TEXT,
      content TEXT NOT NULL);
    CREATE TABLE delivered (message_out_id TEXT PRIMARY KEY, delivered_at TEXT NOT NULL);";

const V1_OUTBOUND: &str = "
    CREATE TABLE messages_out (
      id TEXT PRIMARY KEY, seq INTEGER UNIQUE, in_reply_to TEXT, timestamp TEXT NOT NULL,
      deliver_after TEXT, recurrence TEXT, kind TEXT NOT NULL, platform_id TEXT,
      channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
    CREATE TABLE processing_ack (message_id TEXT PRIMARY KEY, status TEXT NOT NULL,
      status_changed TEXT NOT NULL);";

/// Writes a v1 `inbound.db` and `outbound.db` into `dir`, as the reference would have left them.
fn write_v1_session(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let inbound = Connection::open(dir.join("inbound.db")).unwrap();
    inbound.execute_batch(V1_INBOUND).unwrap();
    inbound
        .execute_batch(
            "INSERT INTO messages_in (id, seq, kind, timestamp, status, platform_id, channel_type, content)
               VALUES ('m-1', 2, 'chat', '2026-02-28T10:00:00.000Z', 'pending', 'room-1', 'chat',
                       '{\"sender\":\"Ana\",\"text\":\"old hello\"}');
             INSERT INTO messages_in (id, seq, kind, timestamp, process_after, recurrence, content)
               VALUES ('t-1', 4, 'task', '2026-02-28 10:00:01', '2026-03-02 07:00:00', '0 7 * * *',
                       '{\"prompt\":\"daily\"}');
             INSERT INTO delivered VALUES ('o-1', '2026-02-28 10:00:05');",
        )
        .unwrap();
    let outbound = Connection::open(dir.join("outbound.db")).unwrap();
    outbound.execute_batch(V1_OUTBOUND).unwrap();
    outbound
        .execute_batch(
            "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, kind, platform_id, channel_type, content)
               VALUES ('o-1', 3, 'm-1', '2026-02-28T10:00:04Z', 'chat', 'room-1', 'chat',
                       '{\"text\":\"already sent\"}');
             INSERT INTO messages_out (id, seq, in_reply_to, timestamp, kind, platform_id, channel_type, content)
               VALUES ('o-2', 5, 'm-1', '2026-02-28T10:00:06Z', 'chat', 'room-1', 'chat',
                       '{\"text\":\"never sent\"}');
             INSERT INTO messages_out (id, seq, timestamp, kind, platform_id, channel_type, content)
               VALUES ('o-0', NULL, '2026-02-28 09:59:00', 'chat', 'room-1', 'chat',
                       '{\"text\":\"no seq\"}');
             INSERT INTO processing_ack VALUES ('m-1', 'completed', '2026-02-28T10:00:06Z');",
        )
        .unwrap();
}

fn names(conn: &Connection, kind: &str, table: &str) -> Vec<String> {
    let sql = if kind == "column" {
        format!("SELECT name FROM pragma_table_info('{table}') ORDER BY name")
    } else {
        format!("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' ORDER BY name")
    };
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

#[test]
fn v1_inbound_db_keeps_its_rows_and_gains_the_new_columns() {
    let env = test_env();
    let dir = env.dir.path().join("v1");
    write_v1_session(&dir);
    let db = Db::open(
        &*env,
        &dir.join("inbound.db"),
        Schema::Inbound,
        Access::ReadWrite,
    )
    .unwrap();
    let conn = db.conn();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, Schema::Inbound.current_version());
    assert!(names(conn, "column", "messages_in").contains(&"series_id".to_string()));
    let delivered_columns = names(conn, "column", "delivered");
    assert!(
        delivered_columns.contains(&"status".into())
            && delivered_columns.contains(&"reason".into())
    );
    assert!(names(conn, "column", "delivery_attempts").contains(&"next_attempt_at".into()));
    assert_eq!(
        names(conn, "column", "counted_claims"),
        ["claimed_at", "message_id"],
        "the claims counted as a try survive a host restart"
    );
    let indexes = names(conn, "index", "messages_in");
    for index in [
        "messages_in_status_seq",
        "messages_in_series",
        "messages_in_recurring",
    ] {
        assert!(
            indexes.contains(&index.to_string()),
            "{index} missing from {indexes:?}"
        );
    }

    let rows: Vec<(String, i64, Option<String>)> = {
        let mut stmt = conn
            .prepare("SELECT id, seq, series_id FROM messages_in ORDER BY seq")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    };
    assert_eq!(
        rows,
        vec![
            ("m-1".into(), 2, None),
            ("t-1".into(), 4, Some("t-1".into()))
        ],
        "every row kept; a task is its own series"
    );
    let old_delivery: (String, String) = conn
        .query_row(
            "SELECT delivered_at, status FROM delivered WHERE message_out_id = 'o-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        old_delivery,
        ("2026-02-28 10:00:05".into(), "delivered".into())
    );
}

#[test]
fn v1_outbound_db_migrated_by_its_writer_keeps_its_rows_and_gains_indexes() {
    let env = test_env();
    let dir = env.dir.path().join("v1");
    write_v1_session(&dir);
    let db = Db::open(
        &*env,
        &dir.join("outbound.db"),
        Schema::Outbound,
        Access::ReadWrite,
    )
    .unwrap();
    let conn = db.conn();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM messages_out", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3);
    assert!(names(conn, "index", "messages_out").contains(&"messages_out_in_reply_to".into()));
    assert!(names(conn, "index", "processing_ack").contains(&"processing_ack_status".into()));
}

#[test]
fn the_host_serves_a_v1_session_without_writing_its_outbound_db() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let first = host.route(&chat("new", None)).unwrap();
    let session = host.session(&first.session_id).unwrap();
    drop(host);
    // The session folder as the reference left it.
    std::fs::remove_dir_all(&session.paths.root).unwrap();
    write_v1_session(&session.paths.root);
    std::fs::create_dir_all(session.paths.outbox()).unwrap();

    let mut host = world.open();
    let sent = deliver(&mut host, &session.id, accept);
    assert_eq!(
        texts(&sent),
        ["no seq", "never sent"],
        "unnumbered rows first, then by seq"
    );

    let routed = host.route(&chat("after the upgrade", None)).unwrap();
    assert_eq!(routed.seq, 6, "numbering continues above the old rows");
    assert_eq!(host.sweep_session(&session.id).unwrap().acks_synced, 1);
    assert_eq!(
        inbound_row(&world.env, &session.paths, "m-1").status,
        "completed"
    );

    let outbound = Connection::open(session.paths.outbound_db()).unwrap();
    let version: i64 = outbound
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 0, "the host never migrates (writes) outbound.db");
}
