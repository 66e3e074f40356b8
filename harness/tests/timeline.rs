//! The timeline is what a person opens first when a seed fails, so it must tell the story in
//! the words of the picture: a message is `m0`, its answer `m0 reply`, never
//! `msg-1789512547000-5b90c0fd` or `seq Some(3)`; the violation's message and the steps that
//! prove it are highlighted; the same run draws the same bytes.
//!
//! Method: the host-crash scenario (one message whose answer is sent twice across a host
//! crash) is drawn and its SVG pinned; then the same run is judged by a doctored verdict that
//! names internal ids and `Debug` values, and the drawing must name and highlight them.

use clawsim::properties::{check, Property, Verdict, Violation};
use clawsim::scenarios::{run, SCENARIO_DIR};
use clawsim::timeline::{timeline_html, timeline_svg, TimelineFormat};
use clawsim_sim::world::RunOutcome;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(SCENARIO_DIR)
        .join(name)
}

fn host_crash() -> RunOutcome {
    run(&scenario("host-crash-mid-send.toml")).unwrap().outcome
}

#[test]
fn the_host_crash_scenario_draws_the_same_pinned_chart() {
    let outcome = host_crash();
    let verdict = check(&outcome.record());
    let svg = timeline_svg(&outcome, &verdict);
    assert_eq!(
        svg,
        timeline_svg(&outcome, &verdict),
        "same run, same bytes"
    );
    assert!(!svg.contains("Some("), "no Debug text");
    assert!(!svg.contains("msg-"), "no internal message id");
    for shown in [
        "m0 seq 2",
        "host-crash",
        "channel-slow",
        "quiet period",
        "chat0",
    ] {
        assert!(svg.contains(shown), "{shown} is drawn");
    }
    insta::assert_snapshot!("host-crash-mid-send.svg", svg);
}

#[test]
fn a_violation_is_named_with_the_charts_names_and_its_evidence_highlighted() {
    let outcome = host_crash();
    let message_id = outcome.ledger.sent[0].message_id.clone().unwrap();
    let first = outcome.ledger.received().next().unwrap();
    let row = first.message_out_id.clone();
    let session = first.session_id.clone();
    let at_ms = first.at_ms;
    let verdict = Verdict {
        checks: Default::default(),
        unjudged: Default::default(),
        skipped: Default::default(),
        violations: vec![Violation {
            property: Property::NoDuplicate,
            detail: format!(
                "{row} (seq Some(3)) reached the channel 2 times; it answers {message_id} \
                 (reply to None)"
            ),
            at_ms: Some(at_ms),
            session: Some(session.clone()),
        }],
    };
    let html = timeline_html(&outcome, &verdict);
    // `TIMELINE_DUMP=DIR` keeps the page, to look at it in a browser.
    if let Ok(dir) = std::env::var("TIMELINE_DUMP") {
        std::fs::write(Path::new(&dir).join("violation.html"), &html).unwrap();
    }
    assert!(
        html.contains(
            "✗1 §9.2 no-duplicate (chat0) at 21.102 s: m0 reply (seq 3) reached the \
             channel 2 times; it answers m0 (reply to -)"
        ),
        "the violation is told with the chart's names"
    );
    for internal in [
        row.as_str(),
        message_id.as_str(),
        session.as_str(),
        "Some(",
        "None",
    ] {
        assert!(!html.contains(internal), "{internal} is not shown");
    }
    assert!(
        html.contains("evidence of ✗1: m0 (chat0"),
        "the message's path is highlighted"
    );
    assert!(
        html.contains("evidence of ✗1: step 59 · 21.102 s · chat0 channel: sent m0 reply"),
        "the receipt that proves it is highlighted"
    );
    assert!(
        html.contains("<tr class=\"evidence\">"),
        "and listed as evidence"
    );
}

#[test]
fn a_timeline_is_svg_html_or_png_and_nothing_else() {
    assert_eq!(
        TimelineFormat::of_path(Path::new("a.svg")),
        Ok(TimelineFormat::Svg)
    );
    assert_eq!(
        TimelineFormat::of_path(Path::new("a.html")),
        Ok(TimelineFormat::Html)
    );
    assert_eq!(
        TimelineFormat::of_path(Path::new("a.PNG")),
        Ok(TimelineFormat::Png)
    );
    assert!(TimelineFormat::of_path(Path::new("a.pdf")).is_err());
    assert!(TimelineFormat::of_path(Path::new("a")).is_err());

    let outcome = host_crash();
    let verdict = check(&outcome.record());
    match TimelineFormat::Png.draw(&outcome, &verdict) {
        Ok(png) => assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a real PNG"),
        Err(error) => assert!(error.contains("no fonts"), "{error}"),
    }
}

#[test]
fn replay_refuses_a_timeline_it_cannot_draw_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("run.pdf");
    let output = Command::new(env!("CARGO_BIN_EXE_clawsim"))
        .args(["replay", "2", "--timeline"])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(".svg, .html or .png"), "{stderr}");
    assert!(!target.exists());
    assert!(
        !stderr.contains("trace "),
        "refused before the run: {stderr}"
    );
}
