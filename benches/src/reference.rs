//! The reference implementation's figures (shared/BASELINE.md: Node 20, better-sqlite3 11.10,
//! SQLite 3.49.2, 2 cores, median of 3 runs), keyed like the benches that compare with them.
//! Disk figures were taken beside a disk commit rate of 907–1,604 commits/s.

/// One reference figure: operations per second on disk and on tmpfs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceFigure {
    /// The criterion group that measures the same operation.
    pub group: &'static str,
    /// History size (settled messages), `None` for operations without one.
    pub history: Option<usize>,
    /// BASELINE.md's name of the operation.
    pub operation: &'static str,
    pub disk_per_s: f64,
    pub tmpfs_per_s: f64,
}

const fn figure(
    group: &'static str,
    history: Option<usize>,
    operation: &'static str,
    disk_per_s: f64,
    tmpfs_per_s: f64,
) -> ReferenceFigure {
    ReferenceFigure {
        group,
        history,
        operation,
        disk_per_s,
        tmpfs_per_s,
    }
}

/// Every figure of BASELINE.md's table.
pub const REFERENCE_FIGURES: &[ReferenceFigure] = &[
    figure(
        "A_host_write_message",
        None,
        "A host write message",
        997.0,
        6_063.0,
    ),
    figure(
        "B_runner_write_out",
        None,
        "B agent-runner write out",
        1_229.0,
        10_955.0,
    ),
    figure(
        "C_poll_cycle",
        Some(1_000),
        "C poll cycle (10 pending)",
        404.0,
        1_033.0,
    ),
    figure(
        "C_poll_cycle",
        Some(10_000),
        "C poll cycle (10 pending)",
        102.0,
        119.0,
    ),
    figure(
        "C_poll_cycle",
        Some(100_000),
        "C poll cycle (10 pending)",
        10.5,
        10.6,
    ),
    figure(
        "C_idle_poll",
        Some(1_000),
        "C idle poll",
        13_815.0,
        14_780.0,
    ),
    figure("C_idle_poll", Some(10_000), "C idle poll", 1_973.0, 1_899.0),
    figure("C_idle_poll", Some(100_000), "C idle poll", 70.0, 70.0),
    figure(
        "D_delivery_pass",
        Some(1_000),
        "D delivery pass (10 new)",
        81.5,
        213.0,
    ),
    figure(
        "D_delivery_pass",
        Some(10_000),
        "D delivery pass (10 new)",
        20.7,
        25.6,
    ),
    figure(
        "D_delivery_pass",
        Some(100_000),
        "D delivery pass (10 new)",
        1.67,
        1.66,
    ),
    figure("D_idle_pass", Some(1_000), "D idle pass", 238.0, 254.0),
    figure("D_idle_pass", Some(10_000), "D idle pass", 25.7, 26.3),
    figure("D_idle_pass", Some(100_000), "D idle pass", 1.74, 1.66),
    figure(
        "F_sweep_one_session",
        Some(1_000),
        "F sweep one session",
        436.0,
        440.0,
    ),
    figure(
        "F_sweep_one_session",
        Some(10_000),
        "F sweep one session",
        46.0,
        44.0,
    ),
    figure(
        "F_sweep_one_session",
        Some(100_000),
        "F sweep one session",
        4.1,
        4.2,
    ),
    figure(
        "raw_txn_per_row_full",
        None,
        "raw insert, txn per row, synchronous=FULL",
        1_238.0,
        28_105.0,
    ),
    figure(
        "raw_txn_per_row_off",
        None,
        "raw insert, txn per row, synchronous=OFF",
        25_492.0,
        29_311.0,
    ),
    figure(
        "raw_one_txn",
        None,
        "raw insert, one transaction (100k rows)",
        222_468.0,
        282_550.0,
    ),
];

/// The reference figure a bench compares with, if BASELINE.md has one.
pub fn reference_for(group: &str, history: Option<usize>) -> Option<&'static ReferenceFigure> {
    REFERENCE_FIGURES
        .iter()
        .find(|figure| figure.group == group && figure.history == history)
}

/// A one-line description of the reference figure, printed before each bench group.
pub fn describe_reference(group: &str, history: Option<usize>) -> String {
    match reference_for(group, history) {
        Some(figure) => format!(
            "reference {}{}: {} /s on disk, {} /s on tmpfs",
            figure.operation,
            history.map(|n| format!(" at {n} rows")).unwrap_or_default(),
            figure.disk_per_s,
            figure.tmpfs_per_s
        ),
        None => format!("{group}: no reference figure (BASELINE.md has none)"),
    }
}
