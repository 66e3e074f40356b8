//! The JUnit XML report (`--junit PATH` on `run` and `merge`), so a CI system shows the verdict
//! in its own test view.
//!
//! One test case per property of PROTOCOL §9 (failed when it failed in any seed, skipped when
//! no seed applied it, so it proved nothing), one for determinism when it was checked, and one
//! per failing seed the summary lists, whose failure text holds the command that replays it.
//! The counts come from the summary, so a merged summary reports the whole sharded run.

use crate::properties::Property;
use crate::summary::{Failure, Summary};
use std::fmt::Write as _;

/// One test case: its name, class, and what failed or why it was skipped.
struct Case {
    class: &'static str,
    name: String,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Skipped(String),
    Failed { message: String, text: String },
}

/// The report of `summary`, made by `build`.
pub fn report(summary: &Summary, build: &str) -> String {
    let cases = cases(summary);
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .count();
    let suite = format!(
        "clawsim run seeds {} shard {} workload {} profiles {}",
        summary.run.range(),
        summary.run.shard,
        summary.run.workload,
        summary.run.profiles.join(",")
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"clawsim\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" \
         time=\"{:.3}\">",
        cases.len(),
        summary.wall.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"{skipped}\" time=\"{:.3}\">",
        escape(&suite),
        cases.len(),
        summary.wall.as_secs_f64()
    );
    write_properties(&mut out, summary, build);
    for case in &cases {
        write_case(&mut out, case);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// What ran, as the suite's properties, so a report found alone says what it covers.
fn write_properties(out: &mut String, summary: &Summary, build: &str) {
    let properties = [
        ("build", build.to_string()),
        ("seeds", summary.seeds.to_string()),
        ("complete", summary.complete.to_string()),
        ("violations", summary.violations().to_string()),
    ];
    out.push_str("    <properties>\n");
    for (name, value) in properties {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    out.push_str("    </properties>\n");
}

fn write_case(out: &mut String, case: &Case) {
    let head = format!(
        "    <testcase classname=\"{}\" name=\"{}\"",
        case.class,
        escape(&case.name)
    );
    match &case.outcome {
        Outcome::Passed => {
            let _ = writeln!(out, "{head}/>");
        }
        Outcome::Skipped(why) => {
            let _ = writeln!(
                out,
                "{head}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                escape(why)
            );
        }
        Outcome::Failed { message, text } => {
            let _ = writeln!(
                out,
                "{head}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                escape(message),
                escape(text)
            );
        }
    }
}

fn cases(summary: &Summary) -> Vec<Case> {
    let mut cases: Vec<Case> = Property::ALL
        .into_iter()
        .map(|p| property_case(summary, p))
        .collect();
    if summary.run.check_determinism {
        cases.push(Case {
            class: "clawsim.determinism",
            name: "each seed gives the same trace twice".into(),
            outcome: match summary.determinism_mismatches {
                0 => Outcome::Passed,
                _ => Outcome::Failed {
                    message: summary.determinism(),
                    text: summary.determinism(),
                },
            },
        });
    }
    cases.extend(summary.failures.iter().map(seed_case));
    let unlisted = summary
        .violations()
        .saturating_sub(summary.failures.len() as u64);
    if unlisted > 0 {
        cases.push(Case {
            class: "clawsim.seeds",
            name: format!("{unlisted} more failing seeds"),
            outcome: Outcome::Failed {
                message: format!("{unlisted} more seeds failed; the summary lists the lowest"),
                text: String::new(),
            },
        });
    }
    cases
}

fn property_case(summary: &Summary, property: Property) -> Case {
    let checks = summary.checks.get(&property).copied().unwrap_or(0);
    let failed = summary.failed_runs.get(&property).copied().unwrap_or(0);
    let outcome = if failed > 0 {
        let message = format!("failed in {failed} of {} seeds", summary.seeds);
        let seeds: Vec<String> = summary
            .failures
            .iter()
            .filter(|f| f.failed.contains(&property.to_string()))
            .map(|f| {
                format!(
                    "seed {} ({}): {}\nreplay: {}",
                    f.seed, f.profile, f.first, f.replay
                )
            })
            .collect();
        Outcome::Failed {
            message,
            text: seeds.join("\n"),
        }
    } else if checks == 0 {
        Outcome::Skipped(format!("applied in none of {} seeds", summary.seeds))
    } else {
        Outcome::Passed
    };
    Case {
        class: "clawsim.properties",
        name: property.to_string(),
        outcome,
    }
}

fn seed_case(failure: &Failure) -> Case {
    let mut text = format!("replay: {}", failure.replay);
    if let Some(artifact) = &failure.artifact {
        let _ = write!(text, "\nartifact: {artifact}");
    }
    Case {
        class: "clawsim.seeds",
        name: format!("seed {} ({})", failure.seed, failure.profile),
        outcome: Outcome::Failed {
            message: format!("{}: {}", failure.failed.join(", "), failure.first),
            text,
        },
    }
}

/// Text made safe inside an attribute or an element: markup characters escaped, and the
/// characters XML 1.0 cannot hold at all replaced.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
