//! Sequence numbers (PROTOCOL §3): even on the host side, odd on the agent side, unique across
//! both tables, increasing per writer. The story: the reference read `MAX(seq)` and inserted in
//! two statements, so two writers of one `inbound.db` in the same process (router, sweep,
//! delivery) could pick the same number. Here allocation and insert share one `BEGIN
//! IMMEDIATE` transaction; this test races real connections on threads to show no two writers
//! ever collide, and interleaves the agent's odd numbers with them.

use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::live::ManualEnv;
use clawsim_core::model::{InboundRow, OutboundRow, Route};
use clawsim_core::seq::{insert_inbound, insert_outbound, max_inbound_seq};
use std::collections::BTreeSet;
use std::path::Path;

fn inbound_row(id: String) -> InboundRow {
    InboundRow {
        id,
        seq: None,
        kind: "chat".into(),
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        status: "pending".into(),
        process_after: None,
        recurrence: None,
        tries: 0,
        route: Route::default(),
        content: "{}".into(),
        series_id: None,
    }
}

fn outbound_row(id: String) -> OutboundRow {
    OutboundRow {
        id,
        seq: None,
        in_reply_to: None,
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        deliver_after: None,
        recurrence: None,
        kind: "chat".into(),
        route: Route::default(),
        content: "{}".into(),
    }
}

fn host_writer(path: &Path, name: &str, count: usize) -> Vec<i64> {
    let env = ManualEnv::new(0, 7);
    let mut db = Db::open(&env, path, Schema::Inbound, Access::ReadWrite).unwrap();
    (0..count)
        .map(|i| loop {
            // Under contention a writer may wait out the busy timeout; like the host's loops it
            // tries again later. What must never happen is two writers with one seq.
            match db.write(|tx| insert_inbound(tx, &inbound_row(format!("{name}-{i}")))) {
                Ok(seq) => break seq,
                Err(error) if error.is_transient() => continue,
                Err(error) => panic!("{error}"),
            }
        })
        .collect()
}

#[test]
fn concurrent_host_writers_never_pick_the_same_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbound.db");
    host_writer(&path, "init", 1);
    let writers: Vec<_> = ["router", "sweep", "delivery"]
        .into_iter()
        .map(|name| {
            let path = path.clone();
            std::thread::spawn(move || host_writer(&path, name, 100))
        })
        .collect();
    let mut all = BTreeSet::new();
    for writer in writers {
        let seqs = writer.join().unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "increasing per writer"
        );
        for seq in seqs {
            assert_eq!(seq % 2, 0, "host seqs are even");
            assert!(all.insert(seq), "seq {seq} allocated twice");
        }
    }
    assert_eq!(all.len(), 300);
}

#[test]
fn agent_seqs_are_odd_and_above_both_tables() {
    let dir = tempfile::tempdir().unwrap();
    let env = ManualEnv::new(0, 7);
    let inbound_path = dir.path().join("inbound.db");
    let mut inbound = Db::open(&env, &inbound_path, Schema::Inbound, Access::ReadWrite).unwrap();
    let mut outbound = Db::open(
        &env,
        &dir.path().join("outbound.db"),
        Schema::Outbound,
        Access::ReadWrite,
    )
    .unwrap();
    let mut seen = BTreeSet::new();
    for i in 0..50 {
        let host_seq = inbound
            .write(|tx| insert_inbound(tx, &inbound_row(format!("in-{i}"))))
            .unwrap();
        assert!(seen.insert(host_seq));
        for j in 0..(i % 3) {
            let max_in = max_inbound_seq(inbound.conn()).unwrap();
            let agent_seq = outbound
                .write(|tx| insert_outbound(tx, max_in, &outbound_row(format!("out-{i}-{j}"))))
                .unwrap();
            assert_eq!(agent_seq % 2, 1, "agent seqs are odd");
            assert!(agent_seq > max_in);
            assert!(seen.insert(agent_seq), "seq {agent_seq} used twice");
        }
    }
}
