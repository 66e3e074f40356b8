//! How big a run is. `cargo bench` passes `--bench` to a bench binary; `cargo test --benches`
//! (and clippy's test build) runs the same binary without it, and criterion then runs each bench
//! once. In that mode every history is tiny, so the crate's test run stays in seconds.

/// True under `cargo bench` (criterion's measuring mode), false under `cargo test`.
pub fn is_full_run() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// True under criterion's `--profile-time` (a run under a profiler): full sizes, but its
/// figures are not logged for `bench-report`.
pub fn is_profiling() -> bool {
    std::env::args().any(|a| a == "--profile-time")
}

/// History sizes (settled messages per session) of the poll, delivery and sweep benches.
pub fn history_sizes() -> Vec<usize> {
    if is_full_run() {
        vec![1_000, 10_000, 100_000]
    } else {
        vec![100]
    }
}

/// How many idle sessions the many-session sweep bench sweeps.
pub fn idle_session_count() -> usize {
    if is_full_run() {
        1_000
    } else {
        10
    }
}

/// Rows of the raw one-transaction insert baseline (BASELINE.md used 100,000).
pub fn bulk_insert_rows() -> u64 {
    if is_full_run() {
        100_000
    } else {
        1_000
    }
}

/// Commits of the disk commit-rate check (BASELINE.md used 300).
pub fn commit_rate_commits() -> u32 {
    if is_full_run() {
        300
    } else {
        10
    }
}
