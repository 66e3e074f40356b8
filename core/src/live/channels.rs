//! Channel adapters of the live world: one that keeps what it receives in memory (tests, e2e,
//! embedding), and the terminal of `clawsim chat`.

use crate::channel::{ChannelAdapter, OutboundDelivery, SendError};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Received {
    deliveries: Mutex<Vec<OutboundDelivery>>,
    arrived: Condvar,
}

/// A channel adapter that records every delivery it is handed.
pub struct MemoryChannel {
    channel_type: String,
    received: Arc<Received>,
}

/// The reading end of a [`MemoryChannel`], usable from any thread.
#[derive(Clone)]
pub struct MemoryInbox {
    received: Arc<Received>,
}

impl MemoryChannel {
    pub fn new(channel_type: &str) -> (MemoryChannel, MemoryInbox) {
        let received = Arc::new(Received::default());
        let inbox = MemoryInbox {
            received: received.clone(),
        };
        let channel = MemoryChannel {
            channel_type: channel_type.to_string(),
            received,
        };
        (channel, inbox)
    }
}

impl ChannelAdapter for MemoryChannel {
    fn channel_type(&self) -> &str {
        &self.channel_type
    }

    fn send(&mut self, delivery: &OutboundDelivery) -> Result<(), SendError> {
        let mut deliveries = self.received.deliveries.lock().expect("inbox lock");
        deliveries.push(delivery.clone());
        self.received.arrived.notify_all();
        Ok(())
    }
}

impl MemoryInbox {
    /// Everything delivered so far, in delivery order.
    pub fn all(&self) -> Vec<OutboundDelivery> {
        self.received.deliveries.lock().expect("inbox lock").clone()
    }

    /// Waits until a delivery satisfying `predicate` has arrived, at most `timeout`.
    pub fn wait_for(
        &self,
        predicate: impl Fn(&OutboundDelivery) -> bool,
        timeout: Duration,
    ) -> Option<OutboundDelivery> {
        let deadline = Instant::now() + timeout;
        let mut deliveries = self.received.deliveries.lock().expect("inbox lock");
        loop {
            if let Some(found) = deliveries.iter().find(|d| predicate(d)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            deliveries = self
                .received
                .arrived
                .wait_timeout(deliveries, left)
                .expect("inbox lock")
                .0;
        }
    }
}

/// The terminal of `clawsim chat`: prints what the agent says.
pub struct TerminalChannel {
    channel_type: String,
}

impl TerminalChannel {
    pub fn new(channel_type: &str) -> Self {
        Self {
            channel_type: channel_type.to_string(),
        }
    }
}

/// How a delivery reads in a terminal.
pub fn render_for_terminal(delivery: &OutboundDelivery) -> String {
    let content = &delivery.content;
    let field = |name: &str| content.get(name).and_then(|v| v.as_str()).unwrap_or("");
    let mut out = match (field("type"), field("operation")) {
        ("ask_question", _) => {
            let options = content
                .get("options")
                .and_then(|o| o.as_array())
                .map(|o| {
                    o.iter()
                        .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .unwrap_or_default();
            format!(
                "agent asks: {}\n  options: {options}\n  answer with: /answer {} <option>",
                field("question"),
                field("questionId")
            )
        }
        ("card", _) => format!("agent card: {}", field("fallbackText")),
        (_, "edit") => format!("agent edits {}: {}", field("messageId"), field("text")),
        (_, "reaction") => format!("agent reacts to {}: {}", field("messageId"), field("emoji")),
        _ => format!("agent: {}", field("text")),
    };
    for (name, bytes) in &delivery.files {
        out.push_str(&format!("\n  [file: {name}, {} bytes]", bytes.len()));
    }
    out
}

impl ChannelAdapter for TerminalChannel {
    fn channel_type(&self) -> &str {
        &self.channel_type
    }

    fn send(&mut self, delivery: &OutboundDelivery) -> Result<(), SendError> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", render_for_terminal(delivery))
            .and_then(|_| stdout.flush())
            .map_err(|e| SendError::Transient(format!("terminal: {e}")))
    }
}
