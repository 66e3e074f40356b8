//! The results table: criterion's estimates for each bench, set beside the reference figure it
//! compares with, the raw-SQLite floor, the disk's commit rate at the time, and each target of
//! issue 6 with whether it was met. `bench-report` prints it; benches/RESULTS.md holds a copy.

use crate::reference::{reference_for, REFERENCE_FIGURES};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Operations per second of each bench, keyed by criterion's full id
/// (`C_poll_cycle/tmpfs/10000`, `A_host_write_message/disk`).
pub type Measured = BTreeMap<String, f64>;

/// Reads every bench's latest estimate under `criterion_dir`: elements per iteration from
/// `benchmark.json`, time per iteration from `estimates.json` (the slope of linear sampling,
/// else the mean).
pub fn read_measured(criterion_dir: &Path) -> std::io::Result<Measured> {
    let mut measured = Measured::new();
    collect(criterion_dir, &mut measured)?;
    Ok(measured)
}

fn collect(dir: &Path, measured: &mut Measured) -> std::io::Result<()> {
    let new = dir.join("new");
    if new.join("benchmark.json").is_file() {
        if let Some((id, per_s)) = read_one(&new) {
            measured.insert(id, per_s);
        }
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_type()?.is_dir() && entry.file_name() != "report" {
            collect(&entry.path(), measured)?;
        }
    }
    Ok(())
}

fn read_one(new: &Path) -> Option<(String, f64)> {
    let read = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(new.join(name)).ok()?).ok()
    };
    let benchmark = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let id = benchmark.get("full_id")?.as_str()?.to_string();
    let elements = benchmark
        .pointer("/throughput/Elements")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(1.0);
    let ns = estimates
        .pointer("/slope/point_estimate")
        .and_then(serde_json::Value::as_f64)
        .or_else(|| estimates.pointer("/mean/point_estimate")?.as_f64())?;
    Some((id, elements * 1e9 / ns))
}

/// The latest disk commit-rate check of each label (a bench group, or `<binary>-end`), in the
/// order they were taken: `(label, commits/s)`.
pub fn read_commit_rates(log: &str) -> Vec<(String, f64)> {
    let mut latest: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (line_no, line) in log.lines().enumerate() {
        if let [label, rate] = line.split_whitespace().collect::<Vec<_>>()[..] {
            if let Ok(rate) = rate.parse::<f64>() {
                latest.insert(label.to_string(), (line_no, rate));
            }
        }
    }
    let mut rates: Vec<_> = latest.into_iter().collect();
    rates.sort_by_key(|(_, (line_no, _))| *line_no);
    rates
        .into_iter()
        .map(|(label, (_, rate))| (label, rate))
        .collect()
}

/// Everything the report shows.
pub struct ReportInput<'a> {
    pub measured: &'a Measured,
    pub commit_rates: &'a [(String, f64)],
    /// One line naming the machine (cores, memory, SQLite version, load).
    pub machine: &'a str,
    /// The latest line of `sim-figures.log`, if the simulator bench ran.
    pub sim_figures: Option<&'a str>,
}

const PLACES: [&str; 2] = ["disk", "tmpfs"];
const HISTORIES: [usize; 3] = [1_000, 10_000, 100_000];
/// Groups whose cost must stay flat in history and beat the reference tenfold at 10k rows.
const LOOP_GROUPS: [&str; 5] = [
    "C_poll_cycle",
    "C_idle_poll",
    "D_delivery_pass",
    "D_idle_pass",
    "F_sweep_one_session",
];

fn bench_id(group: &str, place: &str, history: Option<usize>) -> String {
    match history {
        Some(n) => format!("{group}/{place}/{n}"),
        None => format!("{group}/{place}"),
    }
}

/// A rate for the table: three significant figures, thousands separated.
pub fn format_rate(per_s: f64) -> String {
    if per_s >= 1_000.0 {
        let whole = per_s.round() as u64;
        let digits = whole.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if per_s >= 100.0 {
        format!("{per_s:.0}")
    } else if per_s >= 10.0 {
        format!("{per_s:.1}")
    } else {
        format!("{per_s:.2}")
    }
}

/// A ratio at two significant figures (`0.047×`, `1.2×`, `12×`) — never `0.0×`.
pub fn format_times(times: f64) -> String {
    if times >= 10.0 {
        format!("{times:.0}×")
    } else if times >= 1.0 {
        format!("{times:.1}×")
    } else if times >= 0.1 {
        format!("{times:.2}×")
    } else {
        format!("{times:.3}×")
    }
}

fn cell(value: Option<f64>) -> String {
    value.map(format_rate).unwrap_or_else(|| "–".into())
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format_times(a / b),
        _ => "–".into(),
    }
}

/// The markdown report: machine, commit rates, the table, the targets.
pub fn render(input: &ReportInput) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Machine: {}\n", input.machine);
    render_commit_rates(&mut out, input.commit_rates);
    render_calibration(&mut out, input.measured);
    render_table(&mut out, input.measured, input.commit_rates);
    render_extra(&mut out, input.measured);
    render_sim(&mut out, input.measured, input.sim_figures);
    render_targets(&mut out, input.measured);
    out
}

/// The simulator's figures: seeds/min from criterion, the rest from the bench's own totals.
fn render_sim(out: &mut String, measured: &Measured, sim_figures: Option<&str>) {
    let seeds_per_s = measured.get("sim_default_scenario/seed").copied();
    let fields: BTreeMap<&str, &str> = sim_figures
        .map(|line| {
            // `default_scenario key value key value …`
            let words: Vec<&str> = line.split_whitespace().skip(1).collect();
            words
                .chunks(2)
                .filter_map(|kv| Some((kv[0], *kv.get(1)?)))
                .collect()
        })
        .unwrap_or_default();
    if seeds_per_s.is_none() && fields.is_empty() {
        return;
    }
    let field = |key: &str| fields.get(key).copied().unwrap_or("–");
    let _ = writeln!(
        out,
        "\nSimulator, default scenario, one core (no reference):\n"
    );
    let _ = writeln!(
        out,
        "- seeds per minute: {} (criterion); {} over the bench's {} seeds",
        cell(seeds_per_s.map(|s| s * 60.0)),
        field("seeds_per_min"),
        field("seeds")
    );
    let _ = writeln!(
        out,
        "- world steps per wall second: {}",
        field("steps_per_s")
    );
    let _ = writeln!(
        out,
        "- simulated seconds per wall second: {}",
        field("sim_s_per_wall_s")
    );
    let _ = writeln!(
        out,
        "- peak RSS of the bench process: {} KiB",
        field("peak_rss_kib")
    );
}

fn render_commit_rates(out: &mut String, rates: &[(String, f64)]) {
    if rates.is_empty() {
        return;
    }
    let listed: Vec<String> = rates
        .iter()
        .map(|(label, rate)| format!("{label} {}", format_rate(*rate)))
        .collect();
    let _ = writeln!(
        out,
        "Disk commit rate, checked before each group (300 `synchronous=FULL` commits, commits/s; \
         BASELINE.md's were 907–1,604): {}\n",
        listed.join(", ")
    );
}

/// How this run's raw SQLite compares with BASELINE.md's: the machine's own factor, to read the
/// other ratios against.
fn render_calibration(out: &mut String, measured: &Measured) {
    let Some(figure) = reference_for("raw_txn_per_row_full", None) else {
        return;
    };
    let ours = |place| measured.get(&bench_id(figure.group, place, None)).copied();
    let _ = writeln!(
        out,
        "Calibration: raw SQLite, one `synchronous=FULL` transaction per row, ran at {} of \
         BASELINE.md's rate on disk and {} on tmpfs in this run.\n",
        ratio(ours("disk"), Some(figure.disk_per_s)),
        ratio(ours("tmpfs"), Some(figure.tmpfs_per_s)),
    );
}

fn render_table(out: &mut String, measured: &Measured, commit_rates: &[(String, f64)]) {
    let _ = writeln!(
        out,
        "| operation | history | clawsim disk /s | reference disk /s | × | disk commits/s then | \
         clawsim tmpfs /s | reference tmpfs /s | × | raw SQLite, core's durability, disk / tmpfs /s |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for figure in REFERENCE_FIGURES {
        let ours = |place| {
            measured
                .get(&bench_id(figure.group, place, figure.history))
                .copied()
        };
        let (disk, tmpfs) = (ours("disk"), ours("tmpfs"));
        let raw = raw_floor(figure.group, measured);
        let commit_rate = commit_rates
            .iter()
            .find(|(label, _)| label == figure.group)
            .map(|(_, rate)| *rate);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            figure.operation,
            figure
                .history
                .map(format_history)
                .unwrap_or_else(|| "–".into()),
            cell(disk),
            format_rate(figure.disk_per_s),
            ratio(disk, Some(figure.disk_per_s)),
            cell(commit_rate),
            cell(tmpfs),
            format_rate(figure.tmpfs_per_s),
            ratio(tmpfs, Some(figure.tmpfs_per_s)),
            raw,
        );
    }
}

/// Raw SQLite, one transaction per row, at core's own `synchronous` level when that was
/// measured (`raw_txn_per_row_core`), else at FULL: the floor of a write at the same durability.
fn raw_same_durability(measured: &Measured, place: &str) -> Option<f64> {
    ["raw_txn_per_row_core", "raw_txn_per_row_full"]
        .iter()
        .find_map(|group| measured.get(&bench_id(group, place, None)).copied())
}

/// The raw-SQLite floor of the two write rows.
fn raw_floor(group: &str, measured: &Measured) -> String {
    if !matches!(group, "A_host_write_message" | "B_runner_write_out") {
        return "–".into();
    }
    let raw = |place| raw_same_durability(measured, place);
    format!("{} / {}", cell(raw("disk")), cell(raw("tmpfs")))
}

fn format_history(n: usize) -> String {
    format_rate(n as f64)
}

/// Benches without a reference row (the many-session sweep).
fn render_extra(out: &mut String, measured: &Measured) {
    let extra: Vec<(&String, &f64)> = measured
        .iter()
        .filter(|(id, _)| id.starts_with("F_sweep_idle_sessions/"))
        .collect();
    if extra.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nWithout a reference row:\n");
    for (id, per_s) in extra {
        let _ = writeln!(
            out,
            "- `{id}`: {} sweep ticks/s ({:.2} ms per tick)",
            format_rate(*per_s),
            1_000.0 / per_s
        );
    }
}

fn render_targets(out: &mut String, measured: &Measured) {
    let _ = writeln!(out, "\nTargets:\n");
    for group in LOOP_GROUPS {
        for place in PLACES {
            flat_target(out, measured, group, place);
        }
    }
    for group in LOOP_GROUPS {
        for place in PLACES {
            tenfold_target(out, measured, group, place);
        }
    }
    for place in PLACES {
        write_target(out, measured, place);
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// Cost at 100k rows ≤ 1.5 × cost at 1k rows.
fn flat_target(out: &mut String, measured: &Measured, group: &str, place: &str) {
    let rate = |n| measured.get(&bench_id(group, place, Some(n))).copied();
    if let (Some(small), Some(large)) = (rate(HISTORIES[0]), rate(HISTORIES[2])) {
        let growth = small / large;
        let _ = writeln!(
            out,
            "- {group} {place}: cost at 100k rows / cost at 1k rows = {growth:.2} \
             (target ≤ 1.5): {}",
            verdict(growth <= 1.5)
        );
    }
}

/// Rate at 10k rows ≥ 10 × the reference's.
fn tenfold_target(out: &mut String, measured: &Measured, group: &str, place: &str) {
    let history = Some(HISTORIES[1]);
    let (Some(ours), Some(figure)) = (
        measured.get(&bench_id(group, place, history)).copied(),
        reference_for(group, history),
    ) else {
        return;
    };
    let theirs = match place {
        "disk" => figure.disk_per_s,
        _ => figure.tmpfs_per_s,
    };
    let times = ours / theirs;
    let _ = writeln!(
        out,
        "- {group} {place} at 10k rows: {} /s vs reference {} /s = {} (target ≥ 10×): {}",
        format_rate(ours),
        format_rate(theirs),
        format_times(times),
        verdict(times >= 10.0)
    );
}

/// Host write cost ≤ 1.5 × raw SQLite one-transaction-per-row cost at the same durability.
fn write_target(out: &mut String, measured: &Measured, place: &str) {
    let host = measured.get(&bench_id("A_host_write_message", place, None));
    if let (Some(host), Some(raw)) = (host.copied(), raw_same_durability(measured, place)) {
        let cost = raw / host;
        let _ = writeln!(
            out,
            "- host write message {place}: {} /s vs raw SQLite txn-per-row at core's durability \
             {} /s: cost {cost:.2}× raw (target ≤ 1.5×): {}",
            format_rate(host),
            format_rate(raw),
            verdict(cost <= 1.5)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_at_three_figures() {
        assert_eq!(format_rate(282_550.4), "282,550");
        assert_eq!(format_rate(1_033.0), "1,033");
        assert_eq!(format_rate(404.2), "404");
        assert_eq!(format_rate(20.74), "20.7");
        assert_eq!(format_rate(1.666), "1.67");
        assert_eq!(format_times(0.0141), "0.014×");
        assert_eq!(format_times(0.57), "0.57×");
        assert_eq!(format_times(9.84), "9.8×");
        assert_eq!(format_times(137.2), "137×");
    }

    #[test]
    fn targets_are_judged_from_the_measured_rates() {
        let measured: Measured = [
            ("C_poll_cycle/tmpfs/1000", 1_000.0),
            ("C_poll_cycle/tmpfs/10000", 1_190.0),
            ("C_poll_cycle/tmpfs/100000", 600.0),
            ("A_host_write_message/tmpfs", 10_000.0),
            ("raw_txn_per_row_full/tmpfs", 20_000.0),
        ]
        .into_iter()
        .map(|(id, rate)| (id.to_string(), rate))
        .collect();
        let text = render(&ReportInput {
            measured: &measured,
            commit_rates: &[],
            machine: "test",
            sim_figures: None,
        });
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
                .to_string()
        };
        // 1,000/s at 1k rows and 600/s at 100k: the cost grew 1.67×.
        assert!(line("C_poll_cycle tmpfs: cost").ends_with("MISSED"));
        // 1,190/s against the reference's 119/s at 10k rows: exactly 10×.
        assert!(line("C_poll_cycle tmpfs at 10k").ends_with(": met"));
        // Half the raw rate: twice its cost.
        assert!(line("host write message tmpfs").ends_with("MISSED"));
        assert!(
            line("| C poll cycle (10 pending) | 10,000 |").contains("| – | 1,190 | 119 | 10× |")
        );
    }

    #[test]
    fn latest_commit_rate_of_each_label_wins() {
        let log = "C_poll_cycle 100\nloops-end 90\nC_poll_cycle 1200\nwrites-end 900\n";
        let rates = read_commit_rates(log);
        assert_eq!(
            rates,
            vec![
                ("loops-end".into(), 90.0),
                ("C_poll_cycle".into(), 1200.0),
                ("writes-end".into(), 900.0),
            ]
        );
    }

    #[test]
    fn simulator_figures_are_read_from_the_log_line() {
        let text = render(&ReportInput {
            measured: &Measured::new(),
            commit_rates: &[],
            machine: "test",
            sim_figures: Some(
                "default_scenario seeds 47 steps_per_s 11507 sim_s_per_wall_s 3680 \
                 seeds_per_min 92 peak_rss_kib 14736",
            ),
        });
        assert!(
            text.contains("world steps per wall second: 11507"),
            "{text}"
        );
        assert!(text.contains("92 over the bench's 47 seeds"), "{text}");
        assert!(
            text.contains("peak RSS of the bench process: 14736 KiB"),
            "{text}"
        );
    }
}
