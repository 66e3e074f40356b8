//! The protocol's loops on settled histories of 1,000, 10,000 and 100,000 messages, each
//! against its BASELINE.md row, on disk and on tmpfs:
//! - `C_poll_cycle`: 10 new pending messages, then `AgentRunner::step` until all 10 are acked
//!   `completed` (find pending, claim, provider turn with the instant provider, reply written,
//!   acks completed). The steps a cycle took on average are printed after the group.
//! - `C_idle_poll`: one `AgentRunner::step` with nothing pending.
//! - `D_delivery_pass`: 10 new replies, then one delivery pass (`begin_delivery`, each
//!   `delivery_step`, a no-op send and `delivery_sent(Ok)`, `end_delivery`).
//! - `D_idle_pass`: the same pass with nothing new.
//! - `F_sweep_one_session`: `Host::sweep_session` of the settled session.
//! - `F_sweep_idle_sessions`: one sweep tick over 1,000 idle sessions (`active_sessions`, then
//!   `sweep_session` of each), on tmpfs; BASELINE.md has no such row.
//!
//! Histories are built once per place and size and shared by all groups; a rig starts over from
//! its template when its history has grown by a tenth.

use clawsim_benches::history::{shared_template, HostTemplate};
use clawsim_benches::place::Place;
use clawsim_benches::raw::check_disk_commit_rate;
use clawsim_benches::reference::describe_reference;
use clawsim_benches::rigs::{DeliveryRig, PollRig, SweepRig, NEW_PER_CYCLE};
use clawsim_benches::run_mode::{history_sizes, idle_session_count};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::rc::Rc;
use std::time::Duration;

/// Settled messages in each of the many idle sessions.
const IDLE_SESSION_HISTORY: usize = 10;

fn settings() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Benches `group_name` for every place and history size: `make_rig` builds a rig lazily from
/// the shared template (so a filtered-out bench builds nothing), `timed` runs one iteration and
/// returns the time it measured, `after` reports on the rig once its bench is done.
fn bench_over_histories<R>(
    c: &mut Criterion,
    group_name: &str,
    make_rig: impl Fn(Rc<HostTemplate>) -> R,
    timed: impl Fn(&mut R) -> Duration,
    after: impl Fn(&str, &R),
) {
    for history in history_sizes() {
        println!("{}", describe_reference(group_name, Some(history)));
    }
    check_disk_commit_rate(group_name);
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    for history in history_sizes() {
        for place in Place::available() {
            let mut rig = None;
            let id = BenchmarkId::new(place.label(), history);
            group.bench_function(id, |b| {
                let rig = rig.get_or_insert_with(|| make_rig(shared_template(place, 1, history)));
                b.iter_custom(|iters| (0..iters).map(|_| timed(rig)).sum());
            });
            if let Some(rig) = &rig {
                after(&format!("{group_name}/{}/{history}", place.label()), rig);
            }
        }
    }
    group.finish();
}

/// BASELINE.md row C (10 pending): 404 / 102 / 10.5 cycles/s on disk at 1k / 10k / 100k rows.
fn poll_cycle(c: &mut Criterion) {
    bench_over_histories(
        c,
        "C_poll_cycle",
        |template| PollRig::new(template).expect("poll rig"),
        |rig| rig.cycle().expect("poll cycle"),
        |id, rig| {
            println!(
                "{id}: {:.1} runner steps per cycle ({} cycles of {NEW_PER_CYCLE} messages)",
                rig.steps as f64 / rig.cycles.max(1) as f64,
                rig.cycles
            )
        },
    );
}

/// BASELINE.md row C idle: 13,815 / 1,973 / 70 polls/s on disk.
fn idle_poll(c: &mut Criterion) {
    bench_over_histories(
        c,
        "C_idle_poll",
        |template| PollRig::new(template).expect("poll rig"),
        |rig| rig.idle_step().expect("idle step"),
        |_, _| {},
    );
}

/// BASELINE.md row D (10 new): 81.5 / 20.7 / 1.67 passes/s on disk.
fn delivery_pass(c: &mut Criterion) {
    bench_over_histories(
        c,
        "D_delivery_pass",
        |template| DeliveryRig::new(template).expect("delivery rig"),
        |rig| rig.pass(NEW_PER_CYCLE).expect("delivery pass"),
        |_, _| {},
    );
}

/// BASELINE.md row D idle: 238 / 25.7 / 1.74 passes/s on disk.
fn idle_delivery_pass(c: &mut Criterion) {
    bench_over_histories(
        c,
        "D_idle_pass",
        |template| DeliveryRig::new(template).expect("delivery rig"),
        |rig| rig.pass(0).expect("idle delivery pass"),
        |_, _| {},
    );
}

/// BASELINE.md row F: 436 / 46 / 4.1 sweeps/s on disk.
fn sweep_one_session(c: &mut Criterion) {
    bench_over_histories(
        c,
        "F_sweep_one_session",
        |template| SweepRig::new(&template).expect("sweep rig"),
        |rig| rig.sweep_one().expect("sweep"),
        |_, _| {},
    );
}

/// No BASELINE.md row: the reference sweeps each active session as row F does. On tmpfs only:
/// while every sweep opens `inbound.db` read-write, and that open commits (see RESULTS.md), one
/// tick over 1,000 sessions on disk costs 1,000 durable commits — seconds per iteration, which
/// would take this crate past its time budget to measure — and is 1,000 × row F's disk figure.
fn sweep_idle_sessions(c: &mut Criterion) {
    const GROUP: &str = "F_sweep_idle_sessions";
    let sessions = idle_session_count();
    println!("{}", describe_reference(GROUP, Some(sessions)));
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));
    let places = Place::available()
        .into_iter()
        .filter(|p| *p == Place::Tmpfs);
    for place in places {
        let mut rig = None;
        let id = BenchmarkId::new(place.label(), sessions);
        group.bench_function(id, |b| {
            let rig = rig.get_or_insert_with(|| {
                let template = shared_template(place, sessions, IDLE_SESSION_HISTORY);
                SweepRig::new(&template).expect("sweep rig")
            });
            b.iter_custom(|iters| (0..iters).map(|_| rig.sweep_all().expect("sweep")).sum());
        });
    }
    group.finish();
}

fn main() {
    let mut c = settings().configure_from_args();
    poll_cycle(&mut c);
    idle_poll(&mut c);
    delivery_pass(&mut c);
    idle_delivery_pass(&mut c);
    sweep_one_session(&mut c);
    sweep_idle_sessions(&mut c);
    check_disk_commit_rate("loops-end");
    c.final_summary();
}
