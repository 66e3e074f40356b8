//! Channel adapters: how the host hands a `messages_out` row to the outside world.

use crate::model::Route;
use serde_json::Value;

/// One outbound message with its files, as the host hands it to an adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundDelivery {
    pub message_out_id: String,
    pub seq: Option<i64>,
    pub session_id: String,
    pub route: Route,
    pub kind: String,
    pub content: Value,
    /// `(file name, bytes)` from `outbox/<id>/`, sorted by name.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// May succeed later; the host retries with backoff, a bounded number of times.
    Transient(String),
    /// Will never succeed; the row is recorded as undeliverable with this reason.
    Permanent(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Transient(reason) => write!(f, "transient: {reason}"),
            SendError::Permanent(reason) => write!(f, "permanent: {reason}"),
        }
    }
}

pub trait ChannelAdapter {
    /// The `channel_type` this adapter serves.
    fn channel_type(&self) -> &str;
    fn send(&mut self, delivery: &OutboundDelivery) -> Result<(), SendError>;
}
