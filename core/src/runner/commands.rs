//! Slash commands in chat messages (PROTOCOL §5 step 3).
//!
//! A chat or chat-sdk message whose text starts with `/` is a command, named by its first word
//! lower-cased. Admin commands steer the runner or the provider and are allowed only to the
//! configured admin; filtered commands are platform chatter that must never reach the agent;
//! every other command is handed to the provider raw, because SDKs recognise commands only
//! outside the XML wrapping ordinary messages get.

use crate::model::{kind, sender_id, text_of};
use serde_json::Value;

/// Commands only the admin may run.
pub const ADMIN_COMMANDS: &[&str] = &[
    "/remote-control",
    "/clear",
    "/compact",
    "/context",
    "/cost",
    "/files",
];

/// Commands acked and dropped without a reply.
pub const FILTERED_COMMANDS: &[&str] = &["/help", "/login", "/logout", "/doctor", "/config"];

/// The admin command the runner handles itself: it drops the provider session.
pub const CLEAR_COMMAND: &str = "/clear";

/// The reply to an admin `/clear`.
pub const SESSION_CLEARED_TEXT: &str = "Session cleared.";

/// What a message is, as far as commands go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Not a command: formatted like any message.
    None,
    /// An admin command; `allowed` when the sender is the configured admin.
    Admin { command: String, allowed: bool },
    /// A filtered command: acked, nothing sent.
    Filtered { command: String },
    /// Any other command: sent to the provider raw.
    Passthrough { command: String },
}

impl Command {
    /// Classifies a message of `message_kind` with parsed `content`; only chat and chat-sdk
    /// messages can be commands.
    pub fn classify(message_kind: &str, content: &Value, admin_user_id: Option<&str>) -> Command {
        if message_kind != kind::CHAT && message_kind != kind::CHAT_SDK {
            return Command::None;
        }
        let Some(command) = command_name(text_of(content)) else {
            return Command::None;
        };
        if ADMIN_COMMANDS.contains(&command.as_str()) {
            let allowed = admin_user_id.is_some() && sender_id(content).as_deref() == admin_user_id;
            Command::Admin { command, allowed }
        } else if FILTERED_COMMANDS.contains(&command.as_str()) {
            Command::Filtered { command }
        } else {
            Command::Passthrough { command }
        }
    }
}

/// The command a text starts with (first word, lower-cased), or `None` when it is no command.
pub fn command_name(text: &str) -> Option<String> {
    let text = text.trim_start();
    if !text.starts_with('/') {
        return None;
    }
    let word = text.split_whitespace().next().unwrap_or(text);
    Some(word.to_lowercase())
}

/// The reply to an admin command from someone who is not the admin.
pub fn permission_denied_text(command: &str) -> String {
    format!("Permission denied: {command} requires admin access.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(text: &str, sender: &str) -> Command {
        let content = json!({"sender": "A", "senderId": sender, "text": text});
        Command::classify(kind::CHAT, &content, Some("admin"))
    }

    #[test]
    fn command_is_first_word_lower_cased() {
        assert_eq!(command_name("  /CLEAR now"), Some("/clear".into()));
        assert_eq!(command_name("/x"), Some("/x".into()));
        assert_eq!(command_name("hello /clear"), None);
        assert_eq!(command_name(""), None);
    }

    #[test]
    fn admin_commands_need_the_admin_sender() {
        assert_eq!(
            classify("/Compact", "admin"),
            Command::Admin {
                command: "/compact".into(),
                allowed: true
            }
        );
        assert_eq!(
            classify("/compact", "someone"),
            Command::Admin {
                command: "/compact".into(),
                allowed: false
            }
        );
        let no_admin = Command::classify(kind::CHAT, &json!({"text": "/cost"}), None);
        assert_eq!(
            no_admin,
            Command::Admin {
                command: "/cost".into(),
                allowed: false
            }
        );
    }

    #[test]
    fn chat_sdk_sender_is_author_user_id() {
        let content = json!({"author": {"userId": "admin"}, "text": "/clear"});
        assert_eq!(
            Command::classify(kind::CHAT_SDK, &content, Some("admin")),
            Command::Admin {
                command: "/clear".into(),
                allowed: true
            }
        );
    }

    #[test]
    fn filtered_passthrough_and_other_kinds() {
        assert_eq!(
            classify("/help me", "x"),
            Command::Filtered {
                command: "/help".into()
            }
        );
        assert_eq!(
            classify("/deploy now", "x"),
            Command::Passthrough {
                command: "/deploy".into()
            }
        );
        let task = json!({"prompt": "/clear", "text": "/clear"});
        assert_eq!(
            Command::classify(kind::TASK, &task, Some("admin")),
            Command::None
        );
    }
}
