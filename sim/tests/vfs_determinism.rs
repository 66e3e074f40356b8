//! Determinism of the storage half of a world: one seed, the same bytes; other worlds running
//! beside it in other threads change nothing.
//!
//! The hazard is SQLite's process-global PRNG: every rollback journal header carries a nonce
//! drawn from it, so two worlds in parallel test threads would each write bytes that depend on
//! the other's progress (and a second run in the same process would differ from the first).
//! Each world therefore hashes every byte it writes (journals included) and the test compares
//! those hashes across sequential and parallel runs.
//!
//! A second coupling is SQLite's page cache, also process-wide in the bundled build: a
//! connection whose cache is full evicts the least recently used clean page of *any*
//! connection, and a transaction that dirties nearly its whole cache spills depending on how
//! many pages its cache still holds. So the parallel test uses SQLite's default cache (the
//! protocol's transactions never come near it), and spilling transactions are checked for
//! sequential determinism only.

use clawsim_sim::{FsFault, MountProfile, Side, SimFs};
use rusqlite::{params, Connection, OpenFlags};
use std::path::Path;
use std::sync::Mutex;

/// The tests of this file run one at a time: each controls which worlds share the process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn open(fs: &SimFs, side: Side, path: &str, cache_pages: Option<i64>) -> Connection {
    let conn = Connection::open_with_flags_and_vfs(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        fs.vfs_name(side).as_str(),
    )
    .unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS t(side TEXT, n INTEGER, body TEXT);",
    )
    .unwrap();
    if let Some(pages) = cache_pages {
        // A tiny cache: big transactions spill and write a second journal header mid-way.
        conn.execute_batch(&format!("PRAGMA cache_size={pages};"))
            .unwrap();
    }
    conn
}

/// A small storage workload with an fsync error and a power cut; returns the hash of every
/// byte written and of the final contents.
fn world(seed: u64, cache_pages: Option<i64>) -> (u64, u64) {
    let fs = SimFs::new(MountProfile::PowerLoss, seed);
    fs.enable_write_digest();
    fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
    let dbs = [
        (Side::Host, "/s/inbound.db"),
        (Side::Container, "/s/outbound.db"),
    ];
    let mut conns: Vec<Connection> = dbs
        .iter()
        .map(|(s, p)| open(&fs, *s, p, cache_pages))
        .collect();
    for n in 0..40i64 {
        if n == 10 {
            fs.inject(FsFault::FsyncError { side: Side::Host });
        }
        if n == 20 {
            fs.inject(FsFault::PowerLossAfter {
                ops: 7 + (seed % 13) as u32,
                side: None,
            });
        }
        for (i, conn) in conns.iter().enumerate() {
            let body = format!("{seed}-{n}-{}", "x".repeat((n as usize * 97) % 3000));
            if n % 10 == 5 {
                let _ = conn.execute("UPDATE t SET body = body || 'y'", []);
            }
            let insert = conn.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3)",
                params![dbs[i].0.name(), n, body],
            );
            if insert.is_err() && fs.counters()["crash.machine"] > 0 {
                // The machine restarted: every process reopens its DB.
                conns = dbs
                    .iter()
                    .map(|(s, p)| open(&fs, *s, p, cache_pages))
                    .collect();
                break;
            }
        }
    }
    (fs.write_digest().unwrap(), fs.content_hash())
}

#[test]
fn one_seed_writes_the_same_bytes_every_run() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(world(1, None), world(1, None));
    assert_eq!(world(2, None), world(2, None));
    assert_ne!(world(1, None), world(2, None));
}

#[test]
fn transactions_that_spill_their_cache_write_the_same_bytes_every_run() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(world(3, Some(12)), world(3, Some(12)));
    assert_ne!(
        world(3, Some(12)),
        world(3, None),
        "the small cache made no difference"
    );
}

#[test]
fn a_world_is_unaffected_by_worlds_running_in_other_threads() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let alone = [world(1, None), world(2, None)];
    let runs: Vec<_> = (0..2u64)
        .map(|i| std::thread::spawn(move || (0..6).map(|_| world(1 + i, None)).collect::<Vec<_>>()))
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        for result in run.join().unwrap() {
            assert_eq!(result, alone[i], "world {} changed beside another", i + 1);
        }
    }
}

/// SQLite draws from its process-global PRNG outside any VFS call when a connection opens (an
/// extension's per-connection setup, FTS5's in the stock bundled build). A thread opening
/// connections beside a world must not shift that world's journal nonces.
#[test]
fn a_world_is_unaffected_by_connections_opening_in_other_threads() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let alone = world(1, None);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opener = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut opened = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || opened == 0 {
                drop(Connection::open_in_memory().unwrap());
                opened += 1;
            }
            opened
        })
    };
    let beside: Vec<_> = (0..8).map(|_| world(1, None)).collect();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(opener.join().unwrap() > 0);
    for result in beside {
        assert_eq!(result, alone, "world changed beside connections opening");
    }
}
