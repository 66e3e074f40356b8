//! The `clawsim` command line: `run` prints its seed range and build first, ends with a summary
//! table, writes the JSON summary with the keys the issue names, exits 0 when every property
//! held; shards split a range; `replay` gives the same trace byte for byte, writes it and draws
//! it. Method: run the built binary on a few seeds.

use std::path::Path;
use std::process::{Command, Output};

fn clawsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args(args)
        .env("CI", "1")
        .output()
        .expect("clawsim runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_prints_its_range_and_build_then_a_summary_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("summary.json");
    let output = clawsim(&[
        "run",
        "--seeds",
        "4",
        "--seed",
        "100",
        "--jobs",
        "2",
        "--summary-json",
        json_path.to_str().unwrap(),
        "--artifacts",
        dir.path().join("artifacts").to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let first = stderr.lines().next().unwrap_or("");
    assert!(first.starts_with("clawsim run: seeds 100..104"), "{first}");
    assert!(first.contains("build clawsim 0."), "{first}");
    for row in [
        "seeds            4",
        "seeds/min",
        "faults injected",
        "§9.1 no-loss",
        "violations       0",
    ] {
        assert!(stdout.contains(row), "{row} missing from\n{stdout}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    for key in [
        "seeds",
        "violations",
        "seeds_per_min",
        "sim_seconds",
        "faults",
        "properties",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(json["seeds"], 4);
    assert_eq!(json["violations"], 0);
    assert!(json["properties"]["no-loss"].as_u64().unwrap() > 0);
}

#[test]
fn shards_run_disjoint_parts_of_a_range() {
    let seeds_of = |shard: &str| {
        let output = clawsim(&[
            "run",
            "--seeds",
            "3",
            "--shard",
            shard,
            "--profile",
            "bind",
            "--jobs",
            "1",
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("seeds "))
            .unwrap()
            .to_string();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(seeds_of("0/2") + seeds_of("1/2"), 3);
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let output = clawsim(&["run", "--shard", "3/2"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("shard"));
    let output = clawsim(&["run", "--seeds", "1", "--profile", "nfs"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn replay_gives_the_same_trace_byte_for_byte_and_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let trace = |name: &str| {
        let path = dir.path().join(name);
        let output = clawsim(&[
            "replay",
            "5",
            "--profile",
            "virtiofs",
            "--trace",
            path.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        std::fs::read(&path).unwrap()
    };
    let first = trace("a.jsonl");
    assert!(!first.is_empty());
    assert_eq!(first, trace("b.jsonl"));
    for picture in ["t.svg", "t.html"] {
        let path = dir.path().join(picture);
        let output = clawsim(&["replay", "5", "--timeline", path.to_str().unwrap()]);
        assert!(output.status.success());
        let drawn = std::fs::read_to_string(&path).unwrap();
        assert!(
            drawn.contains("<svg") && drawn.contains("router"),
            "{picture}"
        );
    }
    assert!(Path::new(&dir.path().join("t.html")).exists());
}

#[test]
fn run_can_choose_the_burst_workload_and_refuses_the_retired_mixed_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = clawsim(&[
        "run",
        "--seeds",
        "2",
        "--workload",
        "bursts",
        "--shrink-time",
        "1s",
        "--artifacts",
        dir.path().to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert!(
        stderr
            .lines()
            .next()
            .unwrap_or("")
            .contains("workload bursts"),
        "{stderr}"
    );
    // 0: every property held; 1: a finding, saved as an artifact. Never a usage error.
    assert!(matches!(output.status.code(), Some(0 | 1)), "{stderr}");
    assert!(text(&output.stdout).contains("seeds            2"));
    // The swarm default replaced `mixed`; asking for it is a usage error that names the choices.
    let retired = clawsim(&["run", "--seeds", "1", "--workload", "mixed"]);
    let stderr = text(&retired.stderr);
    assert_eq!(retired.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("swarm") && stderr.contains("bursts"),
        "{stderr}"
    );
}
