//! `--junit PATH` on `run` and `merge` writes well-formed JUnit XML that a CI system reads: one
//! test case per property of PROTOCOL §9 and one per failing seed (its failure naming the
//! property and holding the replay command), counts in the suite's attributes that match its
//! cases, and a merged report that covers every shard's seeds.
//!
//! Method: run the built binary, and read its report with a real XML parser (quick-xml).

use clawsim::properties::Property;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What a report holds: the `testsuite`'s attributes, and each test case's name with its
/// outcome (`passed`, `skipped`, `failure: message`).
struct Report {
    suite: BTreeMap<String, String>,
    cases: Vec<(String, String)>,
}

fn parse(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = Reader::from_str(&text);
    let mut report = Report {
        suite: BTreeMap::new(),
        cases: Vec::new(),
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attrs: BTreeMap<String, String> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        let key = a.key.as_ref().to_string();
                        (
                            key,
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
                match e.name().as_ref() {
                    "testsuite" => report.suite = attrs,
                    "testcase" => report.cases.push((attrs["name"].clone(), "passed".into())),
                    "skipped" => report.cases.last_mut().unwrap().1 = "skipped".into(),
                    "failure" => {
                        report.cases.last_mut().unwrap().1 =
                            format!("failure: {}", attrs["message"])
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    report
}

fn clawsim(dir: &Path, args: &[&str]) -> i32 {
    let output = Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args(args)
        .current_dir(dir)
        .env("CI", "1")
        .output()
        .unwrap();
    output.status.code().unwrap()
}

fn count(report: &Report, prefix: &str) -> usize {
    report
        .cases
        .iter()
        .filter(|c| c.1.starts_with(prefix))
        .count()
}

#[test]
fn a_run_reports_one_case_per_property_and_one_per_failing_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clean = ["run", "--seeds", "6", "--jobs", "1", "--junit", "clean.xml"];
    assert_eq!(clawsim(d, &clean), 0);
    let report = parse(&d.join("clean.xml"));
    assert_eq!(
        report.cases.len(),
        Property::ALL.len(),
        "{:?}",
        report.cases
    );
    assert_eq!(count(&report, "failure"), 0);
    assert_eq!(report.suite["failures"], "0");
    assert!(report.cases.iter().any(|c| c.0 == "§9.2 no-duplicate"));

    let failing = [
        "run",
        "--seeds",
        "6",
        "--jobs",
        "1",
        "--junit",
        "failing.xml",
        "--shrink-max",
        "0",
        "--doctor-violations",
    ];
    assert_eq!(clawsim(d, &failing), 1);
    let report = parse(&d.join("failing.xml"));
    assert_eq!(report.cases.len(), Property::ALL.len() + 6);
    assert_eq!(report.suite["tests"], (Property::ALL.len() + 6).to_string());
    assert_eq!(
        report.suite["failures"],
        count(&report, "failure").to_string()
    );
    assert_eq!(count(&report, "failure"), 7, "no-duplicate and six seeds");
    let no_duplicate = report
        .cases
        .iter()
        .find(|c| c.0 == "§9.2 no-duplicate")
        .unwrap();
    assert_eq!(no_duplicate.1, "failure: failed in 6 of 6 seeds");
    let seed = report
        .cases
        .iter()
        .find(|c| c.0 == "seed 3 (bind)")
        .unwrap();
    assert!(
        seed.1.starts_with("failure: §9.2 no-duplicate: doctored"),
        "{seed:?}"
    );
}

#[test]
fn a_merge_reports_every_shard_s_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for shard in ["0/2", "1/2"] {
        let name = format!("s{}.json", &shard[..1]);
        let args = [
            "run",
            "--seeds",
            "9",
            "--jobs",
            "1",
            "--shard",
            shard,
            "--summary-json",
            &name,
            "--shrink-max",
            "0",
            "--doctor-violations",
        ];
        assert_eq!(clawsim(d, &args), 1);
    }
    assert_eq!(
        clawsim(d, &["merge", "s0.json", "s1.json", "--junit", "merged.xml"]),
        1
    );
    let report = parse(&d.join("merged.xml"));
    assert_eq!(report.cases.len(), Property::ALL.len() + 9);
    assert!(
        report.suite["name"].contains("shard 0/1"),
        "{:?}",
        report.suite
    );
}
