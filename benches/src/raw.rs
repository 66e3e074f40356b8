//! Raw SQLite, as BASELINE.md measured it: one connection, one prepared INSERT of a
//! `messages_in`-shaped row, `journal_mode=DELETE`, either one transaction per row (with
//! `synchronous=FULL` or `OFF`) or all rows in one transaction. This is the floor a host write
//! cannot go below at the same durability.
//!
//! Also the disk commit-rate check: BASELINE.md's disk figures are only meaningful beside the
//! rate at which the disk took small `synchronous=FULL` commits at the time, so every disk bench
//! run measures it before and after.

use crate::place::Place;
use crate::run_mode::{commit_rate_commits, is_full_run, is_profiling};
use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::live::LiveEnv;
use rusqlite::{params, Connection};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `PRAGMA synchronous` of a raw connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// No fsync at all: what SQLite costs without durability.
    Off,
    /// Syncs at critical moments only.
    Normal,
    /// Every commit waits for its fsyncs (PROTOCOL §2, BASELINE.md's raw rows).
    Full,
    /// FULL plus a directory sync after the journal is deleted (core's setting since it was
    /// found that FULL can lose the last commit of a DELETE-journal file on power loss).
    Extra,
}

impl Synchronous {
    /// The name `PRAGMA synchronous` takes.
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }

    fn from_level(level: i64) -> Option<Synchronous> {
        match level {
            0 => Some(Synchronous::Off),
            1 => Some(Synchronous::Normal),
            2 => Some(Synchronous::Full),
            3 => Some(Synchronous::Extra),
            _ => None,
        }
    }
}

/// The `synchronous` level core's own connections run at, read from a connection core opens, so
/// a write path is held against raw SQLite at the same durability whatever core settles on.
pub fn core_synchronous() -> Synchronous {
    let place = if Place::Tmpfs.is_available() {
        Place::Tmpfs
    } else {
        Place::Disk
    };
    let dir = place.scratch_dir("core-pragma");
    let path = dir.path().join("inbound.db");
    let db = Db::open(&LiveEnv::new(), &path, Schema::Inbound, Access::ReadWrite)
        .unwrap_or_else(|e| panic!("core cannot open {}: {e}", path.display()));
    let level: i64 = db
        .conn()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("PRAGMA synchronous on {}: {e}", path.display()));
    Synchronous::from_level(level)
        .unwrap_or_else(|| panic!("core runs at unknown synchronous level {level}"))
}

/// The reference's `messages_in` table (schema version 1), nothing more.
const RAW_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages_in (
    id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
    status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT,
    tries INTEGER DEFAULT 0, platform_id TEXT, channel_type TEXT, thread_id TEXT,
    content TEXT NOT NULL);";

/// Opens (creating) a raw `messages_in` file with `journal_mode=DELETE` and `synchronous`.
pub fn open_raw_inbound(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous={}; {RAW_SCHEMA}",
        synchronous.pragma()
    ))?;
    Ok(conn)
}

/// Inserts row number `n` (id `raw-n`, seq `2n`) with the cached prepared INSERT. Outside a
/// transaction this is one autocommit transaction.
pub fn insert_raw_row(conn: &Connection, n: u64) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages_in (id, seq, kind, timestamp, status, platform_id, channel_type,
            thread_id, content) VALUES (?1, ?2, 'chat', ?3, 'pending', 'chat-1', 'bench', NULL, ?4)",
    )?;
    insert.execute(params![
        format!("raw-{n}"),
        2 * n as i64,
        "2026-11-24T21:17:53.123Z",
        format!(r#"{{"sender":"Ada","senderId":"u-1","text":"message {n}"}}"#),
    ])?;
    Ok(())
}

/// Inserts rows `first..first + count` in one transaction.
pub fn insert_rows_in_one_transaction(
    conn: &Connection,
    first: u64,
    count: u64,
) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    for n in first..first + count {
        insert_raw_row(conn, n)?;
    }
    conn.execute_batch("COMMIT")
}

/// Small `synchronous=FULL` DELETE-journal commits per second in `dir` (BASELINE.md's disk
/// check: one INSERT per commit, `commits` of them).
pub fn commit_rate_per_s(dir: &Path, commits: u32) -> rusqlite::Result<f64> {
    let path = dir.join(format!("commit-rate-{}.db", std::process::id()));
    let conn = open_raw_inbound(&path, Synchronous::Full)?;
    let started = Instant::now();
    for n in 0..commits as u64 {
        insert_raw_row(&conn, n)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(conn);
    let _ = std::fs::remove_file(&path);
    Ok(commits as f64 / seconds)
}

/// Where the commit-rate log goes: beside criterion's own results.
pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// Measures the disk's commit rate (in a fresh directory under [`Place::Disk`]), prints it,
/// and appends `<label> <commits/s>` to `target/criterion/disk-commit-rate.log` (read by
/// `bench-report`). Each bench group checks it just before it runs, labelled with its name, so
/// each disk figure has the disk's state of that moment beside it.
pub fn check_disk_commit_rate(label: &str) -> Option<f64> {
    if !Place::Disk.is_available() {
        return None;
    }
    let dir = Place::Disk.scratch_dir("commit-rate");
    let commits = commit_rate_commits();
    let rate = commit_rate_per_s(dir.path(), commits)
        .unwrap_or_else(|e| panic!("commit-rate check in {} failed: {e}", dir.path().display()));
    println!(
        "disk commit rate ({label}): {rate:.0} commits/s ({commits} commits, synchronous=FULL, \
         journal_mode=DELETE, in {})",
        Place::Disk.root().display()
    );
    let log = criterion_dir();
    if is_full_run() && !is_profiling() && std::fs::create_dir_all(&log).is_ok() {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log.join("disk-commit-rate.log"))
        {
            let _ = writeln!(file, "{label} {rate:.0}");
        }
    }
    Some(rate)
}
