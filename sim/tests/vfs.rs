//! The SQLite VFS over SimFs: locks per profile, time and sleep from the world, faults as SQLite
//! error codes, single-writer violations, process crashes, WAL.
//!
//! Each test opens real rusqlite connections on the VFS names SimFs hands out and checks one
//! promise: that a lock a bind mount shares is not shared under virtiofs, that a busy timeout
//! is paid in simulated time, that an fsync error surfaces as SQLITE_IOERR_FSYNC, that a dead
//! process's connection can no longer touch the disk.

use clawsim_sim::{DoubtCause, FsFault, MountProfile, Side, SimFs};
use rusqlite::{ffi, Connection, ErrorCode, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const T0_MS: i64 = 1_800_000_000_000;

fn disk(profile: MountProfile) -> SimFs {
    let fs = SimFs::new(profile, 11);
    fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
    fs
}

fn open_on(vfs: &str, path: &str, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags_and_vfs(path, flags, vfs)?;
    conn.busy_timeout(std::time::Duration::ZERO)?;
    Ok(conn)
}

fn open_rw(vfs: &str, path: &str) -> Connection {
    let conn = open_on(
        vfs,
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .unwrap();
    conn.execute_batch("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;")
        .unwrap();
    conn
}

fn open_ro(vfs: &str, path: &str) -> Connection {
    open_on(vfs, path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn extended_code(error: &rusqlite::Error) -> i32 {
    match error {
        rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
        other => panic!("not a SQLite failure: {other}"),
    }
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A clock shared by both sides (the container `skew_ms` ahead) that sleeping advances.
fn install_clock(fs: &SimFs, skew_ms: i64) -> Arc<AtomicI64> {
    let now_ms = Arc::new(AtomicI64::new(T0_MS));
    let (read, slept) = (now_ms.clone(), now_ms.clone());
    fs.set_time_hooks(
        Arc::new(move |side| {
            read.load(Ordering::SeqCst) + if side == Side::Container { skew_ms } else { 0 }
        }),
        Arc::new(move |_, us| {
            slept.fetch_add(us / 1000, Ordering::SeqCst);
        }),
    );
    now_ms
}

#[test]
fn sqlite_files_live_in_simfs_and_commits_reach_the_durable_image() {
    let fs = disk(MountProfile::Bind);
    let conn = open_rw(&fs.vfs_name(Side::Host), "/s/a.db");
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    assert_eq!(count(&conn), 2);
    assert!(!fs.exists(Side::Host, Path::new("/s/a.db-journal")));
    let durable = fs.durable_image(Path::new("/s/a.db")).unwrap();
    assert_eq!(&durable[..16], b"SQLite format 3\0");
    assert_eq!(
        Some(durable),
        fs.visible_image(Side::Host, Path::new("/s/a.db"))
    );
}

/// Both sides open one DB for writing and try to hold EXCLUSIVE at once.
fn both_sides_exclusive(profile: MountProfile) -> rusqlite::Result<()> {
    let fs = disk(profile);
    let host = open_rw(&fs.vfs_name(Side::Host), "/s/x.db");
    host.execute_batch("CREATE TABLE t(x);").unwrap();
    let container = open_rw(&fs.vfs_name(Side::Container), "/s/x.db");
    host.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    container.execute_batch("BEGIN EXCLUSIVE;")
}

#[test]
fn under_bind_host_and_container_cannot_both_hold_exclusive() {
    let error = both_sides_exclusive(MountProfile::Bind).unwrap_err();
    assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    let error = both_sides_exclusive(MountProfile::PowerLoss).unwrap_err();
    assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
}

#[test]
fn under_virtiofs_host_and_container_both_get_exclusive() {
    both_sides_exclusive(MountProfile::Virtiofs).unwrap();
}

#[test]
fn under_virtiofs_one_side_still_locks_against_itself() {
    let fs = disk(MountProfile::Virtiofs);
    let vfs = fs.vfs_name(Side::Host);
    let first = open_rw(&vfs, "/s/x.db");
    first.execute_batch("CREATE TABLE t(x);").unwrap();
    let second = open_rw(&vfs, "/s/x.db");
    first.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let error = second.execute_batch("BEGIN EXCLUSIVE;").unwrap_err();
    assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
}

#[test]
fn a_busy_timeout_is_paid_in_simulated_time_and_ends_in_sqlite_busy() {
    let fs = disk(MountProfile::Bind);
    let now_ms = install_clock(&fs, 0);
    let vfs = fs.vfs_name(Side::Host);
    let holder = open_rw(&vfs, "/s/b.db");
    holder.execute_batch("CREATE TABLE t(x);").unwrap();
    let waiter = open_rw(&vfs, "/s/b.db");
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    waiter
        .busy_timeout(std::time::Duration::from_millis(5_000))
        .unwrap();
    let error = waiter.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
    assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    assert_eq!(now_ms.load(Ordering::SeqCst) - T0_MS, 5_000);
    assert_eq!(fs.counters()["fs.slept_us"], 5_000_000);
}

#[test]
fn an_injected_busy_is_absorbed_by_the_busy_handler_after_one_short_sleep() {
    let fs = disk(MountProfile::Bind);
    let now_ms = install_clock(&fs, 0);
    let conn = open_rw(&fs.vfs_name(Side::Host), "/s/b.db");
    conn.execute_batch("CREATE TABLE t(x);").unwrap();
    conn.busy_timeout(std::time::Duration::from_millis(5_000))
        .unwrap();
    fs.inject(FsFault::Busy { side: Side::Host });
    conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(now_ms.load(Ordering::SeqCst) - T0_MS, 1);
    conn.busy_timeout(std::time::Duration::ZERO).unwrap();
    fs.inject(FsFault::Busy { side: Side::Host });
    let error = conn.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    assert_eq!(fs.counters()["fault.busy.fired"], 2);
}

#[test]
fn sqlite_now_is_the_sides_clock() {
    let fs = disk(MountProfile::Bind);
    install_clock(&fs, 90_000);
    let now = |side| -> i64 {
        let conn = open_rw(&fs.vfs_name(side), "/s/c.db");
        conn.query_row(
            "SELECT CAST(unixepoch('now', 'subsec') * 1000 AS INTEGER)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(now(Side::Host), T0_MS);
    assert_eq!(now(Side::Container), T0_MS + 90_000);
}

#[test]
fn a_write_open_of_the_other_sides_db_is_recorded_as_a_violation() {
    let fs = disk(MountProfile::Bind);
    fs.set_writer("inbound.db", Side::Host);
    fs.set_writer("outbound.db", Side::Container);
    let host = open_rw(&fs.vfs_name(Side::Host), "/s/inbound.db");
    host.execute_batch("CREATE TABLE t(x);").unwrap();
    let reader = open_ro(&fs.vfs_name(Side::Container), "/s/inbound.db");
    assert_eq!(count(&reader), 0);
    assert!(fs.violations().is_empty(), "{:?}", fs.violations());
    let _writer = open_rw(&fs.vfs_name(Side::Container), "/s/inbound.db");
    assert_eq!(
        fs.violations(),
        ["container opened /s/inbound.db for writing"]
    );
    let _outbound = open_rw(&fs.vfs_name(Side::Container), "/s/outbound.db");
    assert_eq!(fs.violations().len(), 1);
}

#[test]
fn an_fsync_error_fails_the_commit_and_is_logged_as_maybe_durable() {
    let fs = disk(MountProfile::PowerLoss);
    let conn = open_rw(&fs.vfs_name(Side::Host), "/s/f.db");
    conn.execute_batch("CREATE TABLE t(x);").unwrap();
    fs.inject(FsFault::FsyncError { side: Side::Host });
    let error = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
    assert_eq!(extended_code(&error), ffi::SQLITE_IOERR_FSYNC);
    let log = fs.maybe_durable();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, Path::new("/s/f.db"));
    assert_eq!(log[0].file, Path::new("/s/f.db-journal"));
    assert_eq!(log[0].cause, DoubtCause::FsyncError { nth: 1 });
    // The failed transaction rolled back; the file is sound and writable.
    assert_eq!(count(&conn), 0);
    conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn disk_full_fails_the_transaction_with_sqlite_full() {
    let fs = disk(MountProfile::Bind);
    let conn = open_rw(&fs.vfs_name(Side::Host), "/s/full.db");
    conn.execute_batch("CREATE TABLE t(x);").unwrap();
    fs.inject(FsFault::DiskFull {
        side: Side::Host,
        ops: 1,
    });
    let error = conn
        .execute("INSERT INTO t VALUES (randomblob(9000))", [])
        .unwrap_err();
    assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DiskFull));
    conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(count(&conn), 1);
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn a_dead_process_connection_fails_and_cannot_touch_the_next_incarnations_files() {
    let fs = disk(MountProfile::Bind);
    let first_vfs = fs.process_vfs_name(Side::Container, "session-1");
    let dying = open_rw(&first_vfs, "/s/outbound.db");
    dying
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    // Mid-transaction: the journal exists, with the rollback image.
    dying
        .execute_batch("BEGIN; INSERT INTO t VALUES (2);")
        .unwrap();
    fs.crash_named_process(Side::Container, "session-1");
    assert!(dying.execute_batch("COMMIT;").is_err());

    let second_vfs = fs.process_vfs_name(Side::Container, "session-1");
    assert_ne!(
        first_vfs, second_vfs,
        "a restarted process gets a fresh VFS"
    );
    let restarted = open_rw(&second_vfs, "/s/outbound.db");
    assert_eq!(count(&restarted), 1, "the open transaction is not there");
    restarted
        .execute_batch("BEGIN; INSERT INTO t VALUES (4);")
        .unwrap();
    // Closing the dead connection must not delete the live journal or write anything.
    drop(dying);
    assert!(fs.exists(Side::Container, Path::new("/s/outbound.db-journal")));
    restarted.execute_batch("COMMIT;").unwrap();
    assert_eq!(count(&restarted), 2);
    assert_eq!(integrity(&restarted), "ok");
}

#[test]
fn crashing_one_named_process_leaves_the_others_running() {
    let fs = disk(MountProfile::Bind);
    let one = open_rw(&fs.process_vfs_name(Side::Container, "one"), "/s/1.db");
    let two = open_rw(&fs.process_vfs_name(Side::Container, "two"), "/s/2.db");
    fs.crash_named_process(Side::Container, "one");
    assert!(one.execute_batch("CREATE TABLE t(x);").is_err());
    two.execute_batch("CREATE TABLE t(x);").unwrap();
}

#[test]
fn wal_mode_works_and_survives_a_machine_crash() {
    let fs = disk(MountProfile::PowerLoss);
    let writer = open_rw(&fs.vfs_name(Side::Host), "/s/w.db");
    let mode: String = writer
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    writer
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    assert!(fs.exists(Side::Host, Path::new("/s/w.db-wal")));
    let read_write = OpenFlags::SQLITE_OPEN_READ_WRITE;
    let reader = open_on(&fs.vfs_name(Side::Host), "/s/w.db", read_write).unwrap();
    assert_eq!(count(&reader), 2);
    writer.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert_eq!(count(&reader), 3);
    writer
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .unwrap();
    writer.execute("INSERT INTO t VALUES (4)", []).unwrap();
    fs.crash_machine();
    drop((writer, reader));
    let after = open_on(&fs.vfs_name(Side::Host), "/s/w.db", read_write).unwrap();
    assert_eq!(integrity(&after), "ok");
    assert_eq!(count(&after), 4, "every commit was synced to the WAL");
}

#[test]
fn vfs_names_are_unique_per_world_side_and_process() {
    let (a, b) = (disk(MountProfile::Bind), disk(MountProfile::Bind));
    let names = [
        a.vfs_name(Side::Host),
        a.vfs_name(Side::Container),
        a.process_vfs_name(Side::Container, "s1"),
        b.vfs_name(Side::Host),
    ];
    for (i, x) in names.iter().enumerate() {
        for y in &names[i + 1..] {
            assert_ne!(x, y);
        }
    }
    assert_eq!(a.vfs_name(Side::Host), names[0], "stable while alive");
}

#[test]
fn a_dropped_world_unregisters_its_vfs() {
    let fs = disk(MountProfile::Bind);
    let name = fs.vfs_name(Side::Host);
    drop(fs);
    let error = Connection::open_with_flags_and_vfs(
        "/s/a.db",
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        name.as_str(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("no such vfs"), "{error}");
}
