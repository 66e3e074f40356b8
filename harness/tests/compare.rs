//! `clawsim compare` runs the same seeds under each named design and profile and prints one
//! table row per cell: today's protocol (v2) holds every property, and the single layout's
//! shared `session.db` reports §9.5 "by design" instead of a pass or a violation.
//! Method: the binary on a tiny budget (one seed, two designs, the bind profile), its table on
//! stdout and its JSON summary read back.

use std::process::Command;

#[test]
fn compare_prints_a_row_per_design_and_marks_single_writer_by_design() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("compare.json");
    let output = Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args(["compare", "--seeds", "1", "--designs", "v2,single-delete"])
        .args(["--profile", "bind", "--jobs", "1", "--summary-json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    let row = |design: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(design))
            .unwrap_or_else(|| panic!("no {design} row in {stdout}"))
            .to_string()
    };
    let v2: Vec<String> = row("v2 ").split_whitespace().map(String::from).collect();
    assert_eq!(&v2[..3], ["v2", "bind", "1"]);
    assert!(v2[3..].iter().all(|cell| cell == "0"), "{stdout}");
    assert!(row("single-delete").contains("design"), "{stdout}");
    let cells: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(cells.as_array().unwrap().len(), 2);
    assert_eq!(cells[1]["by_design"][0], "single-writer");
    assert_eq!(cells[0]["seeds"], 1);
}

#[test]
fn an_unknown_design_is_refused_with_the_known_names() {
    let output = Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args(["compare", "--designs", "nfs-wal", "--seeds", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("v1-single-wal"), "{stderr}");
}
