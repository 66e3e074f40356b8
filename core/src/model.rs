//! Rows of the protocol's tables and the JSON content they carry (PROTOCOL §2, §4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `messages_in.kind`.
pub mod kind {
    pub const CHAT: &str = "chat";
    pub const CHAT_SDK: &str = "chat-sdk";
    pub const TASK: &str = "task";
    pub const WEBHOOK: &str = "webhook";
    pub const SYSTEM: &str = "system";
}

/// `messages_in.status` and `processing_ack.status`.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const PAUSED: &str = "paused";
    pub const PROCESSING: &str = "processing";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    /// `delivered.status` of a row handed to its channel.
    pub const DELIVERED: &str = "delivered";
    /// `delivered.status` of a row that can never be delivered; `delivered.reason` says why.
    pub const UNDELIVERABLE: &str = "undeliverable";
}

/// The channel type of agent-to-agent messages.
pub const AGENT_CHANNEL: &str = "agent";

/// Where a message came from or goes to; never shown to the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub platform_id: Option<String>,
    pub channel_type: Option<String>,
    pub thread_id: Option<String>,
}

/// A `messages_in` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundRow {
    pub id: String,
    pub seq: Option<i64>,
    pub kind: String,
    pub timestamp: String,
    pub status: String,
    pub process_after: Option<String>,
    pub recurrence: Option<String>,
    pub tries: i64,
    pub route: Route,
    pub content: String,
    pub series_id: Option<String>,
}

impl InboundRow {
    pub const COLUMNS: &'static str = "id, seq, kind, timestamp, COALESCE(status, 'pending'), \
        process_after, recurrence, COALESCE(tries, 0), platform_id, channel_type, thread_id, \
        content, series_id";

    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            seq: row.get(1)?,
            kind: row.get(2)?,
            timestamp: row.get(3)?,
            status: row.get(4)?,
            process_after: row.get(5)?,
            recurrence: row.get(6)?,
            tries: row.get(7)?,
            route: Route {
                platform_id: row.get(8)?,
                channel_type: row.get(9)?,
                thread_id: row.get(10)?,
            },
            content: row.get(11)?,
            series_id: row.get(12)?,
        })
    }

    /// Content parsed as JSON; content that is not JSON is the text itself (PROTOCOL §6).
    pub fn content_json(&self) -> Value {
        parse_content(&self.content)
    }
}

/// A `messages_out` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundRow {
    pub id: String,
    pub seq: Option<i64>,
    pub in_reply_to: Option<String>,
    pub timestamp: String,
    pub deliver_after: Option<String>,
    pub recurrence: Option<String>,
    pub kind: String,
    pub route: Route,
    pub content: String,
}

impl OutboundRow {
    pub const COLUMNS: &'static str = "id, seq, in_reply_to, timestamp, deliver_after, \
        recurrence, kind, platform_id, channel_type, thread_id, content";

    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            seq: row.get(1)?,
            in_reply_to: row.get(2)?,
            timestamp: row.get(3)?,
            deliver_after: row.get(4)?,
            recurrence: row.get(5)?,
            kind: row.get(6)?,
            route: Route {
                platform_id: row.get(7)?,
                channel_type: row.get(8)?,
                thread_id: row.get(9)?,
            },
            content: row.get(10)?,
        })
    }

    pub fn content_json(&self) -> Value {
        parse_content(&self.content)
    }
}

/// Parses stored content; anything that is not a JSON object or array becomes `{"text": …}`
/// so callers see one shape.
pub fn parse_content(content: &str) -> Value {
    match serde_json::from_str::<Value>(content) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => value,
        _ => serde_json::json!({ "text": content }),
    }
}

/// The sender id of a chat or chat-sdk message (`senderId`, else `author.userId`).
pub fn sender_id(content: &Value) -> Option<String> {
    let id = content
        .get("senderId")
        .or_else(|| content.get("author").and_then(|a| a.get("userId")))?;
    match id {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The text of a message, empty when it has none.
pub fn text_of(content: &Value) -> &str {
    content.get("text").and_then(Value::as_str).unwrap_or("")
}
