//! Power loss at every point of a commit: SQLite files stay sound and committed rows survive.
//!
//! The story: a host writes `inbound.db` while a container writes `outbound.db`, both with
//! `journal_mode=DELETE`; the power fails before the N-th disk operation of the machine (a
//! journal write, a sync, the unlink that commits). After the crash each DB is reopened by a
//! fresh process: `PRAGMA integrity_check` must be ok, and the transactions that survive must be
//! a prefix of those attempted, each whole.
//!
//! How many survive depends on `synchronous`. With EXTRA, exactly the transactions whose COMMIT
//! returned. With FULL, SQLite does not sync the directory after unlinking the journal, so the
//! commit of the *last* transaction is durable only at the machine's next sync: a power cut in
//! between resurrects the journal and rolls that transaction back (SQLite documents this; ext4
//! behaves so). SimFs logs each such resurrected journal as `DoubtCause::CommitNotDurable`, so
//! checkers can allow for it; or the core can use EXTRA.

use clawsim_sim::{DoubtCause, FsFault, MountProfile, Side, SimFs};
use proptest::prelude::*;
use rusqlite::{params, Connection, OpenFlags};
use std::path::Path;

const TXNS: i64 = 6;
const ROWS_PER_TXN: i64 = 3;

fn open(fs: &SimFs, side: Side, path: &str, synchronous: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags_and_vfs(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        fs.vfs_name(side).as_str(),
    )?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=DELETE; PRAGMA synchronous={synchronous};"
    ))?;
    Ok(conn)
}

/// One transaction: a few rows, big enough to span pages.
fn write_txn(conn: &Connection, txn: i64) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE;")?;
    for row in 0..ROWS_PER_TXN {
        let pad = vec![(txn * 16 + row) as u8; 700 + (txn * 311 % 1500) as usize];
        if let Err(e) = conn.execute("INSERT INTO t VALUES (?1, ?2, ?3)", params![txn, row, pad]) {
            let _ = conn.execute_batch("ROLLBACK;");
            return Err(e);
        }
    }
    conn.execute_batch("COMMIT;")
}

struct Survivors {
    integrity: String,
    /// SimFs logged this DB's last commit as undone by the power loss.
    commit_doubted: bool,
    /// The table itself is gone: its creating commit was rolled back.
    table_lost: bool,
    txns: Vec<i64>,
    whole: bool,
}

fn survivors(fs: &SimFs, side: Side, path: &str) -> Survivors {
    let conn = open(fs, side, path, "FULL").expect("reopen after the crash");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 't'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if tables == 0 {
        return Survivors {
            integrity,
            commit_doubted: doubted(fs, path),
            table_lost: true,
            txns: Vec::new(),
            whole: true,
        };
    }
    let mut stmt = conn
        .prepare("SELECT txn, count(*), sum(length(pad)) FROM t GROUP BY txn ORDER BY txn")
        .unwrap();
    let groups: Vec<(i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let whole = groups.iter().all(|(txn, rows, bytes)| {
        *rows == ROWS_PER_TXN && *bytes == ROWS_PER_TXN * (700 + txn * 311 % 1500)
    });
    Survivors {
        integrity,
        commit_doubted: doubted(fs, path),
        table_lost: false,
        txns: groups.iter().map(|(txn, _, _)| *txn).collect(),
        whole,
    }
}

fn doubted(fs: &SimFs, path: &str) -> bool {
    fs.maybe_durable()
        .iter()
        .any(|m| m.path == Path::new(path) && m.cause == DoubtCause::CommitNotDurable)
}

/// Runs both writers until the power cut (the table exists before it is armed); returns how
/// many transactions each committed and what survived.
fn power_cut_run(seed: u64, ops: u32, synchronous: &str) -> [(i64, Survivors); 2] {
    let fs = SimFs::new(MountProfile::PowerLoss, seed);
    fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
    let dbs = [
        (Side::Host, "/s/inbound.db"),
        (Side::Container, "/s/outbound.db"),
    ];
    let conns: Vec<Connection> = dbs
        .iter()
        .map(|(side, path)| {
            let conn = open(&fs, *side, path, synchronous).unwrap();
            conn.execute_batch("CREATE TABLE t(txn INTEGER, row INTEGER, pad BLOB);")
                .unwrap();
            conn
        })
        .collect();
    fs.inject(FsFault::PowerLossAfter { ops, side: None });
    let mut committed = [0i64; 2];
    'run: for txn in 1..=TXNS {
        for (i, conn) in conns.iter().enumerate() {
            if write_txn(conn, txn).is_err() {
                break 'run;
            }
            committed[i] = txn;
        }
    }
    if fs.counters()["crash.machine"] == 0 {
        fs.crash_machine();
    }
    drop(conns);
    let [host, container] = dbs.map(|(side, path)| survivors(&fs, side, path));
    [(committed[0], host), (committed[1], container)]
}

fn check(seed: u64, ops: u32, synchronous: &str) -> Result<(), TestCaseError> {
    for (committed, found) in power_cut_run(seed, ops, synchronous) {
        prop_assert_eq!(&found.integrity, "ok");
        // The CREATE TABLE is a commit too: under FULL it is the last one until another lands.
        prop_assert!(
            !found.table_lost || (synchronous == "FULL" && committed == 0),
            "the table vanished after {} commits ({})",
            committed,
            synchronous
        );
        prop_assert!(
            found.whole,
            "a transaction survived in part: {:?}",
            found.txns
        );
        let survived = found.txns.len() as i64;
        // A returned commit is lost exactly when SimFs said its journal came back.
        let returned_commit_lost = survived < committed || (found.table_lost && committed == 0);
        if returned_commit_lost {
            prop_assert!(
                found.commit_doubted,
                "a lost commit was not logged as in doubt"
            );
        }
        if synchronous == "EXTRA" {
            prop_assert!(
                !found.commit_doubted,
                "EXTRA syncs the directory: nothing to doubt"
            );
        }
        prop_assert_eq!(&found.txns, &(1..=survived).collect::<Vec<_>>());
        let lowest = if synchronous == "EXTRA" {
            committed
        } else {
            committed - 1
        };
        prop_assert!(
            (lowest.max(0)..=committed).contains(&survived),
            "{} committed, {} survived ({})",
            committed,
            survived,
            synchronous
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn with_synchronous_full_a_power_cut_anywhere_leaves_sound_files_and_loses_at_most_the_last_commit(
        seed in any::<u64>(),
        ops in 1u32..160,
    ) {
        check(seed, ops, "FULL")?;
    }

    #[test]
    fn with_synchronous_extra_a_power_cut_anywhere_loses_no_committed_transaction(
        seed in any::<u64>(),
        ops in 1u32..160,
    ) {
        check(seed, ops, "EXTRA")?;
    }
}

#[test]
fn with_synchronous_full_some_power_cut_does_roll_back_a_returned_commit() {
    let lost = (0..40u64).any(|seed| {
        (1..160).any(|ops| {
            power_cut_run(seed, ops, "FULL")
                .iter()
                .any(|(committed, found)| (found.txns.len() as i64) < *committed)
        })
    });
    assert!(
        lost,
        "the window between unlinking the journal and the next sync never opened"
    );
}

#[test]
fn a_power_cut_run_is_the_same_bytes_every_time() {
    let image = |seed| {
        let fs = SimFs::new(MountProfile::PowerLoss, seed);
        fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
        let conn = open(&fs, Side::Host, "/s/inbound.db", "FULL").unwrap();
        conn.execute_batch("CREATE TABLE t(txn INTEGER, row INTEGER, pad BLOB);")
            .unwrap();
        fs.inject(FsFault::PowerLossAfter {
            ops: 17,
            side: None,
        });
        for txn in 1..=TXNS {
            if write_txn(&conn, txn).is_err() {
                break;
            }
        }
        drop(conn);
        fs.durable_image(Path::new("/s/inbound.db"))
    };
    assert_eq!(image(5), image(5));
}

#[test]
fn every_power_cut_point_of_a_few_seeds_leaves_sound_files() {
    for seed in 0..8u64 {
        for ops in 1..160 {
            for synchronous in ["FULL", "EXTRA"] {
                if let Err(e) = check(seed, ops, synchronous) {
                    panic!("seed {seed}, power cut at op {ops}, {synchronous}: {e}");
                }
            }
        }
    }
}
