//! The timeline: a run drawn as a picture, what a person looks at first when a seed fails.
//!
//! One lane per actor (the router, the delivery passes, the sweep, the channel, the runtime,
//! each session's agent-runner, faults, users), time left to right. Each step is a dot with its
//! trace line as a tooltip; each workload message is an arrow from the moment the host accepted
//! it to the moment the platform received its answer; each fault is a red line across every
//! lane; each violation with a time is a highlighted band, and every violation is listed above
//! the picture. Plain SVG (inside a small HTML page for `.html`), no scripts, no dependencies.

use crate::properties::{first_answers, Verdict};
use clawsim_oracle::event::Actor;
use clawsim_sim::trace::TraceEvent;
use clawsim_sim::world::RunOutcome;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const LANE_HEIGHT: f64 = 28.0;
const LEFT: f64 = 230.0;
const WIDTH: f64 = 1800.0;
const TOP: f64 = 30.0;

/// The run as a standalone SVG picture.
pub fn timeline_svg(outcome: &RunOutcome, verdict: &Verdict) -> String {
    let events = outcome.trace.events();
    let lanes = lanes(events);
    let (start, end) = span(events);
    let x = |at_ms: i64| LEFT + (at_ms - start) as f64 / (end - start).max(1) as f64 * WIDTH;
    let y = |lane: &str| {
        TOP + lanes.get(lane).copied().unwrap_or(0) as f64 * LANE_HEIGHT + LANE_HEIGHT / 2.0
    };
    let height = TOP + lanes.len() as f64 * LANE_HEIGHT + 40.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="monospace" font-size="11">"#,
        LEFT + WIDTH + 20.0
    );
    draw_lanes(&mut svg, &lanes);
    draw_violations(&mut svg, verdict, &x, height);
    draw_faults(&mut svg, outcome, &x, height);
    draw_messages(&mut svg, outcome, &x, &y);
    for event in events {
        let lane = lane_of(event);
        let color = color_of(event.actor.name());
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"><title>{}</title></circle>"#,
            x(event.at_ms),
            y(&lane),
            escape(&format!(
                "{} ms {} {}",
                event.at_ms - start,
                lane,
                event.event
            ))
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{:.0}">0 s</text><text x="{:.0}" y="{:.0}" text-anchor="end">{:.0} s</text>"#,
        height - 10.0,
        LEFT + WIDTH,
        height - 10.0,
        (end - start) as f64 / 1_000.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The run as an HTML page: the violations listed, then the picture.
pub fn timeline_html(outcome: &RunOutcome, verdict: &Verdict) -> String {
    let mut page = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\">");
    let _ = writeln!(
        page,
        "<title>clawsim seed {} ({})</title></head><body style=\"font-family:monospace\">",
        outcome.seed, outcome.profile
    );
    let _ = writeln!(
        page,
        "<h3>seed {} profile {} trace {:016x}: {} steps, {} violations</h3>",
        outcome.seed,
        escape(&outcome.profile),
        outcome.trace_hash,
        outcome.steps,
        verdict.violations.len()
    );
    for violation in &verdict.violations {
        let _ = writeln!(
            page,
            "<p style=\"color:#b00\">{}</p>",
            escape(&violation.to_string())
        );
    }
    page.push_str(&timeline_svg(outcome, verdict));
    page.push_str("</body></html>\n");
    page
}

/// The lane an event is drawn in: its actor, per session for agent-runners.
fn lane_of(event: &TraceEvent) -> String {
    match (event.actor, &event.session) {
        (Actor::Runner | Actor::Provider, Some(session)) => format!("runner {}", short(session)),
        (actor, _) => actor.name().to_string(),
    }
}

fn short(session: &str) -> &str {
    session.rsplit('-').next().unwrap_or(session)
}

/// Lanes in the order actors first appear, users and faults first.
fn lanes(events: &[TraceEvent]) -> BTreeMap<String, usize> {
    let mut order: Vec<String> = vec!["faults".into(), "user".into(), "router".into()];
    for event in events {
        let lane = lane_of(event);
        if !order.contains(&lane) {
            order.push(lane);
        }
    }
    order
        .into_iter()
        .enumerate()
        .map(|(i, lane)| (lane, i))
        .collect()
}

fn span(events: &[TraceEvent]) -> (i64, i64) {
    let start = events.first().map_or(0, |e| e.at_ms);
    let end = events.last().map_or(start + 1, |e| e.at_ms.max(start + 1));
    (start, end)
}

fn draw_lanes(svg: &mut String, lanes: &BTreeMap<String, usize>) {
    for (lane, index) in lanes {
        let top = TOP + *index as f64 * LANE_HEIGHT;
        let fill = if index % 2 == 0 { "#f4f4f4" } else { "#ffffff" };
        let _ = writeln!(
            svg,
            r#"<rect x="0" y="{top}" width="{}" height="{LANE_HEIGHT}" fill="{fill}"/><text x="6" y="{:.0}">{}</text>"#,
            LEFT + WIDTH + 20.0,
            top + LANE_HEIGHT * 0.65,
            escape(lane)
        );
    }
}

fn draw_violations(svg: &mut String, verdict: &Verdict, x: &dyn Fn(i64) -> f64, height: f64) {
    for violation in verdict.violations.iter().filter(|v| v.at_ms.is_some()) {
        let at = x(violation.at_ms.unwrap_or_default());
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="0" width="8" height="{height}" fill="#ffcc00" opacity="0.6"><title>{}</title></rect>"##,
            at - 4.0,
            escape(&violation.to_string())
        );
    }
}

fn draw_faults(svg: &mut String, outcome: &RunOutcome, x: &dyn Fn(i64) -> f64, height: f64) {
    for fault in &outcome.ledger.faults {
        let at = x(fault.at_ms);
        let dash = if fault.applied {
            ""
        } else {
            r#" stroke-dasharray="4 3""#
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.0}" stroke="#d00" stroke-width="1.5"{dash}><title>{}</title></line><text x="{:.1}" y="{:.0}" fill="#d00">{}</text>"##,
            height - 40.0,
            escape(&serde_json::to_string(&fault.fault).unwrap_or_default()),
            at + 3.0,
            TOP + LANE_HEIGHT * 0.65,
            escape(fault.kind())
        );
    }
}

/// An arrow per workload message: accepted by the router → its answer received by the channel.
fn draw_messages(
    svg: &mut String,
    outcome: &RunOutcome,
    x: &dyn Fn(i64) -> f64,
    y: &dyn Fn(&str) -> f64,
) {
    let answered = first_answers(&outcome.record());
    for sent in &outcome.ledger.sent {
        let Some(routed) = sent.routed_at_ms else {
            continue;
        };
        let Some(received) = answered.get(&sent.index) else {
            continue;
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#36c" stroke-width="1"><title>m{} answered after {} ms</title></line>"##,
            x(routed),
            y("router"),
            x(*received),
            y("channel"),
            sent.index,
            received - routed
        );
    }
}

fn color_of(actor: &str) -> &'static str {
    match actor {
        "faults" => "#d00",
        "router" | "user" => "#36c",
        "channel" => "#393",
        "runner" => "#777",
        "sweep" => "#a60",
        _ => "#444",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
