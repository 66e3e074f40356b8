//! The users: which chats exist, who says what and when, and how they answer questions.
//!
//! A workload is data, like a fault plan, so the harness can generate and shrink it. Each chat
//! becomes a messaging group wired to its own agent group; a per-thread chat spreads its
//! messages over a few threads, so one chat can make several sessions. Message texts start with
//! a short unique token (`m7`) so a reply can be traced back to the message it answers; a text
//! may carry a mock-provider script (`@mock ...`) that makes the provider slow, silent, failing
//! or call tools (generated workloads sometimes ask the user a question, or send an extra
//! message).

use crate::tape::ChoiceSource;
use serde::{Deserialize, Serialize};

/// The channel type every simulated chat uses.
pub const SIM_CHANNEL: &str = "sim";

/// One chat: a messaging group and the agent group it is wired to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSpec {
    pub agent_group_id: String,
    pub messaging_group_id: String,
    pub platform_id: String,
    /// One session per thread instead of one per chat.
    pub per_thread: bool,
}

/// One message a user sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMessage {
    /// Offset from the start of the run, ms.
    pub at_ms: i64,
    /// Index into [`Workload::chats`].
    pub chat: usize,
    pub thread_id: Option<String>,
    pub sender: String,
    pub sender_id: String,
    pub text: String,
    /// The form of its content (PROTOCOL §4): `chat`, `chat-sdk`, or bare text that is not
    /// JSON at all (what a platform adapter may hand over for a malformed payload).
    #[serde(default, skip_serializing_if = "ContentForm::is_chat")]
    pub form: ContentForm,
}

/// How a message's content is written (PROTOCOL §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentForm {
    /// `{"sender", "senderId", "text"}`, kind `chat`.
    #[default]
    Chat,
    /// `{"author": {"fullName", "userName", "userId"}, "text"}`, kind `chat-sdk`.
    ChatSdk,
    /// The text itself as the content, not JSON, kind `chat`: no sender id reaches the host.
    Bare,
}

impl ContentForm {
    /// True for the plain `chat` form (the default, left out of case files).
    pub fn is_chat(&self) -> bool {
        *self == ContentForm::Chat
    }
}

impl UserMessage {
    /// The message's content as the platform hands it to the host (PROTOCOL §4).
    pub fn content(&self) -> String {
        match self.form {
            ContentForm::Chat => serde_json::json!({
                "sender": self.sender,
                "senderId": self.sender_id,
                "text": self.text,
            })
            .to_string(),
            ContentForm::ChatSdk => serde_json::json!({
                "author": {
                    "fullName": self.sender,
                    "userName": self.sender,
                    "userId": self.sender_id,
                },
                "text": self.text,
            })
            .to_string(),
            ContentForm::Bare => self.text.clone(),
        }
    }

    /// The message kind the channel reports.
    pub fn kind(&self) -> &'static str {
        match self.form {
            ContentForm::ChatSdk => "chat-sdk",
            ContentForm::Chat | ContentForm::Bare => "chat",
        }
    }

    /// The sender id the host can read from the content (none from bare text).
    pub fn sender_id_sent(&self) -> Option<&str> {
        (self.form != ContentForm::Bare).then_some(self.sender_id.as_str())
    }

    /// The unique token the text starts with.
    pub fn token(&self) -> &str {
        self.text.split_whitespace().next().unwrap_or("")
    }
}

/// Everything the users do in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub chats: Vec<ChatSpec>,
    pub messages: Vec<UserMessage>,
    /// A user answers a question card within this long after seeing it (0: at once).
    pub answer_delay_ms_max: i64,
    /// Agent-to-agent routes the host allows, as `(from chat, to chat)`: the agent group of
    /// the first chat may send to the agent group of the second (one direction).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_routes: Vec<(usize, usize)>,
    /// The host's idle stop (`idle_stop_ms`) when the workload sets one; the protocol's
    /// default otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_stop_ms: Option<i64>,
}

impl Workload {
    /// `chats` chats (at least one), `messages` messages spread over `window_ms`, sorted by time.
    pub fn generate(
        choices: &mut dyn ChoiceSource,
        chats: usize,
        messages: usize,
        window_ms: i64,
    ) -> Self {
        let chats: Vec<ChatSpec> = (0..chats.max(1))
            .map(|i| ChatSpec {
                agent_group_id: format!("ag{i}"),
                messaging_group_id: format!("mg{i}"),
                platform_id: format!("chat{i}"),
                per_thread: choices.chance(0.3),
            })
            .collect();
        let mut messages: Vec<UserMessage> = (0..messages)
            .map(|_| {
                let chat = choices.below(chats.len() as u64) as usize;
                let user = choices.below(2);
                UserMessage {
                    at_ms: choices.range_inclusive(0, window_ms.max(1) - 1),
                    chat,
                    thread_id: chats[chat]
                        .per_thread
                        .then(|| format!("t{}", choices.below(2))),
                    sender: format!("u{user}"),
                    sender_id: format!("id{user}"),
                    text: String::new(),
                    form: ContentForm::Chat,
                }
            })
            .collect();
        messages.sort_by_key(|m| m.at_ms);
        for (index, message) in messages.iter_mut().enumerate() {
            message.text = format!("m{index} hello{}", tool_script(choices));
        }
        Self {
            chats,
            messages,
            answer_delay_ms_max: 30_000,
            agent_routes: Vec::new(),
            idle_stop_ms: None,
        }
    }
}

/// Sometimes a mock script calling a tool that involves the host or the user: a question card
/// the user must answer, or an extra message.
fn tool_script(choices: &mut dyn ChoiceSource) -> &'static str {
    match choices.below(20) {
        0..=2 => r#" @mock tool ask_user_question {"question":"go on?","options":["yes","no"]}"#,
        3..=4 => r#" @mock tool send_message {"text":"a note"}"#,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;
    use crate::tape::SeededChoices;

    #[test]
    fn generated_messages_are_sorted_with_unique_tokens() {
        let mut choices = SeededChoices::new(SimRng::new(2));
        let workload = Workload::generate(&mut choices, 3, 20, 60_000);
        assert_eq!(workload.chats.len(), 3);
        assert!(workload
            .messages
            .windows(2)
            .all(|w| w[0].at_ms <= w[1].at_ms));
        let tokens: std::collections::BTreeSet<&str> =
            workload.messages.iter().map(UserMessage::token).collect();
        assert_eq!(tokens.len(), 20);
        let content: serde_json::Value =
            serde_json::from_str(&workload.messages[0].content()).unwrap();
        assert!(content["text"].as_str().unwrap().starts_with("m0 hello"));
        assert!(workload
            .messages
            .iter()
            .any(|m| m.text.contains("ask_user_question")));
    }
}
