//! `clawsim merge` and what a long or sharded run leaves for it: the merged summary of N
//! shards is the summary one unsharded run over the same seeds writes (everything but
//! wall-clock figures), with failures or without; merge refuses summaries of different builds
//! or workloads, overlapping seed ranges, summaries of different runs, and names the shards
//! missing from an I/N set; a partial summary cannot pass; `--fail-fast` stops at the first
//! failure with exit 1 and a summary marked partial; a run killed mid-way has left a summary.
//!
//! Method: run the built binary with a few seeds and one job, each test in its own folder.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn clawsim(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args(args)
        .current_dir(dir)
        .env("CI", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("clawsim runs")
}

fn show(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `clawsim run` with `args`, its summary written to `name`; returns its path.
fn run_summary(dir: &Path, name: &str, args: &[&str], status: i32) -> PathBuf {
    let path = dir.join(name);
    let mut all = vec![
        "run",
        "--summary-json",
        path.to_str().unwrap(),
        "--shrink-max",
        "0",
    ];
    all.extend_from_slice(args);
    let output = clawsim(dir, &all);
    assert_eq!(output.status.code(), Some(status), "{}", show(&output));
    path
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn merge(dir: &Path, summaries: &[&Path]) -> Output {
    let mut args = vec!["merge".to_string()];
    args.extend(summaries.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    clawsim(dir, &args)
}

/// The summary without what depends on the wall clock.
fn without_wall_clock(mut summary: Value) -> Value {
    let object = summary.as_object_mut().unwrap();
    object.remove("wall_seconds");
    object.remove("seeds_per_min");
    summary
}

#[test]
fn merged_shards_equal_one_unsharded_run_over_the_same_seeds() {
    for extra in [&[][..], &["--doctor-violations"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let status = if extra.is_empty() { 0 } else { 1 };
        let common = ["--seed", "40", "--seeds", "20", "--check-determinism"];
        let args = |more: &[&'static str]| -> Vec<&str> {
            common.iter().chain(more).chain(extra).copied().collect()
        };
        let whole = run_summary(dir.path(), "whole.json", &args(&["--jobs", "3"]), status);
        let shards: Vec<PathBuf> = ["0/3", "1/3", "2/3"]
            .iter()
            .enumerate()
            .map(|(i, shard)| {
                let name = format!("shard-{i}.json");
                run_summary(
                    dir.path(),
                    &name,
                    &args(&["--jobs", "1", "--shard", shard]),
                    status,
                )
            })
            .collect();
        let merged_path = dir.path().join("merged.json");
        // In another order than their indexes: the result does not depend on it.
        let output = clawsim(
            dir.path(),
            &[
                "merge",
                shards[2].to_str().unwrap(),
                shards[0].to_str().unwrap(),
                shards[1].to_str().unwrap(),
                "--summary-json",
                merged_path.to_str().unwrap(),
            ],
        );
        assert_eq!(output.status.code(), Some(status), "{}", show(&output));
        let merged = without_wall_clock(read(&merged_path));
        assert_eq!(merged, without_wall_clock(read(&whole)));
        assert_eq!(merged["seeds"], 20);
        if status == 1 {
            assert_eq!(merged["failures"].as_array().unwrap().len(), 20);
        }
    }
}

/// The summaries of shard 0/2 and 1/2 of `--seed 0 --seeds 12`, plus any extra arguments.
fn two_shards(dir: &Path, second: &[&str]) -> (PathBuf, PathBuf) {
    let base = ["--seed", "0", "--seeds", "12", "--jobs", "1"];
    let first = [&base[..], &["--shard", "0/2"]].concat();
    let second = [&base[..], &["--shard", "1/2"], second].concat();
    (
        run_summary(dir, "a.json", &first, 0),
        run_summary(dir, "b.json", &second, 0),
    )
}

fn assert_refused(output: &Output, words: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{}", show(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for word in words {
        assert!(stderr.contains(word), "{word:?} not in {}", show(output));
    }
}

#[test]
fn merge_refuses_what_is_not_one_run_and_names_missing_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = two_shards(d, &[]);
    assert_eq!(merge(d, &[&a, &b]).status.code(), Some(0));
    assert_refused(&merge(d, &[&a]), &["missing shard 1/2 of seeds 0..12"]);
    assert_refused(
        &merge(d, &[&a, &a, &b]),
        &["overlapping seed ranges", "shard 0/2"],
    );

    let mixed = run_summary(
        d,
        "mixed.json",
        &[
            "--seed",
            "0",
            "--seeds",
            "12",
            "--jobs",
            "1",
            "--shard",
            "1/2",
            "--workload",
            "bursts",
        ],
        0,
    );
    assert_refused(
        &merge(d, &[&a, &mixed]),
        &["different workloads", "swarm (", "bursts ("],
    );

    let mut other_design = read(&b);
    other_design["run"]["design"] = "split-wal".into();
    let other_design_path = d.join("other-design.json");
    std::fs::write(&other_design_path, other_design.to_string()).unwrap();
    assert_refused(
        &merge(d, &[&a, &other_design_path]),
        &["different designs", "v2 (", "split-wal ("],
    );

    let mut other_build = read(&b);
    other_build["build"] = "clawsim 0.0.9 (0123456789ab)".into();
    let other_build_path = d.join("other-build.json");
    std::fs::write(&other_build_path, other_build.to_string()).unwrap();
    assert_refused(
        &merge(d, &[&a, &other_build_path]),
        &["different builds", "0.0.9"],
    );

    let overlapping = run_summary(
        d,
        "c.json",
        &["--seed", "6", "--seeds", "12", "--jobs", "1"],
        0,
    );
    assert_refused(
        &merge(d, &[&a, &b, &overlapping]),
        &["overlapping seed ranges", "6..18"],
    );
    let disjoint = run_summary(
        d,
        "d.json",
        &["--seed", "100", "--seeds", "3", "--jobs", "1"],
        0,
    );
    assert_refused(
        &merge(d, &[&a, &b, &disjoint]),
        &["not shards of one run", "100..103"],
    );

    std::fs::write(d.join("junk.json"), "{}").unwrap();
    assert_refused(
        &merge(d, &[&d.join("junk.json")]),
        &["not a clawsim run summary"],
    );
}

#[test]
fn fail_fast_stops_at_the_first_failure_and_a_partial_summary_cannot_pass_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = run_summary(
        d,
        "fast.json",
        &[
            "--seeds",
            "300",
            "--jobs",
            "1",
            "--fail-fast",
            "--doctor-violations",
        ],
        1,
    );
    let summary = read(&path);
    assert_eq!(summary["seeds"], 1, "one job stops after its first seed");
    assert_eq!(summary["complete"], false);
    assert_eq!(
        merge(d, &[&path]).status.code(),
        Some(1),
        "a violation is a violation"
    );

    let clean = run_summary(d, "clean.json", &["--seeds", "3", "--jobs", "1"], 0);
    assert_eq!(read(&clean)["complete"], true);
    let mut partial = read(&clean);
    partial["complete"] = false.into();
    let partial_path = d.join("partial.json");
    std::fs::write(&partial_path, partial.to_string()).unwrap();
    assert_refused(
        &merge(d, &[&partial_path]),
        &["not every seed was checked", "partial.json"],
    );
}

#[test]
fn a_run_killed_before_its_end_has_left_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args([
            "run",
            "--time",
            "1h",
            "--jobs",
            "1",
            "--summary-every",
            "0s",
            "--summary-json",
        ])
        .arg(&path)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Waits for the first periodic write (after the first seed), not for a time.
    let written = loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            break text;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::yield_now();
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // Written whole (a temporary file renamed over it), never half.
    let summary: Value = serde_json::from_str(&written).expect("the summary is whole");
    assert!(summary["seeds"].as_u64().unwrap() >= 1);
    assert_eq!(summary["complete"], false);
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(again["complete"], false);
}
