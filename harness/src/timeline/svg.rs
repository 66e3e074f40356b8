//! A [`Chart`] drawn as SVG: plain elements, a `<title>` on everything for hover, no scripts.
//!
//! Layout from the top: the title, the violations (numbered), a band of fault labels (staggered
//! in rows so none overlaps another), the lanes grouped by session, the time axis, the legend.
//! Labels inside a lane are staggered the same way; a label that finds no free row is left out
//! (its text stays in the tooltip and the list under the chart).

use super::axis::Axis;
use super::chart::{Chart, FaultLook, Shape};
use super::names::seconds;
use std::fmt::Write as _;

/// Total width, px.
pub const WIDTH: f64 = 1900.0;
const LEFT: f64 = 200.0;
const RIGHT: f64 = WIDTH - 24.0;
const LANE_BASE: f64 = 20.0;
const LABEL_ROW: f64 = 11.0;
const LABEL_ROWS_MAX: usize = 3;
const GROUP_HEADING: f64 = 18.0;
const FAULT_ROW: f64 = 13.0;
const CHAR_PX: f64 = 6.1;
const FONT: &str = "DejaVu Sans Mono, Liberation Mono, Menlo, Consolas, monospace";

/// Colours of workload messages' paths, in turn (no red or orange: those mean faults and
/// violations).
const PALETTE: [&str; 8] = [
    "#1f6fb4", "#7b4fb0", "#138a8f", "#8c564b", "#c0449a", "#2e8b2e", "#8a8a10", "#4a5a8a",
];
const FAULT: &str = "#d62020";
const VIOLATION: &str = "#ff8c00";

fn color(message: Option<usize>) -> &'static str {
    message.map_or("#777", |m| PALETTE[m % PALETTE.len()])
}

/// Rows for labels that must not overlap: each row remembers where its last label ended.
struct Stagger {
    ends: Vec<f64>,
    max: usize,
}

impl Stagger {
    fn new(max: usize) -> Self {
        Stagger {
            ends: Vec::new(),
            max,
        }
    }

    /// The first row free at `x` for `width`, or none when all `max` rows are taken.
    fn place(&mut self, x: f64, width: f64) -> Option<usize> {
        let row = self.ends.iter().position(|end| *end + 4.0 <= x);
        let row = match row {
            Some(row) => row,
            None if self.ends.len() < self.max => {
                self.ends.push(f64::MIN);
                self.ends.len() - 1
            }
            None => return None,
        };
        self.ends[row] = x + width;
        Some(row)
    }
}

fn text_px(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_PX
}

/// A label to place in a lane.
struct Label {
    lane: usize,
    x: f64,
    text: String,
    color: &'static str,
    bold: bool,
}

/// The chart as a standalone SVG document.
pub fn svg(chart: &Chart) -> String {
    // Moments drawn, for the axis: marks, faults, the quiet period and the end.
    let mut moments: Vec<i64> = chart.marks.iter().map(|m| m.at_ms).collect();
    moments.extend(chart.faults.iter().map(|f| f.at_ms));
    moments.extend(chart.quiet_from_ms);
    moments.extend(chart.violations.iter().filter_map(|v| v.at_ms));
    let axis = Axis::new(
        chart.start_ms,
        chart.end_ms,
        &moments,
        8_000,
        LEFT + 10.0,
        RIGHT - 10.0,
    );

    // Labels inside lanes, staggered per lane.
    let mut labels: Vec<Label> = chart
        .marks
        .iter()
        .filter_map(|m| {
            Some(Label {
                lane: m.lane,
                x: axis.x(m.at_ms),
                text: m.label.clone()?,
                color: if m.message.is_some() {
                    color(m.message)
                } else {
                    "#444"
                },
                bold: m.message.is_some(),
            })
        })
        .collect();
    for path in chart.paths.iter().filter(|p| p.answered_ms.is_none()) {
        if let Some(last) = path.marks.last() {
            let mark = &chart.marks[*last];
            labels.push(Label {
                lane: mark.lane,
                x: axis.x(mark.at_ms) + 8.0,
                text: format!("m{} no answer", path.index),
                color: FAULT,
                bold: true,
            });
        }
    }
    labels.sort_by(|a, b| a.lane.cmp(&b.lane).then(a.x.total_cmp(&b.x)));
    let mut rows_of_lane = vec![0usize; chart.lanes.len()];
    let mut placed: Vec<(usize, &Label)> = Vec::new();
    let mut stagger: Option<(usize, Stagger)> = None;
    for label in &labels {
        if stagger.as_ref().is_none_or(|(lane, _)| *lane != label.lane) {
            stagger = Some((label.lane, Stagger::new(LABEL_ROWS_MAX)));
        }
        if let Some((_, rows)) = stagger.as_mut() {
            if let Some(row) = rows.place(label.x - 3.0, text_px(&label.text)) {
                rows_of_lane[label.lane] = rows_of_lane[label.lane].max(row + 1);
                placed.push((row, label));
            }
        }
    }

    // Fault labels, staggered in a band above the lanes.
    let mut fault_rows = Stagger::new(usize::MAX);
    let mut faults: Vec<(usize, f64)> = chart
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| (i, axis.x(f.at_ms)))
        .collect();
    faults.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let fault_row: Vec<(usize, usize)> = faults
        .iter()
        .map(|(i, x)| {
            let width = text_px(&chart.faults[*i].label) + 4.0;
            (*i, fault_rows.place(x - 2.0, width).unwrap_or(0))
        })
        .collect();
    let fault_band_rows = fault_rows.ends.len().max(1);

    // Vertical layout.
    let mut y = 22.0;
    let title_y = y;
    y += 8.0;
    let violations_y = y + 12.0;
    y += chart.violations.len() as f64 * 15.0;
    y += 10.0;
    let fault_band_top = y;
    y += fault_band_rows as f64 * FAULT_ROW + 6.0;
    let lanes_top = y;
    let mut lane_top = vec![0.0; chart.lanes.len()];
    let mut lane_height = vec![0.0; chart.lanes.len()];
    let mut group_top = Vec::new();
    for group in &chart.groups {
        group_top.push(y);
        y += GROUP_HEADING;
        for lane in &group.lanes {
            lane_top[*lane] = y;
            lane_height[*lane] = LANE_BASE + rows_of_lane[*lane] as f64 * LABEL_ROW;
            y += lane_height[*lane];
        }
    }
    let lanes_bottom = y;
    let lane_y = |lane: usize| lane_top[lane] + lane_height[lane] - LANE_BASE / 2.0;
    let axis_y = lanes_bottom + 16.0;
    let legend_y = axis_y + 26.0;
    let height = legend_y + 3.0 * 18.0 + 10.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}" font-family="{FONT}" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="{title_y:.1}" font-size="14" font-weight="bold">{}</text>"#,
        escape(&chart.title)
    );
    for (i, violation) in chart.violations.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="10" y="{:.1}" font-size="12" fill="#b00000" font-weight="bold">✗{} {}</text>"##,
            violations_y + i as f64 * 15.0,
            violation.number,
            escape(&violation.text)
        );
    }

    // Lanes and group headings.
    let _ = writeln!(out, "<g>");
    for (g, group) in chart.groups.iter().enumerate() {
        let top = group_top[g];
        let _ = writeln!(
            out,
            r##"<rect x="0" y="{top:.1}" width="{WIDTH:.0}" height="{GROUP_HEADING}" fill="#e4e8f0"/>"##
        );
        for (i, lane) in group.lanes.iter().enumerate() {
            let fill = if i % 2 == 0 { "#fafafa" } else { "#f1f1f1" };
            let _ = writeln!(
                out,
                r##"<rect x="0" y="{:.1}" width="{WIDTH:.0}" height="{:.1}" fill="{fill}"/><text x="22" y="{:.1}" fill="#333">{}</text>"##,
                lane_top[*lane],
                lane_height[*lane],
                lane_y(*lane) + 4.0,
                chart.lanes[*lane].name
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{lanes_top:.1}" x2="{LEFT}" y2="{lanes_bottom:.1}" stroke="#bbb"/></g>"##
    );

    // The quiet period, cut stretches, grid.
    if let Some(quiet) = chart.quiet_from_ms {
        let x = axis.x(quiet);
        let _ = writeln!(
            out,
            r##"<rect x="{x:.1}" y="{lanes_top:.1}" width="{:.1}" height="{:.1}" fill="#7aa0d0" opacity="0.13"><title>quiet period from {} s: faults off, what is owed must finish</title></rect><text x="{:.1}" y="{:.1}" fill="#4a6a9a" font-style="italic">quiet period →</text>"##,
            RIGHT - x,
            lanes_bottom - lanes_top,
            seconds(quiet - chart.start_ms),
            x + 4.0,
            lanes_top - 3.0
        );
    }
    let mut last_tick_label = f64::MIN;
    for tick in axis.ticks(90.0) {
        let x = axis.x(chart.start_ms + tick);
        let text = format!("{} s", seconds(tick));
        let half = text_px(&text) / 2.0;
        let text = if x - half < last_tick_label + 8.0 {
            String::new()
        } else {
            last_tick_label = x + half;
            text
        };
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{lanes_top:.1}" x2="{x:.1}" y2="{:.1}" stroke="#d8d8d8" stroke-width="0.6"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#333">{text}</text>"##,
            lanes_bottom + 4.0,
            axis_y,
        );
    }
    for (x0, x1, ms) in axis.cuts() {
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{lanes_top:.1}" width="{:.1}" height="{:.1}" fill="#ffffff" opacity="0.75"><title>{} s cut short: nothing drawn happened in it</title></rect><line x1="{:.1}" y1="{lanes_top:.1}" x2="{:.1}" y2="{lanes_bottom:.1}" stroke="#999" stroke-dasharray="2 3"/><line x1="{:.1}" y1="{lanes_top:.1}" x2="{:.1}" y2="{lanes_bottom:.1}" stroke="#999" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888" font-size="8">{}s</text>"##,
            x0 + 3.0,
            x1 - x0 - 6.0,
            lanes_bottom - lanes_top,
            seconds(ms),
            x0 + 3.0,
            x0 + 3.0,
            x1 - 3.0,
            x1 - 3.0,
            (x0 + x1) / 2.0,
            axis_y + 11.0,
            (ms + 500) / 1_000
        );
    }

    // Violations: a band at the moment each became visible.
    for violation in &chart.violations {
        let Some(at) = violation.at_ms else { continue };
        let x = axis.x(at);
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{lanes_top:.1}" width="8" height="{:.1}" fill="{VIOLATION}" opacity="0.35"><title>✗{} {}</title></rect><text x="{:.1}" y="{:.1}" fill="#b00000" font-weight="bold">✗{}</text>"##,
            x - 4.0,
            lanes_bottom - lanes_top,
            violation.number,
            escape(&violation.text),
            x + 5.0,
            lanes_bottom - 4.0,
            violation.number
        );
    }

    // Faults: a line where each struck (faint where one was armed), its label in the band.
    for (i, row) in &fault_row {
        let fault = &chart.faults[*i];
        let x = axis.x(fault.at_ms);
        let label_y = fault_band_top + (*row as f64 + 1.0) * FAULT_ROW - 3.0;
        let (stroke, width, dash, opacity) = match fault.look {
            FaultLook::Struck => (FAULT, 1.6, "", 1.0),
            FaultLook::Armed => ("#e89090", 1.0, r#" stroke-dasharray="3 3""#, 0.8),
        };
        let title = escape(&fault.text);
        let _ = writeln!(
            out,
            r##"<g opacity="{opacity}"><title>{title}</title><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{lanes_bottom:.1}" stroke="{stroke}" stroke-width="{width}"{dash}/><text x="{:.1}" y="{label_y:.1}" fill="{stroke}" font-weight="{}">{}</text></g>"##,
            label_y + 2.0,
            x + 2.0,
            if fault.look == FaultLook::Struck {
                "bold"
            } else {
                "normal"
            },
            escape(&fault.label)
        );
        if let Some(lane) = fault.struck_lane {
            let _ = writeln!(
                out,
                r##"<circle cx="{x:.1}" cy="{:.1}" r="7" fill="none" stroke="{FAULT}" stroke-width="2"><title>{title}</title></circle>"##,
                lane_y(lane)
            );
        }
    }

    // The agent-runners' alive spans.
    for span in &chart.alive {
        let y = lane_y(span.lane);
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#9a9a9a" stroke-width="2"><title>agent-runner alive (polling) from {} s to {} s</title></line>"##,
            axis.x(span.from_ms),
            axis.x(span.to_ms).max(axis.x(span.from_ms) + 1.0),
            seconds(span.from_ms - chart.start_ms),
            seconds(span.to_ms - chart.start_ms)
        );
    }

    // Each message's life as one path; the evidence of a violation under a wide halo.
    for path in &chart.paths {
        let at = |m: usize| {
            let mark = &chart.marks[m];
            (axis.x(mark.at_ms), lane_y(mark.lane))
        };
        let mut d = String::new();
        for (from, to) in &path.segments {
            let ((x0, y0), (x1, y1)) = (at(*from), at(*to));
            let _ = write!(d, "M{x0:.1},{y0:.1}L{x1:.1},{y1:.1}");
        }
        if d.is_empty() {
            continue;
        }
        let answered = match path.answered_ms {
            Some(t) => format!("answered at {} s", seconds(t - chart.start_ms)),
            None => "never answered".into(),
        };
        let seq = path.seq.map_or(String::new(), |s| format!(", seq {s}"));
        let title = escape(&format!(
            "m{} ({}{seq}): {} steps, {answered}",
            path.index,
            path.conversation,
            path.marks.len()
        ));
        if let Some(number) = path.evidence {
            let _ = writeln!(
                out,
                r##"<path d="{d}" fill="none" stroke="{VIOLATION}" stroke-width="7" stroke-linecap="round" opacity="0.45"><title>evidence of ✗{number}: {title}</title></path>"##
            );
        }
        let dash = if path.answered_ms.is_none() {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r##"<path d="{d}" fill="none" stroke="{}" stroke-width="1.6" opacity="0.85"{dash}><title>{title}</title></path>"##,
            color(Some(path.index))
        );
        if path.answered_ms.is_none() {
            if let Some(last) = path.marks.last() {
                let mark = &chart.marks[*last];
                let _ = writeln!(
                    out,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="6.5" fill="none" stroke="{FAULT}" stroke-width="2"><title>{title}</title></circle>"##,
                    axis.x(mark.at_ms),
                    lane_y(mark.lane)
                );
            }
        }
    }

    // Marks.
    for mark in &chart.marks {
        let x = axis.x(mark.at_ms);
        let y = lane_y(mark.lane);
        let title = escape(&mark.text);
        if let Some(number) = mark.evidence {
            let _ = writeln!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="8" fill="{VIOLATION}" opacity="0.55"><title>evidence of ✗{number}: {title}</title></circle>"##
            );
        }
        let _ = writeln!(
            out,
            "{}",
            shape(mark.shape, x, y, color(mark.message), &title)
        );
    }

    // Group headings, over everything drawn across them.
    for (g, group) in chart.groups.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="8" y="{:.1}" font-weight="bold" font-size="12">{}</text>"#,
            group_top[g] + 13.0,
            escape(&group.heading)
        );
    }

    // Labels.
    for (row, label) in &placed {
        let y = lane_y(label.lane) - 7.0 - *row as f64 * LABEL_ROW;
        let weight = if label.bold { "bold" } else { "normal" };
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{y:.1}" font-size="10" fill="{}" font-weight="{weight}">{}</text>"#,
            label.x - 3.0,
            label.color,
            escape(&label.text)
        );
    }

    legend(&mut out, legend_y, chart.routine_steps);
    out.push_str("</svg>\n");
    out
}

/// The SVG of one mark.
fn shape(shape: Shape, x: f64, y: f64, color: &str, title: &str) -> String {
    let t = format!("<title>{title}</title>");
    match shape {
        Shape::Sent => format!(
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="#fff" stroke="{color}" stroke-width="1.5">{t}</circle>"##
        ),
        Shape::Offer => format!(
            r#"<path d="M{:.1},{:.1}l7,7m0,-7l-7,7" stroke="{color}" stroke-width="1.6">{t}</path>"#,
            x - 3.5,
            y - 3.5
        ),
        Shape::Routed => {
            format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{color}">{t}</circle>"#)
        }
        Shape::Turn => format!(
            r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{color}">{t}</rect>"#,
            x - 3.5,
            y - 3.5
        ),
        Shape::Reply => format!(
            r#"<path d="M{x:.1},{:.1}l4.5,4.5l-4.5,4.5l-4.5,-4.5z" fill="{color}">{t}</path>"#,
            y - 4.5
        ),
        Shape::Send => format!(
            r#"<path d="M{:.1},{:.1}l8,4l-8,4z" fill="{color}">{t}</path>"#,
            x - 4.0,
            y - 4.0
        ),
        Shape::SendLost => format!(
            r##"<path d="M{:.1},{:.1}l8,4l-8,4z" fill="#fff" stroke="{FAULT}" stroke-width="1.5">{t}</path>"##,
            x - 4.0,
            y - 4.0
        ),
        Shape::Delivered => format!(
            r##"<g>{t}<circle cx="{x:.1}" cy="{y:.1}" r="5.5" fill="#e6f6e6" stroke="#1a8a1a" stroke-width="1.2"/><path d="M{:.1},{:.1}l2.5,2.5l4,-5" fill="none" stroke="#1a8a1a" stroke-width="1.8"/></g>"##,
            x - 3.2,
            y
        ),
        Shape::Plain => {
            format!(r##"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="#555">{t}</circle>"##)
        }
        Shape::Error => {
            format!(r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{FAULT}">{t}</circle>"##)
        }
    }
}

/// What every mark, line and shade means.
fn legend(out: &mut String, y: f64, routine_steps: usize) {
    let c = PALETTE[0];
    let items: [(&str, String); 17] = [
        ("sent by the user", shape(Shape::Sent, 0.0, 0.0, c, "")),
        (
            "offered again (host down or refused)",
            shape(Shape::Offer, 0.0, 0.0, c, ""),
        ),
        ("routed (seq)", shape(Shape::Routed, 0.0, 0.0, c, "")),
        (
            "provider turn / follow-up",
            shape(Shape::Turn, 0.0, 0.0, c, ""),
        ),
        ("provider reply", shape(Shape::Reply, 0.0, 0.0, c, "")),
        (
            "answer handed to the channel",
            shape(Shape::Send, 0.0, 0.0, c, ""),
        ),
        ("delivered", shape(Shape::Delivered, 0.0, 0.0, c, "")),
        (
            "send failed or orphaned",
            shape(Shape::SendLost, 0.0, 0.0, c, ""),
        ),
        (
            "never answered",
            format!(r##"<circle r="6.5" fill="none" stroke="{FAULT}" stroke-width="2"/>"##),
        ),
        ("other step", shape(Shape::Plain, 0.0, 0.0, c, "")),
        ("failure, kill, exit", shape(Shape::Error, 0.0, 0.0, c, "")),
        (
            "agent-runner alive",
            r##"<line x1="-8" x2="8" stroke="#9a9a9a" stroke-width="2"/>"##.into(),
        ),
        (
            "fault struck",
            format!(r#"<line y1="-7" y2="7" stroke="{FAULT}" stroke-width="1.6"/>"#),
        ),
        (
            "fault armed",
            r##"<line y1="-7" y2="7" stroke="#e89090" stroke-dasharray="3 3"/>"##.into(),
        ),
        (
            "quiet period",
            r##"<rect x="-8" y="-6" width="16" height="12" fill="#7aa0d0" opacity="0.25"/>"##
                .into(),
        ),
        (
            "violation evidence",
            format!(r#"<circle r="7" fill="{VIOLATION}" opacity="0.55"/>"#),
        ),
        (
            "stretch cut short",
            r##"<text text-anchor="middle" y="3" fill="#888" font-size="9">⋯s⋯</text>"##.into(),
        ),
    ];
    let mut x = 16.0;
    let mut row = 0.0;
    for (text, sample) in items {
        let width = 28.0 + text_px(text) + 18.0;
        if x + width > WIDTH - 10.0 {
            x = 16.0;
            row += 1.0;
        }
        let cy = y + row * 18.0;
        let _ = writeln!(
            out,
            r#"<g transform="translate({:.1},{cy:.1})">{sample}</g><text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 8.0,
            x + 22.0,
            cy + 4.0,
            escape(text)
        );
        x += width;
    }
    let _ = writeln!(
        out,
        r##"<text x="16" y="{:.1}" fill="#666">Each workload message (m0, m1, …) is one coloured path: sent → routed → turn → reply → send → delivered. Not drawn: {routine_steps} routine steps (polls that changed nothing, empty delivery passes, empty sweeps).</text>"##,
        y + (row + 1.0) * 18.0 + 4.0
    );
}

/// Text for SVG and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
