//! A writer killed inside a write transaction leaves a hot journal beside its DB
//! (`journal_mode=DELETE`). Only a read-write connection may roll it back; a read-only one
//! fails with "attempt to write a readonly database" until someone does. The host opens
//! `outbound.db` read-only (single writer), so after a container died mid-transaction the host
//! cannot read that file until the session's next container opens it and rolls the journal
//! back. If the host waits to read the file before it wakes that container, it waits forever.
//!
//! The e2e suite met this when a host restart killed a container mid-write (the restart test
//! stalled with every sweep failing); the host now wakes the container whatever it could read. This test makes the state deterministically: the host is
//! stopped while a message is claimed, a helper process (this test binary, re-executed) is
//! SIGKILLed inside a write transaction on `outbound.db` after SQLite spilled pages to the file,
//! and a host is started again. The message must still be answered: §9.1 no loss, judged by the
//! oracle with every other property.

use clawsim_core::model::status;
use clawsim_e2e::world::World;
use clawsim_oracle::Property;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Names the DB the helper process writes to; unset, the helper test does nothing.
const HELPER_DB_ENV: &str = "CLAWSIM_E2E_HOT_JOURNAL_DB";

/// The helper: begins a write transaction big enough to spill pages into the DB file (so the
/// journal is synced and hot), says READY, and waits to be killed.
#[test]
fn helper_writer_that_dies_inside_a_transaction() {
    let Ok(path) = std::env::var(HELPER_DB_ENV) else {
        return;
    };
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE; PRAGMA cache_size=2; PRAGMA cache_spill=1; BEGIN IMMEDIATE;",
    )
    .unwrap();
    for i in 0..3_000 {
        conn.execute(
            "INSERT INTO processing_ack (message_id, status, status_changed)
             VALUES (?1, 'processing', 'never committed')",
            [format!("uncommitted-{i:05}-{}", "x".repeat(100))],
        )
        .unwrap();
    }
    println!("READY");
    std::thread::sleep(Duration::from_secs(600));
}

/// Runs the helper on `db` and SIGKILLs it mid-transaction; the journal is left hot.
fn leave_hot_journal(db: &Path) {
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_writer_that_dies_inside_a_transaction",
            "--nocapture",
        ])
        .env(HELPER_DB_ENV, db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = helper.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("READY"));
    helper.kill().unwrap();
    helper.wait().unwrap();
    assert!(ready, "the helper never began its transaction");
    let journal = db.with_file_name("outbound.db-journal");
    assert!(journal.exists(), "no hot journal at {}", journal.display());
}

#[test]
fn a_hot_journal_left_by_a_killed_writer_does_not_stall_the_session() {
    let Some(mut world) = World::start("recovery-hot-journal") else {
        return;
    };
    let marker = world.send("@mock active; think 3s");
    let session_id = world.session_id();
    world.wait_until("the message claimed", ANSWER_TIMEOUT, |sessions| {
        let acks = &sessions[0].snapshot.acks;
        acks.iter().any(|ack| ack.status == status::PROCESSING)
    });
    world.stop_host();
    let paths = world.config().session_paths("agent", &session_id);
    leave_hot_journal(&paths.outbound_db());
    world.start_host();
    world.wait_answer(&marker, ANSWER_TIMEOUT);
    world.wait_settled(SETTLE_TIMEOUT);
    let judged = world.check();
    assert!(judged.verdict.judged(Property::NoLoss));
}
