//! Write paths, each against its BASELINE.md row, on disk and on tmpfs:
//! - `A_host_write_message`: `Host::route` of a chat message into an existing session (central
//!   lookups, seq allocation and insert in one `inbound.db` transaction, container wake-up);
//! - `B_runner_write_out`: the agent-runner's write path, `max(messages_in.seq)` read on the
//!   read-only inbound connection, then `seq::insert_outbound` in one write transaction;
//! - `raw_txn_per_row_full` / `raw_txn_per_row_off` / `raw_one_txn`: raw SQLite, one prepared
//!   INSERT, as BASELINE.md measured it;
//! - `raw_txn_per_row_core`: the same, one transaction per row, at the `synchronous` level core's
//!   connections use (read from core) — the floor the write paths are held against.
//!
//! The disk's commit rate (300 `synchronous=FULL` commits) is measured before and after, since
//! disk figures mean nothing without it.

use clawsim_benches::history::shared_template;
use clawsim_benches::place::Place;
use clawsim_benches::raw::{
    check_disk_commit_rate, core_synchronous, insert_raw_row, insert_rows_in_one_transaction,
    open_raw_inbound, Synchronous,
};
use clawsim_benches::reference::describe_reference;
use clawsim_benches::rigs::{HostWriteRig, RunnerWriteRig};
use clawsim_benches::run_mode::{bulk_insert_rows, history_sizes};
use criterion::{Criterion, SamplingMode, Throughput};
use std::time::{Duration, Instant};

fn settings() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// BASELINE.md row A: 997 /s on disk, 6,063 /s on tmpfs (open, seq, insert, close each time).
fn host_write_message(c: &mut Criterion) {
    const GROUP: &str = "A_host_write_message";
    println!("{}", describe_reference(GROUP, None));
    check_disk_commit_rate(GROUP);
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));
    for place in Place::available() {
        let mut rig = None;
        group.bench_function(place.label(), |b| {
            let rig = rig.get_or_insert_with(|| {
                let template = shared_template(place, 1, history_sizes()[0]);
                HostWriteRig::new(&template).expect("host write rig")
            });
            b.iter(|| rig.route_one().expect("route"));
        });
    }
    group.finish();
}

/// BASELINE.md row B: 1,229 /s on disk, 10,955 /s on tmpfs.
fn runner_write_out(c: &mut Criterion) {
    const GROUP: &str = "B_runner_write_out";
    println!("{}", describe_reference(GROUP, None));
    check_disk_commit_rate(GROUP);
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));
    for place in Place::available() {
        let mut rig = None;
        group.bench_function(place.label(), |b| {
            let rig = rig.get_or_insert_with(|| RunnerWriteRig::new(place).expect("write rig"));
            b.iter(|| rig.write_out().expect("write out"));
        });
    }
    group.finish();
}

/// BASELINE.md raw rows, one transaction per row: FULL 1,238 / 28,105 /s, OFF 25,492 / 29,311 /s.
fn raw_txn_per_row(c: &mut Criterion, synchronous: Synchronous, group_name: &str) {
    println!("{}", describe_reference(group_name, None));
    check_disk_commit_rate(group_name);
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    for place in Place::available() {
        let dir = place.scratch_dir("raw");
        let conn = open_raw_inbound(&dir.path().join("raw.db"), synchronous).expect("raw db");
        let mut next_row = 0;
        group.bench_function(place.label(), |b| {
            b.iter(|| {
                next_row += 1;
                insert_raw_row(&conn, next_row).expect("raw insert");
            })
        });
    }
    group.finish();
}

/// BASELINE.md raw row, all rows in one transaction: 222,468 / 282,550 rows/s. Each iteration
/// fills a fresh file, so the table never grows past one run's rows.
fn raw_one_transaction(c: &mut Criterion) {
    const GROUP: &str = "raw_one_txn";
    println!("{}", describe_reference(GROUP, None));
    check_disk_commit_rate(GROUP);
    let rows = bulk_insert_rows();
    let mut group = c.benchmark_group(GROUP);
    group
        .throughput(Throughput::Elements(rows))
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5));
    for place in Place::available() {
        group.bench_function(place.label(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let dir = place.scratch_dir("raw-bulk");
                        let path = dir.path().join("raw.db");
                        let conn = open_raw_inbound(&path, Synchronous::Full).expect("raw db");
                        let started = Instant::now();
                        insert_rows_in_one_transaction(&conn, 0, rows).expect("bulk insert");
                        started.elapsed()
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = settings().configure_from_args();
    raw_txn_per_row(&mut c, Synchronous::Full, "raw_txn_per_row_full");
    let core_level = core_synchronous();
    println!(
        "core's connections run at synchronous={}",
        core_level.pragma()
    );
    raw_txn_per_row(&mut c, core_level, "raw_txn_per_row_core");
    raw_txn_per_row(&mut c, Synchronous::Off, "raw_txn_per_row_off");
    raw_one_transaction(&mut c);
    host_write_message(&mut c);
    runner_write_out(&mut c);
    check_disk_commit_rate("writes-end");
    c.final_summary();
}
