//! Every non-zero cell of the design comparison (docs/designs.md) has a saved, shrunk case in
//! `fixtures/designs/`, and each still shows what it was saved for: under its design the run
//! breaks the property its file name ends with (and exactly the properties its expectation
//! lists), while the very same case under v2 holds every property — so it is the design, not the
//! workload or the faults, that breaks it.
//!
//! The files were written by `clawsim compare --save-cases fixtures/designs` (each the first
//! failing seed of its cell and property, shrunk); `clawsim replay FILE` runs one, `clawsim
//! scenarios --dir fixtures/designs` checks them all.

use clawsim::case::Case;
use clawsim::properties::Property;
use clawsim::scenarios::{files, run};
use clawsim::seeds::run_case;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn designs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
        .join("designs")
}

/// The (design, profile, property) cells of the comparison that are not zero, from the table
/// docs/designs.md shows (`docs/designs.json`, written by the same `clawsim compare`).
fn non_zero_cells() -> BTreeSet<(String, String, Property)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/designs.json");
    let cells: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    for cell in cells.as_array().unwrap() {
        let failed = cell["failed_seeds_by_property"].as_object().unwrap();
        for (name, count) in failed {
            assert!(count.as_u64().unwrap() > 0);
            let property = Property::ALL.into_iter().find(|p| p.name() == name);
            out.insert((
                cell["design"].as_str().unwrap().to_string(),
                cell["profile"].as_str().unwrap().to_string(),
                property.unwrap_or_else(|| panic!("unknown property {name}")),
            ));
        }
    }
    out
}

#[test]
fn every_saved_design_case_breaks_its_property_and_holds_under_v2() {
    let files = files(&designs_dir()).unwrap();
    let mut saved = BTreeSet::new();
    let mut problems = Vec::new();
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let run = run(&file).unwrap();
        let case: &Case = &run.scenario.case;
        let design = case.design.clone().unwrap_or_else(|| "v2".into());
        let property = Property::ALL
            .into_iter()
            .find(|p| name == format!("{design}-{}-{}", case.profile, p.name()));
        let Some(property) = property else {
            problems.push(format!(
                "{name}: the file name is not <design>-<profile>-<property> of its case \
                 ({design}, {})",
                case.profile
            ));
            continue;
        };
        saved.insert((design.clone(), case.profile.clone(), property));
        if run.verdict.property_held(property) {
            problems.push(format!("{name}: {property} held under {design}"));
        }
        if !run.problems.is_empty() {
            problems.push(format!("{name}: {:#?}", run.problems));
        }
        let under_v2 = Case {
            design: None,
            ..case.clone()
        };
        let (outcome, verdict) = run_case(&under_v2).unwrap();
        if !verdict.held() || !outcome.errors.is_empty() {
            problems.push(format!(
                "{name}: under v2 the same case fails: {:?} {:?}",
                outcome.errors,
                verdict
                    .violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ));
        }
    }
    let cells = non_zero_cells();
    assert!(cells.len() >= 16, "{cells:?}");
    for (design, profile, property) in cells.difference(&saved) {
        problems.push(format!("no saved case for {design} × {profile} {property}"));
    }
    for (design, profile, property) in saved.difference(&cells) {
        problems.push(format!(
            "a saved case for {design} × {profile} {property}, a cell the table says is zero"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A saved case replays with the CLI as documented next to its cell, and its report names the
/// property it breaks.
#[test]
fn a_saved_design_case_replays_with_clawsim_replay() {
    let file = designs_dir().join("split-wal-virtiofs-no-loss.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .arg("replay")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("§9.1"), "{stdout}");
}
