//! The timeline: a run drawn as a message-sequence chart, the first thing a person opens when a
//! seed fails (`clawsim replay … --timeline run.html`).
//!
//! Built from the typed record alone ([`chart`]): one lane per actor, grouped by session; each
//! workload message's life as one coloured path with its name (`m3`, its index in the workload)
//! — sent, offered again, routed with its seq, taken up by a provider turn (the turn whose
//! prompt holds its token), answered, handed to the channel, delivered — and a mark where a
//! message was never answered. Faults are drawn where they struck (an armed fault faintly where
//! it was armed), the quiet period is shaded, the axis is in simulated seconds with long empty
//! stretches cut short ([`axis`]). Violations are told with the same names ([`names`]: `m3`,
//! `m3 reply`, `chat0`, never an internal id or a `Debug` form) and their evidence is
//! highlighted. Every mark has a tooltip; the HTML page lists the messages, faults and events
//! under the chart for reading without a mouse. A run draws the same bytes every time.
//!
//! Formats by the file's extension: `.svg`, `.html`, `.png` (rendered with resvg); anything
//! else is refused before the run.

mod axis;
mod chart;
mod names;
mod svg;

pub use chart::{chart, Chart, Shape};

use clawsim_oracle::properties::Verdict;
use clawsim_sim::world::RunOutcome;
use names::seconds;
use std::fmt::Write as _;
use std::path::Path;
use svg::escape;

/// What `--timeline FILE` writes, by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineFormat {
    Svg,
    Html,
    Png,
}

impl TimelineFormat {
    /// The format a path asks for; an extension other than `.svg`, `.html`/`.htm` or `.png` is
    /// an error naming the path.
    pub fn of_path(path: &Path) -> Result<Self, String> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("svg") => Ok(TimelineFormat::Svg),
            Some("html" | "htm") => Ok(TimelineFormat::Html),
            Some("png") => Ok(TimelineFormat::Png),
            _ => Err(format!(
                "--timeline {}: the file must end in .svg, .html or .png",
                path.display()
            )),
        }
    }

    /// The run drawn in this format.
    pub fn draw(self, outcome: &RunOutcome, verdict: &Verdict) -> Result<Vec<u8>, String> {
        match self {
            TimelineFormat::Svg => Ok(timeline_svg(outcome, verdict).into_bytes()),
            TimelineFormat::Html => Ok(timeline_html(outcome, verdict).into_bytes()),
            TimelineFormat::Png => timeline_png(outcome, verdict),
        }
    }
}

/// The run as a standalone SVG picture.
pub fn timeline_svg(outcome: &RunOutcome, verdict: &Verdict) -> String {
    svg::svg(&chart(outcome, verdict))
}

/// The run as a PNG image: the SVG rendered by resvg with the machine's fonts.
pub fn timeline_png(outcome: &RunOutcome, verdict: &Verdict) -> Result<Vec<u8>, String> {
    render_png(&timeline_svg(outcome, verdict))
}

/// An SVG document rendered to PNG.
pub fn render_png(svg: &str) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    if fonts.is_empty() {
        return Err(
            "--timeline: no fonts found on this machine to draw a PNG's text \
                    (install e.g. fonts-dejavu-core, or write .svg or .html)"
                .into(),
        );
    }
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| format!("--timeline: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or("--timeline: the picture has no size")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| format!("--timeline: encoding the PNG: {e}"))
}

/// The run as an HTML page: the chart, then the messages, faults and events as plain lists.
pub fn timeline_html(outcome: &RunOutcome, verdict: &Verdict) -> String {
    let chart = chart(outcome, verdict);
    let mut page = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\">\n");
    let _ = writeln!(
        page,
        "<title>clawsim seed {} ({}): {} violations</title>",
        outcome.seed,
        escape(&outcome.profile),
        chart.violations.len()
    );
    page.push_str(
        "<style>body{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:13px;\
         margin:12px}table{border-collapse:collapse}td,th{padding:1px 10px 1px 0;\
         text-align:left;vertical-align:top}tr.evidence{background:#ffe2b8}\
         .bad{color:#b00000;font-weight:bold}.fault{color:#d62020}h2{font-size:15px;\
         margin:18px 0 4px}</style>\n</head><body>\n",
    );
    page.push_str(&svg::svg(&chart));

    if !chart.violations.is_empty() {
        page.push_str("<h2>Violations</h2>\n<ol>\n");
        for violation in &chart.violations {
            let _ = writeln!(
                page,
                "<li class=\"bad\">✗{} {}</li>",
                violation.number,
                escape(&violation.text)
            );
        }
        page.push_str("</ol>\n");
    }

    page.push_str(
        "<h2>Messages</h2>\n<table>\n<tr><th>message</th><th>conversation</th><th>sent</th>\
         <th>routed</th><th>steps</th><th>answered</th><th></th></tr>\n",
    );
    for (path, sent) in chart.paths.iter().zip(&outcome.ledger.sent) {
        let routed = match (sent.routed_at_ms, sent.seq) {
            (Some(at), Some(seq)) => format!("{} s, seq {seq}", seconds(at - chart.start_ms)),
            (Some(at), None) => format!("{} s", seconds(at - chart.start_ms)),
            _ => "never".into(),
        };
        let answered = match path.answered_ms {
            Some(at) => format!("{} s", seconds(at - chart.start_ms)),
            None => "<span class=\"bad\">no answer</span>".into(),
        };
        let evidence = path.evidence.map_or(String::new(), |n| {
            format!("<span class=\"bad\">✗{n}</span>")
        });
        let class = if path.evidence.is_some() {
            " class=\"evidence\""
        } else {
            ""
        };
        let _ = writeln!(
            page,
            "<tr{class}><td>m{}</td><td>{}</td><td>{} s</td><td>{routed}</td><td>{}</td>\
             <td>{answered}</td><td>{evidence}</td></tr>",
            path.index,
            escape(&path.conversation),
            seconds(sent.sent_at_ms - chart.start_ms),
            path.marks.len()
        );
    }
    page.push_str("</table>\n");

    if !chart.faults.is_empty() {
        page.push_str("<h2>Faults</h2>\n<ul>\n");
        for fault in &chart.faults {
            let _ = writeln!(page, "<li class=\"fault\">{}</li>", escape(&fault.text));
        }
        page.push_str("</ul>\n");
    }

    let _ = writeln!(
        page,
        "<h2>Events</h2>\n<p>Every step drawn, in order; {} routine steps (polls that changed \
         nothing, empty delivery passes, empty sweeps) left out.</p>\n<table>",
        chart.routine_steps
    );
    let mut order: Vec<usize> = (0..chart.marks.len()).collect();
    order.sort_by_key(|m| (chart.marks[*m].at_ms, chart.marks[*m].step));
    for m in order {
        let mark = &chart.marks[m];
        let (class, flag) = match mark.evidence {
            Some(n) => (
                " class=\"evidence\"",
                format!("<span class=\"bad\">✗{n}</span>"),
            ),
            None => ("", String::new()),
        };
        let _ = writeln!(
            page,
            "<tr{class}><td>{flag}</td><td>{}</td></tr>",
            escape(&mark.text)
        );
    }
    page.push_str("</table>\n</body></html>\n");
    page
}
