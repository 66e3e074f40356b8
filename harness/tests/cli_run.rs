//! `clawsim run`, `replay` and `scenarios` as a person meets them: a run that would check
//! nothing is an error (exit 2), not a green run; the start seed may be random or a commit and
//! is printed first; every shard covers every profile; the summary says what ran and whether
//! each seed ran the same twice; output paths are checked before the first world; a failure's
//! replay command works from any folder, for every failure, shrunk or not; replay takes
//! scenario files and refuses a broken case with a reason; a closed stdout ends quietly; an
//! unknown scenario name lists the known ones; logs are plain when piped.
//!
//! Method: run the built binary with tiny budgets (a few seeds, one job), each test in its own
//! temporary folders, never racing the clock: nothing here sleeps or waits for a deadline.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn clawsim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clawsim"));
    command.env("CI", "1").env_remove("RUST_LOG");
    command
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    clawsim()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("clawsim runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Runs `clawsim run` with `args` plus `--summary-json -` and returns the JSON from stdout
/// (which must hold nothing else) and stderr.
fn run_json(dir: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let artifacts = dir.join("artifacts");
    let mut all = vec!["run", "--jobs", "1", "--summary-json", "-", "--artifacts"];
    all.push(artifacts.to_str().unwrap());
    all.extend_from_slice(args);
    let output = run_in(dir, &all);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not only JSON: {e}\n{}", show(&output)));
    (json, text(&output.stderr))
}

#[test]
fn a_run_that_would_check_nothing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["run", "--seeds", "0"], "--seeds 0"),
        (&["run", "--time", "0s"], "--time 0s"),
        // Two seeds make one round of three profiles: shard 1 of 2 holds none.
        (&["run", "--seeds", "2", "--shard", "1/2"], "holds no seed"),
        (&["run", "--seeds", "2", "--jobs", "0"], "--jobs"),
    ];
    for (args, reason) in cases {
        let output = run_in(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}\n{}", show(&output));
        let stderr = text(&output.stderr);
        assert!(stderr.contains(reason), "{args:?}: {reason}\n{stderr}");
        assert!(
            !stderr.contains("clawsim run: seeds"),
            "it started: {stderr}"
        );
    }
    assert!(!dir.path().join("artifacts").exists());
}

#[test]
fn a_random_start_seed_is_printed_first_and_runs_again_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let (json, stderr) = run_json(dir.path(), &["--seeds", "1", "--seed", "random"]);
    let first = stderr.lines().next().unwrap_or("");
    let start = json["seed_start"].as_u64().expect("seed_start");
    assert!(
        first.starts_with(&format!("clawsim run: seeds {start}..{}", start + 1))
            && first.contains(&format!("run again with --seed {start}")),
        "{first}"
    );
    let (again, _) = run_json(dir.path(), &["--seeds", "1", "--seed", &start.to_string()]);
    assert_eq!(again["seed_start"], start);
    assert_eq!(again["seeds_by_profile"], json["seeds_by_profile"]);
    assert_eq!(
        again["steps"], json["steps"],
        "the same seed, the same world"
    );
}

#[test]
fn a_git_commit_is_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let hash = "4f2c9e0d1b7a8c3e5f6a7b8c9d0e1f2a3b4c5d6e";
    let (json, stderr) = run_json(dir.path(), &["--seeds", "1", "--seed", hash]);
    let folded = clawsim::seeds::fold_commit(hash).unwrap();
    assert_eq!(json["seed_start"], folded);
    assert!(stderr.lines().next().unwrap().contains(hash), "{stderr}");

    // `--seed commit` reads HEAD where it runs: in this repository, the commit git names.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo)
        .output();
    if let Some(head) = head.ok().filter(|h| h.status.success()) {
        let head = text(&head.stdout).trim().to_string();
        let output = clawsim()
            .args(["run", "--seeds", "1", "--jobs", "1", "--summary-json", "-"])
            .arg("--artifacts")
            .arg(dir.path().join("artifacts"))
            .arg("--seed")
            .arg("commit")
            .current_dir(repo)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", show(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            json["seed_start"],
            clawsim::seeds::fold_commit(&head).unwrap()
        );
    }
    // Outside a repository it is an error that says what it ran.
    let output = clawsim()
        .args(["run", "--seeds", "1", "--seed", "commit"])
        .env("GIT_DIR", dir.path().join("not-a-repository"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    assert!(text(&output.stderr).contains("git rev-parse HEAD"));
}

/// The bug: shards took every N-th seed, and a seed's profile is its residue mod 3, so
/// `--shard I/3` ran one profile per shard. Three shards of nine seeds must each run all three
/// profiles once, and together the whole range.
#[test]
fn every_shard_covers_every_profile() {
    let dir = tempfile::tempdir().unwrap();
    let mut ranges = Vec::new();
    for index in 0..3 {
        let shard = format!("{index}/3");
        let (json, _) = run_json(dir.path(), &["--seeds", "9", "--shard", &shard]);
        assert_eq!(json["seeds"], 3, "{json}");
        assert_eq!(json["shard"], shard.as_str());
        for profile in ["bind", "virtiofs", "power-loss"] {
            assert_eq!(
                json["seeds_by_profile"][profile], 1,
                "shard {shard}: {json}"
            );
        }
        ranges.push((json["seed_first"].as_u64(), json["seed_last"].as_u64()));
    }
    assert_eq!(
        ranges,
        [(Some(0), Some(2)), (Some(3), Some(5)), (Some(6), Some(8))]
    );
}

#[test]
fn the_summary_says_what_ran_and_what_the_determinism_check_found() {
    let dir = tempfile::tempdir().unwrap();
    let (json, stderr) = run_json(
        dir.path(),
        &[
            "--seeds",
            "2",
            "--seed",
            "40",
            "--profile",
            "bind,virtiofs",
            "--workload",
            "bursts",
            "--check-determinism",
        ],
    );
    assert_eq!(json["seed_range"], "40..42");
    assert_eq!(json["shard"], "0/1");
    assert_eq!(json["workload"], "bursts");
    assert_eq!(json["profiles"], serde_json::json!(["bind", "virtiofs"]));
    assert_eq!(json["jobs"], 1);
    assert_eq!(
        json["determinism"],
        serde_json::json!({"checked": true, "held": true, "seeds": 2, "mismatches": 0})
    );
    // With the JSON on stdout, the table goes to stderr.
    for row in [
        "run              seeds 40..42 shard 0/1 profiles bind,virtiofs workload bursts design v2 jobs 1",
        "determinism      held: every one of 2 seeds gave the same trace twice",
        "violations       0",
    ] {
        assert!(stderr.contains(row), "{row} missing from\n{stderr}");
    }
    let (json, stderr) = run_json(dir.path(), &["--seeds", "1"]);
    assert_eq!(json["determinism"], serde_json::json!({"checked": false}));
    assert!(stderr.contains("determinism      not checked"), "{stderr}");
}

#[test]
fn output_paths_are_checked_before_the_first_world() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let missing = dir.path().join("no/such/folder/summary.json");
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec![
                "run",
                "--seeds",
                "1",
                "--summary-json",
                missing.to_str().unwrap(),
            ],
            "does not exist",
        ),
        (
            vec!["run", "--seeds", "1", "--artifacts", file.to_str().unwrap()],
            "not a folder",
        ),
        (
            vec!["replay", "3", "--timeline", missing.to_str().unwrap()],
            "does not exist",
        ),
        (
            vec!["replay", "3", "--trace", dir.path().to_str().unwrap()],
            "is a folder",
        ),
    ];
    for (args, reason) in cases {
        let output = run_in(dir.path(), &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}\n{}", show(&output));
        let stderr = text(&output.stderr);
        assert!(stderr.contains(reason), "{args:?}: {reason}\n{stderr}");
        assert!(
            !stderr.contains("clawsim run: seeds") && !stderr.contains("clawsim replay: seed"),
            "a world ran before the check: {stderr}"
        );
    }
}

/// Every failure is listed with a command that replays it, whether it was shrunk or not, and
/// that command works pasted into a shell in another folder. The core holds its properties, so
/// the failures are doctored (`--doctor-violations`, hidden); their replays hold.
#[test]
fn every_failure_is_listed_with_a_replay_command_that_works_from_any_folder() {
    let here = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let output = run_in(
        here.path(),
        &[
            "run",
            "--seeds",
            "3",
            "--jobs",
            "1",
            "--doctor-violations",
            "--shrink-max",
            "1",
            "--shrink-time",
            "1s",
            "--artifacts",
            "relative-artifacts",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("shrunk 1 of 3; the rest are listed with their replay commands"),
        "{stderr}"
    );
    let stdout = text(&output.stdout);
    let replays: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("replay: "))
        .collect();
    assert_eq!(replays.len(), 3, "{stdout}");
    let exe = env!("CARGO_BIN_EXE_clawsim");
    for replay in &replays {
        assert!(replay.starts_with(exe), "not this binary by path: {replay}");
    }
    let artifact = here.path().join("relative-artifacts/seed-0-bind");
    assert!(artifact.join("shrunk.json").exists(), "{stderr}");
    assert!(
        replays[0].contains(artifact.to_str().unwrap()),
        "{}",
        replays[0]
    );
    for replay in replays {
        let output = Command::new("sh")
            .args(["-c", replay])
            .current_dir(elsewhere.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{replay}\n{}", show(&output));
        assert!(text(&output.stdout).contains("0 violations"), "{replay}");
    }
}

#[test]
fn replay_takes_a_scenario_file_and_draws_its_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios/quiet-day.toml");
    let picture = dir.path().join("quiet-day.svg");
    let output = clawsim()
        .arg("replay")
        .arg(&scenario)
        .arg("--timeline")
        .arg(&picture)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(text(&output.stderr).contains("seed 1 profile bind chats 2 messages 5"));
    assert!(std::fs::read_to_string(&picture).unwrap().contains("<svg"));
}

/// A hand-edited case naming a chat that does not exist crashed the world with an index out
/// of bounds; it must be refused with the file, the message and the chat named.
#[test]
fn a_case_with_a_missing_chat_or_no_chats_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut case = clawsim::case::Case::default_scenario(2, clawsim_sim::fs::MountProfile::Bind);
    case.workload.messages[0].chat = 7;
    let missing_chat = dir.path().join("missing-chat.json");
    std::fs::write(&missing_chat, serde_json::to_string(&case).unwrap()).unwrap();
    case.workload.chats.clear();
    let no_chats = dir.path().join("no-chats.json");
    std::fs::write(&no_chats, serde_json::to_string(&case).unwrap()).unwrap();
    let scenario = dir.path().join("broken.toml");
    std::fs::write(
        &scenario,
        r#"name = "broken"
seed = 1
profile = "bind"
active_ms = 60000
quiet_ms = 60000
[workload]
answer_delay_ms_max = 0
chats = [{ agent_group_id = "ag0", messaging_group_id = "mg0", platform_id = "chat0", per_thread = false }]
messages = [{ at_ms = 5000, chat = 1, sender = "u0", sender_id = "id0", text = "m0 hello" }]
[faults]
faults = []
"#,
    )
    .unwrap();
    let cases = [
        (&missing_chat, "names chat 7"),
        (&no_chats, "no chats"),
        (&scenario, "names chat 1"),
    ];
    for (file, reason) in cases {
        let output = clawsim().arg("replay").arg(file).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", show(&output));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(reason) && stderr.contains(file.to_str().unwrap()),
            "{reason}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = run_in(
        dir.path(),
        &["scenarios", "--dir", dir.path().to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    assert!(!text(&output.stderr).contains("panicked"));
}

/// `clawsim replay 5 --trace | head`: the reader goes away mid-trace; the replay must end
/// quietly with status 0, not panic on the broken pipe. The same for `run`'s summary table.
#[test]
fn a_closed_stdout_ends_replay_and_run_quietly() {
    let mut child = clawsim()
        .args(["replay", "5", "--profile", "bind", "--trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(first[0], b'{', "the trace is JSON lines");
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(
        !text(&output.stderr).contains("panicked"),
        "{}",
        show(&output)
    );

    // `clawsim run | true`: the summary table meets a closed pipe; the status stays the
    // verdict's.
    let dir = tempfile::tempdir().unwrap();
    let mut child = clawsim()
        .args(["run", "--seeds", "1", "--jobs", "1", "--artifacts"])
        .arg(dir.path().join("artifacts"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(
        !text(&output.stderr).contains("panicked"),
        "{}",
        show(&output)
    );
}

#[test]
fn scenarios_work_from_any_folder_and_an_unknown_name_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["scenarios", "--name", "zzz"]);
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("zzz") && stderr.contains("quiet-day") && stderr.contains("poison-message"),
        "{stderr}"
    );
    let output = run_in(dir.path(), &["scenarios", "--name", "quiet-day"]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    assert!(
        text(&output.stdout).starts_with("ok   quiet day"),
        "{}",
        show(&output)
    );
    let missing = dir.path().join("none-here");
    let output = run_in(
        dir.path(),
        &["scenarios", "--dir", missing.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    assert!(text(&output.stderr).contains("none-here"));
}

/// Piped logs carry no colour codes and no wall-clock stamp (a world's log lines have the
/// simulated time as a field; a second clock beside it would only mislead).
#[test]
fn piped_logs_are_plain_and_carry_no_wall_clock() {
    let output = clawsim()
        .args(["replay", "7", "--profile", "power-loss"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let stderr = text(&output.stderr);
    let logs: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("DEBUG") || l.contains("INFO") || l.contains("WARN"))
        .collect();
    assert!(!logs.is_empty(), "RUST_LOG=debug logged nothing: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in piped logs");
    for line in logs {
        let stamped = line.len() > 4 && line[..4].bytes().all(|b| b.is_ascii_digit());
        assert!(!stamped, "wall-clock stamp: {line}");
    }
}

#[test]
fn help_states_the_exit_statuses() {
    for args in [&["--help"][..], &["run", "--help"], &["replay", "--help"]] {
        let output = clawsim().args(args).output().unwrap();
        assert!(output.status.success());
        let help = text(&output.stdout);
        assert!(
            help.contains("Exit status: 0 every property held, 1 a violation, 2 an error"),
            "{args:?}: {help}"
        );
    }
    let output = clawsim().args(["--help"]).output().unwrap();
    let help = text(&output.stdout);
    assert!(
        help.contains("RUST_LOG") && help.contains("NO_COLOR"),
        "{help}"
    );
}
