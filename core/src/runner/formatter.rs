//! How a batch of inbound messages is shown to the agent (PROTOCOL §6).
//!
//! Routing fields never reach the agent. Messages are grouped by kind in a fixed order (chat,
//! task, webhook, system), groups separated by a blank line. Chat messages are XML elements, and
//! everything that comes from a user (sender name, text, attachment fields) is escaped, so no
//! content can close an element or forge one: the prompt is well-formed for any input. Commands
//! that reach the provider are passed raw, in order, between the formatted runs around them.

use crate::model::{kind, InboundRow};
use crate::time::{format_hhmm, parse_instant};
use chrono_tz::Tz;
use serde_json::Value;

/// One piece of a prompt, in seq order.
#[derive(Debug, Clone, Copy)]
pub enum PromptPart<'a> {
    /// An ordinary message, formatted.
    Message(&'a InboundRow),
    /// A command passed to the provider as it was typed.
    Raw(&'a str),
}

/// Formats a batch: runs of ordinary messages are grouped by kind, raw commands sit between
/// the runs around them, and every section is separated by a blank line.
pub fn format_prompt(parts: &[PromptPart<'_>], time_zone: Tz) -> String {
    let mut sections = Vec::new();
    let mut run: Vec<&InboundRow> = Vec::new();
    for part in parts {
        match part {
            PromptPart::Message(row) => run.push(row),
            PromptPart::Raw(text) => {
                sections.extend(format_run(&run, time_zone));
                run.clear();
                sections.push((*text).to_string());
            }
        }
    }
    sections.extend(format_run(&run, time_zone));
    sections.join("\n\n")
}

/// Formats ordinary messages (no commands) grouped by kind; one section per group.
pub fn format_messages(rows: &[&InboundRow], time_zone: Tz) -> String {
    format_run(rows, time_zone).join("\n\n")
}

/// Escapes `& < > "` so text can sit inside an element or an attribute value.
pub fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Undoes [`escape_xml`] (the mock provider reads its script out of an escaped prompt).
pub fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn format_run(rows: &[&InboundRow], time_zone: Tz) -> Vec<String> {
    let of_kind = |wanted: &[&str]| -> Vec<&InboundRow> {
        rows.iter()
            .copied()
            .filter(|row| wanted.contains(&row.kind.as_str()))
            .collect()
    };
    let mut sections = Vec::new();
    // A kind the protocol does not know is shown as chat rather than dropped.
    let chat: Vec<&InboundRow> = rows
        .iter()
        .copied()
        .filter(|row| ![kind::TASK, kind::WEBHOOK, kind::SYSTEM].contains(&row.kind.as_str()))
        .collect();
    if !chat.is_empty() {
        sections.push(format_chat(&chat, time_zone));
    }
    sections.extend(of_kind(&[kind::TASK]).into_iter().map(format_task));
    sections.extend(of_kind(&[kind::WEBHOOK]).into_iter().map(format_webhook));
    sections.extend(of_kind(&[kind::SYSTEM]).into_iter().map(format_system));
    sections
}

fn format_chat(rows: &[&InboundRow], time_zone: Tz) -> String {
    if let [row] = rows {
        return format_chat_message(row, time_zone);
    }
    let mut lines = vec!["<messages>".to_string()];
    lines.extend(rows.iter().map(|row| format_chat_message(row, time_zone)));
    lines.push("</messages>".to_string());
    lines.join("\n")
}

fn format_chat_message(row: &InboundRow, time_zone: Tz) -> String {
    let content = row.content_json();
    let id = row
        .seq
        .map(|seq| format!(" id=\"{seq}\""))
        .unwrap_or_default();
    let time = parse_instant(&row.timestamp)
        .map(|ms| format!(" time=\"{}\"", format_hhmm(ms, time_zone)))
        .unwrap_or_default();
    let sender = escape_xml(&sender_name(&content));
    let text = escape_xml(&value_text(content.get("text")));
    let attachments = format_attachments(content.get("attachments"));
    format!("<message{id} sender=\"{sender}\"{time}>{text}{attachments}</message>")
}

/// `sender`, else `author.fullName`, else `author.userName`, else `Unknown`.
fn sender_name(content: &Value) -> String {
    let author = content.get("author");
    non_empty_str(content.get("sender"))
        .or_else(|| non_empty_str(author.and_then(|a| a.get("fullName"))))
        .or_else(|| non_empty_str(author.and_then(|a| a.get("userName"))))
        .unwrap_or("Unknown")
        .to_string()
}

/// One line per attachment after the text: `[TYPE: NAME (URL)]` or `[TYPE: NAME]`.
fn format_attachments(attachments: Option<&Value>) -> String {
    let Some(Value::Array(attachments)) = attachments else {
        return String::new();
    };
    attachments
        .iter()
        .map(|attachment| {
            let field = |key: &str| non_empty_str(attachment.get(key));
            let kind = escape_xml(field("type").unwrap_or("file"));
            let name = escape_xml(field("name").or(field("filename")).unwrap_or("attachment"));
            match field("url") {
                Some(url) => format!("\n[{kind}: {name} ({})]", escape_xml(url)),
                None => format!("\n[{kind}: {name}]"),
            }
        })
        .collect()
}

fn format_task(row: &InboundRow) -> String {
    let content = row.content_json();
    let mut text = String::from("[SCHEDULED TASK]\n\n");
    if let Some(output) = content.get("scriptOutput").filter(|v| !v.is_null()) {
        text.push_str("Script output:\n");
        text.push_str(&pretty_json(output));
        text.push_str("\n\n");
    }
    let prompt = content.get("prompt").or_else(|| content.get("text"));
    text.push_str("Instructions:\n");
    text.push_str(&value_text(prompt));
    text
}

fn format_webhook(row: &InboundRow) -> String {
    let content = row.content_json();
    let source = value_text(content.get("source"));
    let event = value_text(content.get("event"));
    let payload = content.get("payload").unwrap_or(&content);
    format!(
        "[WEBHOOK: {}/{}]\n\n{}",
        or_unknown(source),
        or_unknown(event),
        pretty_json(payload)
    )
}

fn format_system(row: &InboundRow) -> String {
    let content = row.content_json();
    let action = or_unknown(value_text(content.get("action")));
    let status = or_unknown(value_text(content.get("status")));
    let result = content.get("result").cloned().unwrap_or(Value::Null);
    format!("[SYSTEM RESPONSE]\n\nAction: {action}\nStatus: {status}\nResult: {result}")
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A field as text: strings as they are, other JSON values as JSON, missing as empty.
fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn or_unknown(text: String) -> String {
    if text.is_empty() {
        "unknown".to_string()
    } else {
        text
    }
}

fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        let text = r#"a & b < c > d " e &amp;"#;
        assert_eq!(
            escape_xml(text),
            "a &amp; b &lt; c &gt; d &quot; e &amp;amp;"
        );
        assert_eq!(unescape_xml(&escape_xml(text)), text);
    }
}
